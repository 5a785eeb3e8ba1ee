"""Train once, compress many: the base model every trial is derived from.

A **base directory** holds

- ``model.safetensors``: the fp32 weights (width 1.0), feature normalisation included;
- ``card.json`` / ``card.md``: family, model_config, features, vocabulary, training settings,
  the data fingerprint (dataset, voices or speakers used, manifest sha256), parameters,
  training GPU-seconds, and the WER at each chunk size on dev and test, **measured on the
  exported fp32 streaming ONNX file** in ONNX Runtime;
- ``model.onnx``: that fp32 streaming file at ``export_chunk_ms`` (rebuilt by
  :func:`load_base` when absent, e.g. in a fresh clone where ONNX files are not committed);
- ``checkpoints/``: the training state while it runs (see :mod:`edgetune.train._checkpoint`).

:func:`train_base` trains one (resuming from ``checkpoints/`` after a kill), :func:`load_base`
opens one, :func:`import_checkpoint` turns a team's own weights for a registered family into
one (safetensors or ``torch.load(weights_only=True)`` only; keys and shapes checked).
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetune._io import atomic_write, atomic_write_text, json_safe, sha256_file
from edgetune.base._config import BaseConfig
from edgetune.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

    from edgetune.data import DatasetSplits

CARD = "card.json"
CARD_MD = "card.md"
WEIGHTS = "model.safetensors"
ONNX = "model.onnx"
CHECKPOINTS = "checkpoints"
FORMAT = "edgetune-base"
#: buffers a team's checkpoint may lack: QAT observers (re-made from data) and feature statistics
OPTIONAL_KEYS = ("min_val", "max_val", "initialized")


@dataclass(frozen=True)
class BaseModel:
    """An opened base directory."""

    path: Path
    card: dict[str, Any]

    @property
    def family(self) -> str:
        return self.card["family"]

    @property
    def model_config(self) -> dict[str, Any]:
        return self.card["model_config"]

    def wer(self, chunk_ms: int, split: str = "test") -> float | None:
        """The base's fp32 ONNX WER at ``chunk_ms`` on ``split`` (None if not measured there)."""
        entry = (self.card.get("wer") or {}).get(str(chunk_ms)) or {}
        return entry.get(split)

    def build(self, chunk_ms: int, device: str = "cpu") -> "torch.nn.Module":
        """The base as a float PyTorch model streaming at ``chunk_ms``."""
        from safetensors.torch import load_file

        from edgetune.knobs import Knobs
        from edgetune.model import build_model

        model = build_model(self.family, Knobs(bits=32, chunk_ms=chunk_ms), self.model_config)
        model.load_state_dict(load_file(str(self.path / WEIGHTS), device="cpu"))
        return model.to(device).eval()


def _features():
    from edgetune.data import FeatureSpec

    return FeatureSpec()


def data_fingerprint(dataset: str, splits: "DatasetSplits", seed: int = 0) -> dict[str, Any]:
    """What the base was trained on: dataset, the voices (built-in corpus) or speakers used, manifest sha256."""
    from edgetune.data import PRESETS
    from edgetune.data._corpus import plan_corpus, resolve_preset

    out: dict[str, Any] = {"dataset": str(dataset), "train_utterances": len(splits.train),
                           "dev_utterances": len(splits.dev)}
    if isinstance(dataset, str) and dataset in PRESETS:
        plan = plan_corpus(resolve_preset(dataset), seed)
        out["corpus_seed"] = seed
        out["train_voices"] = sorted({job.variant for job in plan["train"]})
        out["dev_voices"] = sorted({job.variant for job in plan["dev"]})
    else:
        out["train_speakers"] = sorted({u.group for u in splits.train if u.group})
    sums = {}
    for split in ("train", "dev", "test"):
        manifest = Path(splits.root) / f"{split}.jsonl"
        if manifest.is_file():
            sums[split] = sha256_file(manifest)
    out["manifest_sha256"] = sums
    return out


def _examples(utts: list[Any], progress: bool) -> list[Any]:
    from edgetune.data import extract_features
    from edgetune.train._batching import make_examples as make

    return make(utts, extract_features(utts, _features(), progress=progress))


