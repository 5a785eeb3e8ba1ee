"""One candidate end to end: model -> train (QAT, pruning) -> export (streaming ONNX, parity gate)
-> WER, latency and size measured **on the exported file**.

:func:`run_candidate` is what the search calls once per trial. It writes into ``out_dir``:

- ``model.onnx``: the artifact (its size on disk is ``size_bytes``);
- ``transcripts.jsonl``: one line per test utterance (id, group, reference, ONNX and PyTorch
  hypotheses), from which ``wer`` can be recomputed;
- ``result.json``: knobs, WER (overall, per group, worst group; from ONNX Runtime streaming
  the file over ``compute_fbank`` features of the test audio, and ``wer_torch`` from the
  PyTorch model), latency/RTF/memory from :func:`edgetune.bench.bench_model`, size, parity,
  host, training facts, sha256.

:func:`measure_untrained` exports an untrained candidate of the same shapes (pruned at the same
ratio, quantized at the same width) and times it: latency and size depend on the architecture,
not the weights, so a study can reject a candidate before training it.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetune._io import atomic_write_text, json_safe, sha256_file
from edgetune.errors import ConfigError, DataError
from edgetune.knobs import Knobs, PruneSchedule, TrainSettings

if TYPE_CHECKING:
    from edgetune.data import DatasetSplits

MAX_PARITY_UTTERANCES = 100
RESULT_FILE = "result.json"
MODEL_FILE = "model.onnx"
TRANSCRIPTS_FILE = "transcripts.jsonl"


def _load_splits(dataset: "str | Path | DatasetSplits", progress: bool) -> "DatasetSplits":
    from edgetune.data import DatasetSplits, load_validated_dataset

    if isinstance(dataset, DatasetSplits):
        return dataset
    return load_validated_dataset(dataset, progress=progress)  # every bad file listed before training


def _silence(features: Any) -> float:
    return features.silence


def _onnx_hyps(path: Path, feats: list[Any], threads: int) -> list[str]:
    """Greedy transcripts of the streaming ONNX file, one ORT session (1 thread) per worker thread."""
    from concurrent.futures import ThreadPoolExecutor

    from edgetune._runner import StreamingModel

    workers = max(1, min(threads, len(feats)))
    out: list[str | None] = [None] * len(feats)

    def run(k: int) -> None:
        stream = StreamingModel(str(path), threads=1)
        for i in range(k, len(feats), workers):
            out[i] = stream.greedy_text(stream.run_utterance(feats[i]))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, range(workers)))
    return [h or "" for h in out]


def _torch_hyps(model: Any, feats: list[Any], chunk_frames: int, silence: float, device: Any,
                batch_size: int = 32) -> list[str]:
    """Greedy transcripts of the PyTorch model over whole utterances padded to whole chunks, batched.

    Extra padding at the end of a batch changes nothing before it: attention is chunk-causal and
    the convolutions are causal."""
    import numpy as np
    import torch

    from edgetune.data import VOCABULARY
    from edgetune.train import ctc_greedy
    from edgetune.train._batching import bucket_batches

    model = model.to(device).eval()
    chunks = [max(1, -(-f.shape[0] // chunk_frames)) for f in feats]
    out: list[str] = [""] * len(feats)
    with torch.no_grad():
        for idx in bucket_batches(chunks, batch_size):
            t = max(chunks[i] for i in idx) * chunk_frames
            x = np.full((len(idx), t, feats[idx[0]].shape[1]), silence, dtype=np.float32)
            for j, i in enumerate(idx):
                x[j, :feats[i].shape[0]] = feats[i]
            logits = model(torch.from_numpy(x).to(device)).float().cpu()
            per_frame = logits.shape[1] / t
            for j, i in enumerate(idx):
                out[i] = ctc_greedy(logits[j, :int(round(chunks[i] * chunk_frames * per_frame))], VOCABULARY)
    model.cpu()
    return out


def _transcribe_test(model: Any, path: Path, utts: list[Any], feats: list[Any], features: Any,
                     reference: Any | None = None, device: Any = "cpu", threads: int = 1) -> list[dict[str, Any]]:
    """Decode every test utterance with the ONNX file (streaming, ORT) and with the PyTorch model
    (and with ``reference``, the float base a candidate was derived from, as ``hyp_base``).
    ``feats`` are the utterances' fbank features (:func:`edgetune.data.compute_fbank` of the audio)."""
    from edgetune.data import normalize_text

    feats = [f.numpy() if hasattr(f, "numpy") else f for f in feats]
    hyps = _onnx_hyps(path, feats, threads)
    torch_hyps = _torch_hyps(model, feats, model.chunk_frames, features.silence, device)
    base_hyps = (_torch_hyps(reference, feats, reference.chunk_frames, features.silence, device)
                 if reference is not None else None)
    rows = []
    for i, u in enumerate(utts):
        row = {"id": getattr(u, "id", None) or Path(u.audio_filepath).stem, "group": u.group or "",
               "ref": normalize_text(u.text), "hyp": hyps[i], "hyp_torch": torch_hyps[i],
               "frames": int(feats[i].shape[0])}
        if base_hyps is not None:
            row["hyp_base"] = base_hyps[i]
        rows.append(row)
    return rows


