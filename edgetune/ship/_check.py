"""The ship check: export to sherpa-onnx, decode audio with the real sherpa-onnx, compare with edgetune.

:func:`ship_check` writes the sherpa-onnx files (:func:`edgetune.export.sherpa.export_sherpa`),
decodes every wave with sherpa-onnx's Python API in a subprocess (a bad model ends sherpa's
process with exit code 255, so it must never run in ours), and decodes the same waves with
edgetune's own runner (:class:`edgetune._runner.StreamingModel`) on the **source** file.

Both sides see the same input: sherpa computes Kaldi fbank of the wave plus
``tail_padding_samples`` zeros and runs chunk ``k`` only while ``k * T + T < frames``; the
edgetune side computes :func:`~edgetune.data.compute_fbank` of the same padded wave and runs the
same chunks. A wave is *identical* when the CTC token sequences are equal. sherpa-onnx 2.0.1's
``text`` drops a leading apostrophe (tokens ``' g`` give the text ``g``), which only an
untrained model emits; ``text_identical_fraction`` compares the texts as sherpa returns them.
The fraction of waves identical to edgetune's default path (``run_utterance`` on the unpadded
wave, last chunk padded with silence features: what WER is measured on) is reported beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgetune._io import atomic_write_text
from edgetune.errors import ShipError

WORKER = Path(__file__).with_name("_sherpa_decode.py")
SHIP_JSON = "ship.json"
#: the issue's bar: transcripts identical to edgetune's streaming path on >= 99 % of a test set
DEFAULT_MIN_IDENTICAL = 0.99


def _ids_to_symbols(ids: Sequence[int], vocabulary: Sequence[str], blank_id: int) -> list[str]:
    """CTC best path -> symbols: collapse repeats, drop blanks (what sherpa's greedy search does)."""
    out, prev = [], -1
    for i in ids:
        if i != prev and i != blank_id:
            out.append(vocabulary[i])
        prev = i
    return out


def _text(symbols: Sequence[str]) -> str:
    return " ".join("".join(symbols).split())


def _load_waves(audio: Sequence[Any], sample_rate: int) -> tuple[list[np.ndarray], list[str]]:
    """Waves and names from paths, :class:`~edgetune.data.Utterance` objects or float arrays."""
    from edgetune.data import load_audio

    waves, names = [], []
    for i, item in enumerate(audio):
        if isinstance(item, np.ndarray):
            if item.ndim != 1:
                raise ShipError(f"wave {i} must be mono [samples], but has shape {list(item.shape)}")
            waves.append(np.clip(item.astype(np.float32), -1.0, 1.0))
            names.append(f"wave{i}")
            continue
        path = getattr(item, "audio_filepath", item)
        waves.append(load_audio(path, sample_rate))
        names.append(str(path))
    return waves, names


def decode_with_sherpa(model: str | os.PathLike, tokens: str | os.PathLike, waves: Sequence[np.ndarray], *,
                       tail_samples: int, sample_rate: int = 16000, threads: int = 1, batch: int = 1,
                       model_type: str = "zipformer2_ctc", worker_args: Sequence[str] = (),
                       python: str | None = None, timeout: float = 600.0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Decode ``waves`` with sherpa-onnx in a subprocess, ``batch`` streams per ``decode_streams`` call.
    Returns ([{text, tokens, chunks, max_batch}], {sherpa_onnx, onnxruntime, batch}: the versions
    sherpa ran with). ShipError (with sherpa's stderr) if the process fails."""
    python = python or sys.executable
    if int(batch) < 1:
        raise ShipError(f"batch must be >= 1 (streams decoded at once), but got {batch}")
    with tempfile.TemporaryDirectory(prefix="edgetune-ship-") as tmp:
        npz = Path(tmp) / "waves.npz"
        np.savez(npz, **{f"w{i}": np.asarray(w, dtype=np.float32) for i, w in enumerate(waves)})
        cmd = [python, str(WORKER), "--model", str(model), "--tokens", str(tokens), "--waves", str(npz),
               "--tail-samples", str(int(tail_samples)), "--threads", str(int(threads)),
               "--sample-rate", str(int(sample_rate)), "--batch", str(int(batch)), "--model-type", model_type,
               *worker_args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ShipError(f"sherpa-onnx did not finish decoding {len(waves)} waves in {timeout:g} s") from None
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        err = proc.stderr.strip()
        if "No module named 'sherpa_onnx'" in err:
            raise ShipError(f"sherpa-onnx is not installed for {python}. Fix: pip install 'edgetune[ship]' "
                            f"(or pip install sherpa-onnx)")
        raise ShipError(f"sherpa-onnx failed on {model} (exit code {proc.returncode}): "
                        f"{err[-2000:] or 'no message'}")
    results = [r for r in lines if r.get("type") == "result"]
    if len(results) != len(waves):
        raise ShipError(f"sherpa-onnx returned {len(results)} results for {len(waves)} waves")
    start = next((r for r in lines if r.get("type") == "start"), {})
    info = {"sherpa_onnx": start.get("sherpa_onnx"), "onnxruntime": start.get("onnxruntime"),
            "batch": start.get("batch", int(batch))}
    return sorted(results, key=lambda r: r["index"]), info


def recognizer_args(info: dict[str, Any]) -> tuple[str, list[str]]:
    """(model type, worker arguments) for a shipped file's ``extra["sherpa_onnx"]``: a wenet_ctc
    recognizer must be built with the file's chunk_size and num_left_chunks."""
    model_type = info.get("model_type", "zipformer2_ctc")
    if model_type == "wenet_ctc":
        return model_type, ["--chunk-size", str(int(info["chunk_size"])),
                            "--num-left-chunks", str(int(info["num_left_chunks"]))]
    return model_type, []


def kaldi_native_fbank(wave: np.ndarray, spec: Any, scale: float = 1.0) -> np.ndarray | None:
    """Features from the ``kaldi-native-fbank`` package (the library inside sherpa-onnx) with
    sherpa's settings, of the samples times ``scale`` (sherpa's wenet_ctc path: 32768), or None
    where the package is not installed."""
    try:
        import kaldi_native_fbank as knf
    except ImportError:
        return None
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(spec.sample_rate)
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins = int(spec.n_mels)
    opts.mel_opts.low_freq = float(spec.low_freq)
    opts.mel_opts.high_freq = float(spec.high_freq)
    fb = knf.OnlineFbank(opts)
    samples = np.asarray(wave, dtype=np.float32) * np.float32(scale)
    fb.accept_waveform(float(spec.sample_rate), samples.tolist())
    fb.input_finished()
    if fb.num_frames_ready == 0:
        return np.zeros((0, spec.n_mels), dtype=np.float32)
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)]).astype(np.float32)


def sample_scale_error(wave: np.ndarray, spec: Any) -> float | None:
    """Measured: the largest |difference| between the features the wenet_ctc graph sees (sherpa's
    fbank of samples x 32768, then ``Max(x - 30 ln 2, ln FLT_EPSILON)``) and the fbank of the
    samples themselves. None where ``kaldi-native-fbank`` is not installed."""
    from edgetune.export._sherpa_wenet import FEATURE_SHIFT, LOG_FLOOR, SAMPLE_SCALE

    plain, scaled = kaldi_native_fbank(wave, spec), kaldi_native_fbank(wave, spec, SAMPLE_SCALE)
    if plain is None or scaled is None or plain.size == 0:
        return None if plain is None else 0.0
    undone = np.maximum(scaled - FEATURE_SHIFT, LOG_FLOOR).astype(np.float32)
    return float(np.max(np.abs(undone - plain)))


def logits_like_sherpa(model: Any, wave: np.ndarray, tail_samples: int, *,
                       features: str = "edgetune") -> tuple[np.ndarray, int] | None:
    """edgetune's runner on exactly the chunks sherpa decodes: (logits ``[T', V]``, chunks).
    ``features="edgetune"`` computes them with :func:`~edgetune.data.compute_fbank` (what edgetune's
    WER is measured on), ``"kaldi-native-fbank"`` with the library sherpa runs (None if it is not
    installed)."""
    from edgetune.data import FeatureSpec, compute_fbank
    from edgetune.export.sherpa import sherpa_chunks

    spec = FeatureSpec(**model.meta["features"])
    padded = np.concatenate([wave, np.zeros(int(tail_samples), dtype=np.float32)])
    feats = compute_fbank(padded, spec) if features == "edgetune" else kaldi_native_fbank(padded, spec)
    if feats is None:
        return None
    c = model.chunk_frames
    n = sherpa_chunks(feats.shape[0], c)
    model.reset()
    if n == 0:
        return np.zeros((0, len(model.meta["vocabulary"])), dtype=np.float32), 0
    return np.concatenate([model.step(feats[k * c:(k + 1) * c]) for k in range(n)], axis=0), n


def decode_like_sherpa(model: Any, wave: np.ndarray, tail_samples: int, *,
                       features: str = "edgetune") -> tuple[list[str], int, float] | None:
    """:func:`logits_like_sherpa` decoded: (symbols, chunks, smallest top-1/top-2 logit margin over
    the decoded frames), or None where ``kaldi-native-fbank`` is asked for and not installed."""
    got = logits_like_sherpa(model, wave, tail_samples, features=features)
    if got is None:
        return None
    logits, chunks = got
    if chunks == 0:
        return [], 0, float("inf")
    top = np.sort(logits, axis=-1)
    margin = float(np.min(top[:, -1] - top[:, -2]))
    ids = logits.argmax(axis=-1).tolist()
    return _ids_to_symbols(ids, model.meta["vocabulary"], int(model.meta["blank_id"])), chunks, margin


def needed_delta(logits: np.ndarray, target: Sequence[int], blank_id: int) -> float | None:
    """The smallest ``delta`` for which :func:`~edgetune.ship._ties.reachable_within` holds: how far
    below a frame's best logit the labels that give ``target`` lie (0: exact ties), None if unreachable."""
    from edgetune.ship._ties import reachable_within

    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[0] == 0:
        return 0.0 if len(target) == 0 else None
    gaps = np.unique(logits.max(axis=-1, keepdims=True) - logits)
    if not reachable_within(logits, target, blank_id, float(gaps[-1])):
        return None
    lo, hi = 0, len(gaps) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if reachable_within(logits, target, blank_id, float(gaps[mid])):
            hi = mid
        else:
            lo = mid + 1
    return float(gaps[lo])


def ship_check(model_path: str | os.PathLike, audio: Sequence[Any], out_dir: str | os.PathLike, *,
               min_identical: float = DEFAULT_MIN_IDENTICAL, batch: int = 1, threads: int = 1,
               model_type: str = "zipformer2_ctc", python: str | None = None, timeout: float = 600.0,
               max_examples: int = 5, layernorm: str = "fused") -> dict[str, Any]:
    """Export ``model_path`` for sherpa-onnx into ``out_dir`` and check that sherpa-onnx decodes
    ``audio`` (paths, :class:`~edgetune.data.Utterance` objects, or float waves at the model's
    sample rate) to edgetune's transcripts. ``model_type``: the sherpa-onnx layout, ``zipformer2_ctc``
    (default) or ``wenet_ctc`` (:mod:`edgetune.export._sherpa_wenet`).

    Returns (and writes to ``out_dir/ship.json``; per-utterance rows in
    ``out_dir/transcripts.jsonl``) a dict with

    - ``identical_fraction``: sherpa's CTC tokens equal those of edgetune's runner on the source
      file, same chunks, features from edgetune's :func:`~edgetune.data.compute_fbank`;
    - ``identical_kaldi_fbank_fraction``: the same with features from ``kaldi-native-fbank``
      (sherpa's own front end; None if not installed): it isolates the export; ``export_exact``
      says whether it is 1. Features of the two front ends differ by up to ~5e-4;
    - ``near_tie_mismatches`` / ``unexplained_mismatches``: of the waves that differ, those whose
      sherpa tokens edgetune's logits give by flipping only frames whose labels lie within
      ``2 * runtime_logit_tolerance`` of the best (:mod:`edgetune.ship._ties`: sherpa bundles its own
      ONNX Runtime, ``sherpa_onnxruntime``, whose float kernels round differently), and the rest;
      ``export_faithful``: no unexplained mismatch on sherpa's own features;
    - ``char_disagreement``: character edit distance between sherpa's and edgetune's transcripts
      over edgetune's characters;
    - ``batch`` > 1: sherpa decodes the waves again, ``batch`` streams per ``decode_streams`` call
      (one model run on ``x [batch, T, 80]``); ``batch_identical_fraction`` is the share whose
      tokens equal the one-stream decode, ``max_batch`` the largest batch sherpa ran;
    - ``passed``: sherpa ran as many chunks as predicted (``chunks_match``), ``export_faithful`` is
      not False, batching changed nothing, and either ``identical_fraction >= min_identical``
      (``passed_by: "identical"``) or every mismatch is a near tie and ``char_disagreement`` <= 1 %
      (``passed_by: "near_ties"``; the identical fraction is still reported as measured);
    - ``wenet_ctc``: ``sample_scale_feature_error``, the largest |feature difference| between
      what the graph sees after undoing sherpa's x32768 sample scale and edgetune's fbank of the
      same waves (measured with kaldi-native-fbank; None for zipformer2_ctc), and
      ``recognizer`` (the chunk_size and num_left_chunks sherpa was built with);
    - ``layernorm``: ``"fused"`` ships the study's file as it is; ``"primitive"`` first writes
      ``out_dir/source-primitive-layernorm.onnx`` (LayerNormalization in primitive ops, whose
      logits agree across ONNX Runtime versions: :func:`~edgetune.export.sherpa.primitive_layernorm_copy`),
      ships that and compares against it; ``identical_to_study_file_fraction`` then says how often
      sherpa's tokens equal those of the study's own file in this ONNX Runtime;
    - the files, sizes, and up to ``max_examples`` mismatches with ``needed_delta`` (how far below
      the best logit sherpa's choice lies on the frames that flip; 0 is an exact tie).

    Raises ShipError when sherpa-onnx cannot load or run the model, ExportError when the file
    cannot be converted.
    """
    from edgetune._runner import StreamingModel
    from edgetune.data import FeatureSpec, compute_fbank
    from edgetune.export.parity import _edit_distance
    from edgetune.export.sherpa import LAYERNORM_MODES, export_sherpa, primitive_layernorm_copy, tail_padding_samples
    from edgetune.ship._ties import MAX_CHAR_DISAGREEMENT, reachable_within, runtime_tolerance

    if not 0.0 <= min_identical <= 1.0:
        raise ShipError(f"min_identical must be in [0, 1], but got {min_identical}")
    if int(batch) < 1:
        raise ShipError(f"batch must be >= 1 (streams decoded at once), but got {batch}")
    if len(audio) == 0:
        raise ShipError("the ship check needs at least one audio file or wave to decode")
    if layernorm not in LAYERNORM_MODES:
        raise ShipError(f"layernorm must be one of {', '.join(LAYERNORM_MODES)}, but got {layernorm!r}")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    study_file = Path(model_path)
    if layernorm == "primitive":
        model_path = out_dir / "source-primitive-layernorm.onnx"
        primitive_layernorm_copy(study_file, model_path)
    exported = export_sherpa(model_path, out_dir, model_type=model_type)
    spec = exported.spec
    tail = tail_padding_samples(spec)
    waves, names = _load_waves(audio, spec.features.sample_rate)
    info_type, worker_args = recognizer_args(spec.extra["sherpa_onnx"])
    kw = dict(tail_samples=tail, sample_rate=spec.features.sample_rate, threads=threads, python=python,
              timeout=timeout, model_type=info_type, worker_args=worker_args)
    sherpa, info = decode_with_sherpa(exported.model, exported.tokens, waves, **kw)
    batched = decode_with_sherpa(exported.model, exported.tokens, waves, batch=batch, **kw)[0] if batch > 1 else None
    ref = StreamingModel(str(model_path), threads=threads)
    study_ref = StreamingModel(str(study_file), threads=threads) if layernorm == "primitive" else None
    feature_spec = FeatureSpec(**ref.meta["features"])
    vocab, blank = ref.meta["vocabulary"], int(ref.meta["blank_id"])
    ids_of = {sym: i for i, sym in enumerate(vocab)}
    eps = runtime_tolerance(spec.knobs.get("bits"))
    counts = {"identical": 0, "knf": 0, "default": 0, "text": 0, "near": 0, "knf_unexplained": 0, "batch": 0,
              "study_file": 0}
    edits = chars = 0
    knf_available = True
    mismatches: list[dict[str, Any]] = []
    rows = []
    for i, (wave, name, got) in enumerate(zip(waves, names, sherpa)):
        logits, chunks = logits_like_sherpa(ref, wave, tail)
        symbols = _ids_to_symbols(logits.argmax(axis=-1).tolist(), vocab, blank)
        top = np.sort(logits, axis=-1)
        margin = float(np.min(top[:, -1] - top[:, -2])) if chunks else float("inf")
        knf = logits_like_sherpa(ref, wave, tail, features="kaldi-native-fbank")
        knf_available = knf_available and knf is not None
        knf_symbols = None if knf is None else _ids_to_symbols(knf[0].argmax(axis=-1).tolist(), vocab, blank)
        sherpa_symbols = [s.replace("\u2581", " ") for s in got["tokens"]]
        target = [ids_of.get(s, -1) for s in sherpa_symbols]
        default = ref.greedy_text(ref.run_utterance(compute_fbank(wave, feature_spec)))
        text = " ".join(got["text"].split())
        row = {"name": name, "sherpa": _text(sherpa_symbols), "sherpa_text": text, "edgetune": _text(symbols),
               "edgetune_default": default, "identical": sherpa_symbols == symbols,
               "identical_kaldi_fbank": None if knf is None else sherpa_symbols == knf_symbols,
               "chunks": got["chunks"], "edgetune_chunks": chunks, "min_margin": round(margin, 6)}
        if not row["identical"]:
            row["near_tie"] = -1 not in target and reachable_within(logits, target, blank, 2 * eps)
            delta = needed_delta(logits, target, blank) if -1 not in target else None
            row["needed_delta"] = None if delta is None else round(delta, 6)
            counts["near"] += row["near_tie"]
        if row["identical_kaldi_fbank"] is False:
            counts["knf_unexplained"] += not (-1 not in target and reachable_within(knf[0], target, blank, 2 * eps))
        if study_ref is not None:
            study_logits = logits_like_sherpa(study_ref, wave, tail)[0]
            row["identical_to_study_file"] = sherpa_symbols == _ids_to_symbols(
                study_logits.argmax(axis=-1).tolist(), vocab, blank)
            counts["study_file"] += row["identical_to_study_file"]
        if batched is not None:
            row["batch_identical"] = batched[i]["tokens"] == got["tokens"]
            counts["batch"] += row["batch_identical"]
        edits += _edit_distance(row["sherpa"], row["edgetune"])
        chars += max(1, len(row["edgetune"]))
        counts["identical"] += row["identical"]
        counts["knf"] += bool(row["identical_kaldi_fbank"])
        counts["default"] += row["sherpa"] == default
        counts["text"] += text == row["edgetune"]
        rows.append(row)
        if not (row["identical"] and row["identical_kaldi_fbank"] in (True, None) and row.get("batch_identical", True)) \
                and len(mismatches) < max_examples:
            mismatches.append(row)
    n = len(waves)
    scale_error = None
    if info_type == "wenet_ctc":
        errors = [sample_scale_error(np.concatenate([w, np.zeros(tail, np.float32)]), feature_spec) for w in waves]
        scale_error = None if None in errors else max(errors)
    knf_fraction = counts["knf"] / n if knf_available else None
    result = {
        "engine": "sherpa-onnx", "sherpa_onnx_version": info["sherpa_onnx"],
        "sherpa_onnxruntime": info["onnxruntime"], "onnxruntime": _ort_version(), "model_type": info_type,
        "recognizer": ({k: spec.extra["sherpa_onnx"][k] for k in ("chunk_size", "num_left_chunks")}
                       if info_type == "wenet_ctc" else None),
        "sample_scale_feature_error": scale_error,
        "source": str(model_path), "source_sha256": exported.source_sha256, "layernorm": layernorm,
        "study_file": str(study_file),
        "identical_to_study_file_fraction": None if study_ref is None else counts["study_file"] / n,
        "model": str(exported.model), "tokens": str(exported.tokens), "howto": str(exported.howto),
        "size_bytes": exported.size_bytes, "bits": spec.knobs.get("bits"), "weight_storage": spec.weight_storage,
        "tail_padding_samples": tail, "utterances": n, "identical": counts["identical"],
        "identical_fraction": counts["identical"] / n, "identical_kaldi_fbank_fraction": knf_fraction,
        "export_exact": None if knf_fraction is None else knf_fraction == 1.0,
        "export_faithful": None if knf_fraction is None else counts["knf_unexplained"] == 0,
        "near_tie_mismatches": counts["near"], "unexplained_mismatches": n - counts["identical"] - counts["near"],
        "runtime_logit_tolerance": eps, "char_disagreement": edits / max(1, chars),
        "identical_to_default_fraction": counts["default"] / n, "text_identical_fraction": counts["text"] / n,
        "min_identical": min_identical, "batch": int(batch),
        "batch_identical_fraction": None if batched is None else counts["batch"] / n,
        "max_batch": max(r.get("max_batch", 1) for r in (batched or sherpa)),
        "chunks_match": all(r["chunks"] == r["edgetune_chunks"] for r in rows),
        "mismatches": mismatches, "seconds": round(time.perf_counter() - t0, 3),
    }
    by_identical = result["identical_fraction"] >= min_identical
    by_near_ties = result["unexplained_mismatches"] == 0 and result["char_disagreement"] <= MAX_CHAR_DISAGREEMENT
    result["passed_by"] = "identical" if by_identical else "near_ties" if by_near_ties else None
    result["passed"] = bool(result["passed_by"] and result["export_faithful"] is not False and result["chunks_match"]
                            and result["batch_identical_fraction"] in (None, 1.0))
    atomic_write_text(out_dir / "transcripts.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    atomic_write_text(out_dir / SHIP_JSON, json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def _ort_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__