def onnx_wer(path: Path, examples: list[Any], threads: int = 0) -> dict[str, Any]:
    """Greedy WER of the streaming ONNX file at ``path`` over ``examples`` (features already computed)."""
    from edgetune._runner import StreamingModel
    from edgetune.train.trainer import wer_from_transcripts

    if not examples:
        return {"wer": float("nan"), "utterances": 0}
    workers = threads or min(16, os.cpu_count() or 1)
    shards = [examples[i::workers] for i in range(workers)]

    def run(shard: list[Any]) -> list[dict[str, Any]]:
        stream = StreamingModel(str(path), threads=1)
        return [{"ref": e.text, "hyp": stream.greedy_text(stream.run_utterance(e.feats.numpy())), "group": e.group}
                for e in shard]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = [r for part in pool.map(run, shards) for r in part]
    res = wer_from_transcripts(rows)
    return {"wer": res["wer"], "worst_group_wer": res["worst_group_wer"], "utterances": len(rows)}


def export_base(model: Any, path: Path, chunk_ms: int, parity_examples: list[Any]) -> Any:
    """Export the float base at ``chunk_ms`` through the parity gate (fp32 tolerance)."""
    from edgetune.export import export_streaming_onnx
    from edgetune.knobs import Knobs

    model.set_chunk(chunk_ms)
    feats = [e.feats.numpy() for e in parity_examples[:50]]
    return export_streaming_onnx(model.cpu().eval(), Knobs(bits=32, chunk_ms=chunk_ms), path,
                                 parity_features=feats, features=_features())


def measure_chunks(model: Any, out_dir: Path, chunks: list[int], export_chunk: int, dev: list[Any],
                   test: list[Any], log: Any = print) -> dict[str, dict[str, Any]]:
    """Export the base at every chunk and measure dev and test WER on each file; keeps ``model.onnx`` at ``export_chunk``."""
    wer: dict[str, dict[str, Any]] = {}
    for chunk in chunks:
        path = out_dir / (ONNX if chunk == export_chunk else f".chunk-{chunk}.onnx")
        exported = export_base(model, path, chunk, dev or test)
        dev_res, test_res = onnx_wer(path, dev), onnx_wer(path, test)
        wer[str(chunk)] = {"dev": dev_res["wer"], "test": test_res["wer"],
                           "test_worst_group": test_res.get("worst_group_wer"),
                           "dev_utterances": dev_res["utterances"], "test_utterances": test_res["utterances"],
                           "parity_identical": (exported.parity or {}).get("identical_fraction")}
        log(f"base at chunk {chunk} ms: dev WER {dev_res['wer']:.4f}, test WER {test_res['wer']:.4f} "
            f"(fp32 ONNX, {test_res['utterances']} test utterances)")
        if chunk != export_chunk:
            path.unlink(missing_ok=True)
    model.set_chunk(export_chunk)
    return wer


def _save_weights(model: Any, path: Path) -> None:
    """The model's state dict as safetensors, written atomically."""
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp)))


def _write_card(out_dir: Path, card: dict[str, Any]) -> None:
    card = json_safe(card, non_finite="null")  # strict JSON: NaN/inf -> null
    atomic_write_text(out_dir / CARD, json.dumps(card, indent=2, sort_keys=True))
    rows = "\n".join(f"| {c} ms | {_fmt(v.get('dev'))} | {_fmt(v.get('test'))} | {v.get('test_utterances')} |"
                     for c, v in sorted((card.get("wer") or {}).items(), key=lambda kv: int(kv[0])))
    data = card.get("data") or {}
    md = f"""# Base model `{card['name']}`

- family `{card['family']}`, {card['params']:,} parameters, fp32 weights (`{WEIGHTS}`, sha256 `{card['weights_sha256'][:16]}…`)
- model_config: `{json.dumps(card['model_config'], sort_keys=True)}`
- features: Kaldi fbank, {card['features']['n_mels']} bins, {card['features']['sample_rate']} Hz (sherpa-onnx settings)
- trained on `{data.get('dataset')}` ({data.get('train_utterances')} utterances, {len(data.get('train_voices') or data.get('train_speakers') or [])} voices/speakers),
  dynamic chunks {card['training'].get('chunks')} ms{' + full context' if card['training'].get('full_context') else ''},
  {_epochs(card)} on {card['training'].get('device')}, {_seconds(card)}
- made by: `{card.get('command', '')}`

WER of the exported fp32 streaming ONNX file (greedy CTC, ONNX Runtime), same weights at every chunk:

| chunk | dev WER | test WER | test utterances |
|---|---|---|---|
{rows}
"""
    atomic_write_text(out_dir / CARD_MD, md)


def _epochs(card: dict[str, Any]) -> str:
    t = card.get("training") or {}
    if t.get("imported"):
        return "imported (not trained here)"
    done, total = t.get("epochs_run"), t.get("epochs")
    return f"{done}/{total} epochs" + ("" if card.get("complete", True) else " (finalized early from a checkpoint)")


