"""The ship check: export to sherpa-onnx, decode audio with the real sherpa-onnx, compare with edgetune.

:func:`ship_check` writes the sherpa-onnx files (:func:`edgetune.export.sherpa.export_sherpa`),
decodes every wave with sherpa-onnx's Python API in a subprocess (a bad model ends sherpa's
process with exit code 255, so it must never run in ours), and decodes the same waves with
edgetune's own runner (:class:`edgetune.bench.runner.StreamingModel`) on the **source** file.

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

from edgetune.data._manifest import atomic_write_text
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
                       tail_samples: int, sample_rate: int = 16000, threads: int = 1,
                       python: str | None = None, timeout: float = 600.0) -> tuple[list[dict[str, Any]], str | None]:
    """Decode ``waves`` with sherpa-onnx in a subprocess; ([{text, tokens, chunks}], sherpa version).
    ShipError (with sherpa's stderr) if the process fails."""
    python = python or sys.executable
    with tempfile.TemporaryDirectory(prefix="edgetune-ship-") as tmp:
        npz = Path(tmp) / "waves.npz"
        np.savez(npz, **{f"w{i}": np.asarray(w, dtype=np.float32) for i, w in enumerate(waves)})
        cmd = [python, str(WORKER), "--model", str(model), "--tokens", str(tokens), "--waves", str(npz),
               "--tail-samples", str(int(tail_samples)), "--threads", str(int(threads)),
               "--sample-rate", str(int(sample_rate))]
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
    version = next((r.get("sherpa_onnx") for r in lines if r.get("type") == "start"), None)
    return sorted(results, key=lambda r: r["index"]), version


def kaldi_native_fbank(wave: np.ndarray, spec: Any) -> np.ndarray | None:
    """Features from the ``kaldi-native-fbank`` package (the library inside sherpa-onnx) with
    sherpa's settings, or None where the package is not installed."""
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
    fb.accept_waveform(float(spec.sample_rate), np.asarray(wave, dtype=np.float32).tolist())
    fb.input_finished()
    if fb.num_frames_ready == 0:
        return np.zeros((0, spec.n_mels), dtype=np.float32)
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)]).astype(np.float32)


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


def ship_check(model_path: str | os.PathLike, audio: Sequence[Any], out_dir: str | os.PathLike, *,
               min_identical: float = DEFAULT_MIN_IDENTICAL, threads: int = 1, python: str | None = None,
               timeout: float = 600.0, max_examples: int = 5) -> dict[str, Any]:
    """Export ``model_path`` for sherpa-onnx into ``out_dir`` and check that sherpa-onnx decodes
    ``audio`` (paths, :class:`~edgetune.data.Utterance` objects, or float waves at the model's
    sample rate) to edgetune's transcripts.

    Returns (and writes to ``out_dir/ship.json``; per-utterance rows in
    ``out_dir/transcripts.jsonl``) a dict with

    - ``identical_fraction``: sherpa's CTC tokens equal those of edgetune's runner on the source
      file, same chunks, features from edgetune's :func:`~edgetune.data.compute_fbank`;
    - ``identical_kaldi_fbank_fraction``: the same with features from ``kaldi-native-fbank``
      (sherpa's own front end; None if not installed): it isolates the export, so
      ``export_exact`` (this fraction is 1) must hold. Features of the two front ends differ by
      up to ~5e-4, which can move a quantized activation by one step on a near-tied frame;
    - ``identical_to_default_fraction``: sherpa vs edgetune's default decoding
      (``run_utterance``, the way edgetune's WER is measured), for information;
    - ``passed``: ``identical_fraction >= min_identical``, ``export_exact`` not False, and sherpa
      ran as many chunks as predicted (``chunks_match``);
    - the files, sizes, and up to ``max_examples`` mismatches with their smallest logit margin.

    Raises ShipError when sherpa-onnx cannot load or run the model, ExportError when the file
    cannot be converted.
    """
    from edgetune.bench.runner import StreamingModel
    from edgetune.data import FeatureSpec, compute_fbank
    from edgetune.export.sherpa import MODEL_TYPE, export_sherpa, tail_padding_samples

    if not 0.0 <= min_identical <= 1.0:
        raise ShipError(f"min_identical must be in [0, 1], but got {min_identical}")
    if len(audio) == 0:
        raise ShipError("the ship check needs at least one audio file or wave to decode")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    exported = export_sherpa(model_path, out_dir)
    spec = exported.spec
    tail = tail_padding_samples(spec)
    waves, names = _load_waves(audio, spec.features.sample_rate)
    sherpa, version = decode_with_sherpa(exported.model, exported.tokens, waves, tail_samples=tail,
                                         sample_rate=spec.features.sample_rate, threads=threads,
                                         python=python, timeout=timeout)
    ref = StreamingModel(str(model_path), threads=threads)
    feature_spec = FeatureSpec(**ref.meta["features"])
    counts = {"identical": 0, "knf": 0, "default": 0, "text": 0}
    knf_available = True
    mismatches: list[dict[str, Any]] = []
    rows = []
    for wave, name, got in zip(waves, names, sherpa):
        symbols, chunks, margin = decode_like_sherpa(ref, wave, tail)
        knf = decode_like_sherpa(ref, wave, tail, features="kaldi-native-fbank")
        knf_available = knf_available and knf is not None
        sherpa_symbols = [s.replace("\u2581", " ") for s in got["tokens"]]
        default = ref.greedy_text(ref.run_utterance(compute_fbank(wave, feature_spec)))
        text = " ".join(got["text"].split())
        row = {"name": name, "sherpa": _text(sherpa_symbols), "sherpa_text": text, "edgetune": _text(symbols),
               "edgetune_default": default, "identical": sherpa_symbols == symbols,
               "identical_kaldi_fbank": None if knf is None else sherpa_symbols == knf[0],
               "chunks": got["chunks"], "edgetune_chunks": chunks, "min_margin": round(margin, 6)}
        counts["identical"] += row["identical"]
        counts["knf"] += bool(row["identical_kaldi_fbank"])
        counts["default"] += row["sherpa"] == default
        counts["text"] += text == row["edgetune"]
        rows.append(row)
        if not (row["identical"] and row["identical_kaldi_fbank"] in (True, None)) and len(mismatches) < max_examples:
            mismatches.append(row)
    n = len(waves)
    knf_fraction = counts["knf"] / n if knf_available else None
    result = {
        "engine": "sherpa-onnx", "sherpa_onnx_version": version, "model_type": MODEL_TYPE,
        "source": str(model_path), "source_sha256": exported.source_sha256,
        "model": str(exported.model), "tokens": str(exported.tokens), "howto": str(exported.howto),
        "size_bytes": exported.size_bytes, "bits": spec.knobs.get("bits"), "weight_storage": spec.weight_storage,
        "tail_padding_samples": tail, "utterances": n, "identical": counts["identical"],
        "identical_fraction": counts["identical"] / n, "identical_kaldi_fbank_fraction": knf_fraction,
        "export_exact": None if knf_fraction is None else knf_fraction == 1.0,
        "identical_to_default_fraction": counts["default"] / n, "text_identical_fraction": counts["text"] / n,
        "min_identical": min_identical,
        "chunks_match": all(r["chunks"] == r["edgetune_chunks"] for r in rows),
        "mismatches": mismatches, "seconds": round(time.perf_counter() - t0, 3),
    }
    result["passed"] = bool(result["identical_fraction"] >= min_identical and result["export_exact"] is not False
                            and result["chunks_match"])
    atomic_write_text(out_dir / "transcripts.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    atomic_write_text(out_dir / SHIP_JSON, json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