def wer_from_transcripts(rows: list[dict[str, Any]], key: str = "hyp") -> dict[str, Any]:
    """Overall, per-group and worst-group WER of ``rows`` (:func:`edgetune.train.trainer.wer_from_transcripts`)."""
    from edgetune.train.trainer import wer_from_transcripts as wer

    return wer(rows, key)


def _eval_threads() -> int:
    """Threads for decoding the test set: the cores this process may use, at most 4."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _host(bench: dict[str, Any], threads: int) -> dict[str, Any]:
    import onnxruntime

    fp = bench.get("fingerprint") or {}
    return {"hostname": platform.node(), "cpu_model": fp.get("cpu_model") or platform.processor(),
            "machine": platform.machine(), "ort_version": fp.get("ort_version") or onnxruntime.__version__,
            "threads": threads, "fingerprint": fp}


def _bench(path: Path, target: str, threads: int, runs: int, warmup: int) -> dict[str, Any]:
    from edgetune.bench import bench_model

    return bench_model(path, target=target, threads=threads, runs=runs, warmup=warmup)


def _bench_fields(bench: dict[str, Any]) -> dict[str, Any]:
    keys = ("latency_ms", "rtf", "algorithmic_latency_ms", "peak_rss_bytes", "size_bytes", "gzip_bytes")
    return {k: bench.get(k) for k in keys}


def run_candidate(knobs: Knobs, out_dir: Path, *, dataset: "str | Path | DatasetSplits" = "smoke",
                  train: TrainSettings = TrainSettings(), target: str = "local",
                  bench_threads: int = 1, bench_runs: int = 200, bench_warmup: int = 20,
                  family: str = "conformer_lite", progress: bool = True,
                  on_epoch: Callable[[int, dict[str, float]], Any] | None = None,
                  model_config: dict[str, Any] | None = None, enforce_parity: bool = True,
                  base: "str | Path | None" = None, init: str = "base", distill_weight: float = 0.5,
                  distill_temperature: float = 1.0) -> dict[str, Any]:
    """Train, export and measure one candidate; returns the result dict also written to ``result.json``.

    With a ``base`` directory and ``init="base"`` the candidate is **derived** from it: pruned to
    the trial's width and sparsity (the base's own weights, importance-based), quantized at its
    bits with observers calibrated on training data, fine-tuned for ``train.epochs`` with
    distillation from the base's frame posteriors (``distill_weight`` of the loss; 0 turns it
    off), and exported at its chunk. The result then also holds ``wer_base`` (the float base on
    the same test set and chunk), ``quant_cost`` (fake-quant PyTorch WER minus ``wer_base``) and
    ``export_error`` (the file's WER minus the fake-quant PyTorch WER). ``init="scratch"``
    trains from random initialisation as before (``family``/``model_config`` from the base).

    ``on_epoch(epoch, {"wer", "worst_group_wer", "dev_loss", "train_loss", "seconds"})`` is
    called after each epoch with dev-set metrics (PyTorch, greedy); returning False stops
    training early (the candidate is still exported and measured; ``stopped_early`` says so).
    ``model_config`` overrides the family's base architecture (e.g. a larger ``d_model``).
    ``enforce_parity=False`` measures a candidate whose export fails the parity gate anyway
    (``parity.passed`` is False in the result): only for benchmark tables, never for search.
    Raises ConfigError, DataError, TrainingError, ExportError/ParityError, TargetError.
    """
    import torch

    from edgetune import __version__
    from edgetune.data import extract_features
    from edgetune.train._batching import make_examples
    from edgetune.export import export_streaming_onnx
    from edgetune.export.metadata import FeatureSpec
    from edgetune.model import build_model
    from edgetune.train import train_model

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    features = FeatureSpec()
    if init not in ("base", "scratch"):
        raise ConfigError(f"init must be 'base' or 'scratch', but got {init!r}")
    base_model = None
    if base is not None:
        from edgetune.base import load_base

        base_model = load_base(base, rebuild_onnx=False)
        family, model_config = base_model.family, base_model.model_config
        if base_model.card.get("features") != dataclasses.asdict(features):
            raise ConfigError(f"base {base} was trained on other features ({base_model.card.get('features')}); "
                              "fix: retrain it with this edgetune (`edgetune base train`)")
    splits = _load_splits(dataset, progress)
    if not splits.test:
        raise DataError(f"dataset {dataset!r} has an empty test split; WER cannot be measured")
    train_set = make_examples(splits.train, extract_features(splits.train, features, progress=progress))
    dev_set = make_examples(splits.dev, extract_features(splits.dev, features, progress=progress))

    from edgetune.data import VOCABULARY

    torch.manual_seed(train.seed)  # initialisation; train_model seeds batching and SpecAugment
    teacher = None
    if base_model is not None and init == "base":
        from edgetune.base._derive import derive_model
        from edgetune.train import Distillation

        model = derive_model(base_model, knobs, calibration=train_set[:128], pad_value=_silence(features))
        teacher = base_model.build(knobs.chunk_ms)
        distill = Distillation(teacher, distill_weight, distill_temperature) if distill_weight > 0 else None
        # pruning is done: train_model only fine-tunes (QAT from the first step, base normalisation kept)
        train_result = train_model(model, dataclasses.replace(knobs, sparsity=0.0), train, train_set, dev_set,
                                   vocabulary=VOCABULARY, pad_value=_silence(features), on_epoch=on_epoch,
                                   progress=progress, distill=distill, set_stats=False, qat_from_start=True)
        train_result.params_initial = base_model.card.get("params", train_result.params_initial)
    else:
        model = build_model(family, knobs, model_config)
        train_result = train_model(model, knobs, train, train_set, dev_set, vocabulary=VOCABULARY,
                                   pad_value=_silence(features), on_epoch=on_epoch, progress=progress)

    model = model.cpu().eval()
    if teacher is None and base_model is not None:
        teacher = base_model.build(knobs.chunk_ms)  # scratch vs base: the same reference WER
    parity_feats = [e.feats.numpy() for e in (dev_set or train_set)[:MAX_PARITY_UTTERANCES]]
    model_path = out_dir / MODEL_FILE
    exported = export_streaming_onnx(model, knobs, model_path, parity_features=parity_feats, features=features,
                                     strict=enforce_parity)

    test_feats = extract_features(splits.test, features, progress=progress)
    rows = _transcribe_test(model, model_path, splits.test, test_feats, features,
                            reference=teacher.cpu().eval() if teacher is not None else None,
                            device=train_result.device, threads=_eval_threads())
    atomic_write_text(out_dir / TRANSCRIPTS_FILE, "".join(json.dumps(r) + "\n" for r in rows))
    onnx_wer = wer_from_transcripts(rows, "hyp")
    torch_wer = wer_from_transcripts(rows, "hyp_torch")
    derived: dict[str, Any] = {"init": init if base_model is not None else "scratch"}
    if base_model is not None:
        wer_base = wer_from_transcripts(rows, "hyp_base")["wer"]
        derived.update({"base": {"path": str(base), "name": base_model.card.get("name"),
                                 "weights_sha256": base_model.card.get("weights_sha256"),
                                 "params": base_model.card.get("params")},
                        "wer_base": wer_base, "quant_cost": torch_wer["wer"] - wer_base,
                        "distill_weight": distill_weight if init == "base" else None})
    derived["export_error"] = onnx_wer["wer"] - torch_wer["wer"]

    bench = _bench(model_path, target, bench_threads, bench_runs, bench_warmup)
    size = model_path.stat().st_size
    result = {
        "knobs": knobs.to_dict(),
        "family": family,
        "model": MODEL_FILE,
        **onnx_wer,
        "wer_torch": torch_wer["wer"],
        "wer_torch_per_group": torch_wer["wer_per_group"],
        **derived,
        **_bench_fields(bench),
        "size_bytes": size,
        "parity": {k: v for k, v in (exported.parity or {}).items()},
        "host": _host(bench, bench_threads),
        "target": target,
        "train_seconds": train_result.train_seconds,
        "gpu_seconds": train_result.gpu_seconds,
        "gpu_energy_j": train_result.gpu_energy_j,
        "device": train_result.device,
        "params": train_result.params_final,
        "params_initial": train_result.params_initial,
        "epochs_run": train_result.epochs_run,
        "stopped_early": train_result.stopped_early,
        "history": train_result.history,
        "train": train.to_dict(),
        "model_config": exported.spec.model_config,
        "weight_storage": exported.spec.weight_storage,
        "initializer_types": exported.initializer_types,
        "export": {k: v for k, v in exported.extra.items()},
        "test_utterances": len(rows),
        "sha256": sha256_file(model_path),
        "edgetune_version": __version__,
        "torch_version": torch.__version__,
        "seconds": time.perf_counter() - t_start,
        "bench": {k: v for k, v in bench.items() if k not in ("samples_ms",)},
    }
    result = json_safe(result, non_finite="null")  # result.json is strict JSON: NaN/inf -> null
    atomic_write_text(out_dir / RESULT_FILE, json.dumps(result, indent=2, sort_keys=True))
    return result


def export_untrained(knobs: Knobs, path: Path, *, family: str = "conformer_lite",
                     model_config: dict[str, Any] | None = None, seed: int = 0,
                     parity_utterances: int = 0, from_base: bool = False) -> Any:
    """Export an untrained candidate shaped by ``knobs``: pruned at the same ratio and schedule,
    quantizers calibrated on random features. ``parity_utterances > 0`` runs the parity gate on
    that many random inputs (meaningful for float widths only: untrained logits are near ties).
    ``from_base``: shaped as a candidate derived from a base of ``model_config`` (built at width 1.0,
    then pruned to the width and sparsity), the way :func:`run_candidate` derives it.
    Returns the :class:`~edgetune.export.onnx_export.ExportResult`."""
    import torch

    from edgetune.export import export_streaming_onnx
    from edgetune.model import build_model
    from edgetune.model.quant import set_quant
    from edgetune.train import Example, StructuredPruner, calibrate
    from edgetune.train.trainer import GRADUAL_STEPS

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if from_base:
        from edgetune.base._derive import prune_to_knobs

        model = prune_to_knobs(build_model(family, dataclasses.replace(knobs, depth_multiplier=1.0, sparsity=0.0),
                                           model_config), knobs)
    else:
        model = build_model(family, knobs, model_config)
    if knobs.sparsity > 0 and not from_base:
        steps = GRADUAL_STEPS if knobs.prune_schedule == PruneSchedule.GRADUAL else 1
        example = torch.zeros(1, 2 * model.chunk_frames, model.n_mels)
        pruner = StructuredPruner(model, knobs.sparsity, example, steps=steps)
        for _ in range(steps):
            pruner.step()
    feats = [torch.randn(int(model.chunk_frames * (1 + i % 3)), model.n_mels, generator=gen) for i in range(8)]
    if knobs.bits != 32:
        head_bits = {name: 8 for name in model.edge_layers()} if knobs.bits == 4 else None
        set_quant(model, knobs.bits, observer=knobs.observer.value, head_bits=head_bits)
        calibrate(model, [Example(f, [1], "a") for f in feats], pad_value=0.0, batch_size=4)
    model.eval()
    parity = [f.numpy() for f in feats[:parity_utterances]]
    return export_streaming_onnx(model, knobs, path, parity_features=parity, check=parity_utterances > 0)


def measure_untrained(knobs: Knobs, out_dir: Path, *, family: str = "conformer_lite", target: str = "local",
                      bench_threads: int = 1, bench_runs: int = 200, bench_warmup: int = 20,
                      model_config: dict[str, Any] | None = None, base: "str | Path | None" = None,
                      init: str = "base") -> dict[str, Any]:
    """Latency and size of an untrained candidate of the same shapes (for latency-first rejection).

    With a ``base`` (and ``init="base"``) the shapes are those of a candidate derived from it.

    Writes ``out_dir/untrained.onnx``; returns the bench fields (``latency_ms``, ``rtf``,
    ``size_bytes``, ``gzip_bytes``, ``peak_rss_bytes``, ``algorithmic_latency_ms``) plus
    ``params``, ``knobs`` and ``untrained: True``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "untrained.onnx"
    from_base = False
    if base is not None:
        from edgetune.base import load_base

        card = load_base(base, rebuild_onnx=False).card
        family, model_config, from_base = card["family"], card["model_config"], init == "base"
    exported = export_untrained(knobs, path, family=family, model_config=model_config, from_base=from_base)
    bench = _bench(path, target, bench_threads, bench_runs, bench_warmup)
    return json_safe({**_bench_fields(bench), "size_bytes": path.stat().st_size,
                      "params": exported.spec.model_config.get("params"), "knobs": knobs.to_dict(),
                      "untrained": True, "host": _host(bench, bench_threads)}, non_finite="null")


__all__ = ["export_untrained", "measure_untrained", "run_candidate", "wer_from_transcripts"]