def _seconds(card: dict[str, Any]) -> str:
    t = card.get("training") or {}
    gpu = t.get("gpu_seconds")
    text = f"{t.get('train_seconds') or 0:.0f} s of training"
    return text + (f", {gpu:.0f} GPU-seconds" if gpu else "")


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def recipe(config: BaseConfig) -> tuple[Any, Any]:
    """The :class:`Knobs` and :class:`TrainSettings` a base config trains with (bits 32, no QAT)."""
    from edgetune.knobs import Knobs, TrainSettings

    t = config.train
    knobs = Knobs(bits=32, chunk_ms=config.export_chunk_ms, lr=t.lr, specaugment=t.specaugment)
    settings = TrainSettings(epochs=t.epochs, batch_size=t.batch_size, seed=t.seed, device=t.device,
                             qat_fraction=0.0, num_threads=t.num_threads)
    return knobs, settings


def fit_base(config: BaseConfig, model: Any, train_set: list[Any], dev_set: list[Any], *, checkpoint: Any = None,
             deadline: float | None = None, on_epoch: Any = None, progress: bool = False, echo: bool = True) -> Any:
    """Train ``model`` (built for ``config``) by ``config``'s recipe through :func:`edgetune.train.train_model`.

    The one training path of a base: :func:`train_base`, ``edgetune base tune`` trials and
    population members all call it (``on_epoch`` returning False stops, as in ``train_model``)."""
    import functools

    from edgetune.data import VOCABULARY, spec_augment
    from edgetune.train import train_model

    t = config.train
    knobs, settings = recipe(config)
    augment = None
    if (t.freq_width, t.time_width) != (15, 25):
        augment = functools.partial(spec_augment, freq_width=t.freq_width, time_width=t.time_width)
    return train_model(model, knobs, settings, train_set, dev_set, vocabulary=VOCABULARY,
                       pad_value=_features().silence, progress=progress, chunk_choices=config.chunk_choices(),
                       checkpoint=checkpoint, deadline=deadline, echo=echo, on_epoch=on_epoch,
                       spec_augment=augment, weight_decay=t.weight_decay, warmup_fraction=t.warmup_fraction,
                       grad_clip=t.grad_clip)


class TrainingPaused(Exception):
    """Base training stopped at its time budget after a checkpoint; the same call resumes it."""


def train_base(config: BaseConfig, out_dir: str | os.PathLike, *, progress: bool = True,
               command: str = "", log: Any = print, max_minutes: float | None = None,
               finalize: bool = False) -> BaseModel:
    """Train ``config``'s base into ``out_dir`` (resumes from ``out_dir/checkpoints`` after a kill).

    ``max_minutes``: pause after the epoch that crosses this much wall time (for machines lent in
    slots), raising :class:`TrainingPaused`; calling again continues from the checkpoint.
    ``finalize``: stop here: make the base from the latest checkpoint without training further
    (exported and measured like a finished one; the card says ``complete: false`` and the epoch it
    stopped at). A later call without ``finalize`` continues the training from that checkpoint.
    """
    import torch

    from edgetune import __version__
    from edgetune.data import VOCABULARY, load_validated_dataset
    from edgetune.model import build_model
    from edgetune.train._checkpoint import TrainCheckpoint

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / CARD).is_file() and (out / WEIGHTS).is_file() and not finalize:
        existing = load_base(out, rebuild_onnx=False)
        if existing.card.get("config") == config.to_dict() and (
                existing.card.get("complete", True) or not (out / CHECKPOINTS / "latest").is_file()):
            log(f"base {out} is already trained (card.json); delete it to train again")
            return existing
    t0 = time.perf_counter()
    deadline = time.monotonic() + 60.0 * max_minutes if max_minutes else None
    log(f"dataset {config.dataset!r}: loading and computing features")
    splits = load_validated_dataset(config.dataset, progress=progress)  # every bad file, before training
    if not splits.train or not splits.test:
        raise DataError(f"dataset {config.dataset!r} needs train and test utterances to train a base")
    fingerprint = data_fingerprint(config.dataset, splits)
    ckpt = TrainCheckpoint(out / CHECKPOINTS, {"config": config.to_dict(), "data": fingerprint})
    if finalize and ckpt.latest() is None:
        raise ConfigError(f"nothing to finalize: {out / CHECKPOINTS} holds no checkpoint; fix: train first")
    train_set = [] if finalize else _examples(splits.train, progress)
    dev_set = _examples(splits.dev, progress)
    test_set = _examples(splits.test, progress)
    log(f"features ready after {time.perf_counter() - t0:.0f} s: {len(train_set)} train, {len(dev_set)} dev, "
        f"{len(test_set)} test utterances")
    t = config.train
    knobs, settings = recipe(config)
    torch.manual_seed(t.seed)
    model = build_model(config.family, knobs, config.resolved_model_config())
    if finalize:
        from safetensors.torch import load_file

        from edgetune.train import TrainResult

        state = ckpt.state()
        model.load_state_dict(load_file(str(ckpt.latest() / "model.safetensors"), device="cpu"))
        device = state.get("device") or "unknown (checkpoint written before devices were recorded)"
        seconds = float(state.get("train_seconds", 0.0))
        result = TrainResult(device=device, epochs_run=state["epoch"], steps=state["step"], train_seconds=seconds,
                             stopped_early=state["epoch"] < t.epochs, params_initial=0, params_final=0,
                             qat_start_step=None, prune_steps=[], history=list(state["history"]))
        log(f"finalizing base {out} from {ckpt.latest()} (epoch {state['epoch']}/{t.epochs}) without more training")
    else:
        if ckpt.latest() is not None:
            log(f"resuming base training from {ckpt.latest()}")
        result = fit_base(config, model, train_set, dev_set, checkpoint=ckpt, deadline=deadline, progress=progress)
    if result.paused:
        raise TrainingPaused(f"base {out} paused after epoch {result.epochs_run}/{t.epochs} "
                             f"({max_minutes} min budget); run the same command again to continue")
    model = model.cpu().eval()
    _save_weights(model, out / WEIGHTS)
    wer = measure_chunks(model, out, list(config.eval_chunks), config.export_chunk_ms, dev_set, test_set, log)
    card = {
        "format": FORMAT, "format_version": 1, "name": config.name, "family": config.family,
        "model_config": model.config.to_dict(), "features": asdict(_features()),
        "vocabulary": list(VOCABULARY), "blank_id": 0, "params": sum(p.numel() for p in model.parameters()),
        "weights_sha256": sha256_file(out / WEIGHTS), "export_chunk_ms": config.export_chunk_ms,
        "training": {**asdict(config.train), "chunks": list(config.chunks), "full_context": config.full_context,
                     "device": result.device, "epochs_run": result.epochs_run, "steps": result.steps,
                     "train_seconds": result.train_seconds,
                     "gpu_seconds": result.gpu_seconds if not result.device.startswith("unknown") else None,
                     "history": result.history, "torch": torch.__version__,
                     "gpu": torch.cuda.get_device_name(0) if result.device.startswith("cuda") and
                     torch.cuda.is_available() else None},
        "data": fingerprint, "wer": wer, "config": config.to_dict(), "command": command,
        "edgetune_version": __version__, "seconds": time.perf_counter() - t0,
        "test_set": {"dataset": config.dataset, "utterances": len(test_set)},
        "complete": result.epochs_run >= t.epochs,
    }
    _write_card(out, card)
    return BaseModel(out, json.loads((out / CARD).read_text(encoding="utf-8")))


def load_base(path: str | os.PathLike, *, rebuild_onnx: bool = True) -> BaseModel:
    """Open a base directory (errors name the file and the fix); re-export ``model.onnx`` if it is missing."""
    folder = Path(path)
    card_path = folder / CARD
    if not card_path.is_file() or not (folder / WEIGHTS).is_file():
        raise ConfigError(f"{folder} is not an edgetune base directory (needs {CARD} and {WEIGHTS}); "
                          f"fix: train one with `edgetune base train --config base.yaml --out {folder}`")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{card_path} cannot be read as JSON ({exc}); restore it from git or retrain") from None
    if card.get("format") != FORMAT:
        raise ConfigError(f"{card_path} has format {card.get('format')!r}, expected {FORMAT!r}")
    if sha256_file(folder / WEIGHTS) != card.get("weights_sha256"):
        raise ConfigError(f"{folder / WEIGHTS} does not match the sha256 in {card_path}: the weights were changed "
                          "or damaged; fix: restore them (git checkout) or retrain the base")
    base = BaseModel(folder, card)
    if rebuild_onnx and not (folder / ONNX).is_file():
        from edgetune.export import export_streaming_onnx
        from edgetune.knobs import Knobs

        chunk = int(card.get("export_chunk_ms", 320))
        export_streaming_onnx(base.build(chunk), Knobs(bits=32, chunk_ms=chunk), folder / ONNX, check=False)
    return base


def _read_state_dict(path: Path) -> dict[str, "torch.Tensor"]:
    """A state dict from safetensors, or from a torch file with ``weights_only=True`` (never full pickle)."""
    import torch

    if not path.is_file():
        raise ConfigError(f"base checkpoint {path} does not exist; fix the base.checkpoint path")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise ConfigError(f"base checkpoint {path} is not a readable safetensors file: {exc}") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"base checkpoint {path} cannot be loaded with torch.load(weights_only=True) "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                          "fix: save a plain state_dict, or convert it to .safetensors") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ConfigError(f"base checkpoint {path} holds no state_dict (a mapping of names to tensors)")
    return obj


def load_weights_checked(model: Any, state: dict[str, "torch.Tensor"], source: str) -> list[str]:
    """Load ``state`` into ``model``, checking keys and shapes; returns the optional keys that were absent.

    The error names the first mismatched tensor. QAT observer buffers and the feature
    statistics may be absent (they are recomputed from data)."""
    own = model.state_dict()
    for key, value in state.items():
        if key not in own:
            raise ConfigError(f"{source}: tensor {key!r} {tuple(value.shape)} has no counterpart in family "
                              f"{model.family!r} (first unexpected key); fix: check base.family and base.model_config")
        if tuple(own[key].shape) != tuple(value.shape):
            raise ConfigError(f"{source}: tensor {key!r} has shape {tuple(value.shape)}, but the family "
                              f"{model.family!r} with this model_config expects {tuple(own[key].shape)}; "
                              "fix: set base.model_config to the checkpoint's architecture")
    absent = [k for k in own if k not in state]
    required = [k for k in absent if not k.endswith(OPTIONAL_KEYS) and k not in ("feat_mean", "feat_std")]
    if required:
        raise ConfigError(f"{source}: tensor {required[0]!r} {tuple(own[required[0]].shape)} is missing "
                          f"({len(required)} missing in all); fix: check base.family and base.model_config")
    model.load_state_dict({**own, **state})
    return absent


def import_checkpoint(checkpoint: str | os.PathLike, family: str, model_config: dict[str, Any] | None,
                      out_dir: str | os.PathLike, *, dataset: str, chunks: list[int] | None = None,
                      export_chunk_ms: int = 320, progress: bool = True, log: Any = print) -> BaseModel:
    """Make a base directory from a team's own weights for a registered family, measured like a trained base."""
    import torch

    from edgetune import __version__
    from edgetune.data import VOCABULARY, load_validated_dataset
    from edgetune.knobs import Knobs
    from edgetune.model import build_model
    from edgetune.train.trainer import feature_stats

    out = Path(out_dir)
    src = Path(checkpoint)
    digest = sha256_file(src) if src.is_file() else None
    if (out / CARD).is_file() and digest is not None:
        existing = load_base(out)
        if existing.card.get("source_sha256") == digest:
            return existing
    out.mkdir(parents=True, exist_ok=True)
    state = _read_state_dict(src)
    model = build_model(family, Knobs(bits=32, chunk_ms=export_chunk_ms), model_config)
    absent = load_weights_checked(model, state, f"base checkpoint {src}")
    splits = load_validated_dataset(dataset, progress=progress)
    train_set = _examples(splits.train, progress)
    if "feat_mean" in absent or "feat_std" in absent:
        log(f"{src} has no feature statistics: computing them from {dataset!r} train")
        model.set_feature_stats(*feature_stats(train_set))
    model.eval()
    _save_weights(model, out / WEIGHTS)
    dev_set, test_set = _examples(splits.dev, progress), _examples(splits.test, progress)
    chunks = sorted(set(chunks or [export_chunk_ms]) | {export_chunk_ms})
    wer = measure_chunks(model, out, chunks, export_chunk_ms, dev_set, test_set, log)
    card = {
        "format": FORMAT, "format_version": 1, "name": src.stem, "family": family,
        "model_config": model.config.to_dict() if hasattr(model.config, "to_dict") else asdict(model.config),
        "features": asdict(_features()), "vocabulary": list(VOCABULARY), "blank_id": 0,
        "params": sum(p.numel() for p in model.parameters()), "weights_sha256": sha256_file(out / WEIGHTS),
        "export_chunk_ms": export_chunk_ms, "source": str(src), "source_sha256": digest,
        "training": {"imported": True, "chunks": chunks, "gpu_seconds": 0.0, "epochs_run": None, "device": None},
        "data": data_fingerprint(dataset, splits), "wer": wer, "edgetune_version": __version__,
        "torch": torch.__version__, "command": f"import_checkpoint({src})",
    }
    _write_card(out, card)
    return BaseModel(out, json.loads((out / CARD).read_text(encoding="utf-8")))


