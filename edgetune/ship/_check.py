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


def decode_like_sherpa(model: Any, wave: np.ndarray, tail_samples: int) -> tuple[list[str], int]:
    """edgetune's runner on exactly the frames sherpa decodes: (symbols, chunks)."""
    from edgetune.data import FeatureSpec, compute_fbank
    from edgetune.export.sherpa import sherpa_chunks

    spec = FeatureSpec(**model.meta["features"])
    feats = compute_fbank(np.concatenate([wave, np.zeros(int(tail_samples), dtype=np.float32)]), spec)
    c = model.chunk_frames
    n = sherpa_chunks(feats.shape[0], c)
    model.reset()
    if n == 0:
        return [], 0
    logits = np.concatenate([model.step(feats[k * c:(k + 1) * c]) for k in range(n)], axis=0)
    ids = logits.argmax(axis=-1).tolist()
    return _ids_to_symbols(ids, model.meta["vocabulary"], int(model.meta["blank_id"])), n


def ship_check(model_path: str | os.PathLike, audio: Sequence[Any], out_dir: str | os.PathLike, *,
               min_identical: float = 1.0, threads: int = 1, python: str | None = None,
               timeout: float = 600.0, max_examples: int = 5) -> dict[str, Any]:
    """Export ``model_path`` for sherpa-onnx into ``out_dir`` and check it decodes ``audio`` (paths,
    Utterances or float waves at the model's sample rate) to edgetune's transcripts.

    Returns (and writes to ``out_dir/ship.json``) a dict with ``identical_fraction`` (sherpa vs
    the edgetune runner on the source file, same frames), ``passed`` (``identical_fraction >=
    min_identical``), ``identical_to_default_fraction`` (vs edgetune's default decoding, for
    information), the files and up to ``max_examples`` mismatches. Raises ShipError when sherpa
    cannot load or run the model, ExportError when the file cannot be converted.
    """
    from edgetune.bench.runner import StreamingModel
    from edgetune.data import FeatureSpec, compute_fbank
    from edgetune.export.sherpa import MODEL_TYPE, export_sherpa, tail_padding_samples

    if not 0.0 <= min_identical <= 1.0:
        raise ShipError(f"min_identical must be in [0, 1], but got {min_identical}")
    if not audio:
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
    identical = identical_default = same_text = 0
    mismatches: list[dict[str, Any]] = []
    rows = []
    for i, (wave, name, got) in enumerate(zip(waves, names, sherpa)):
        symbols, chunks = decode_like_sherpa(ref, wave, tail)
        sherpa_symbols = [s.replace("\u2581", " ") for s in got["tokens"]]
        same = sherpa_symbols == symbols
        default = ref.greedy_text(ref.run_utterance(compute_fbank(wave, feature_spec)))
        identical += same
        identical_default += _text(sherpa_symbols) == default
        text = " ".join(got["text"].split())
        same_text += text == _text(symbols)
        rows.append({"name": name, "sherpa": _text(sherpa_symbols), "sherpa_text": text, "edgetune": _text(symbols),
                     "edgetune_default": default, "identical": same, "chunks": got["chunks"],
                     "edgetune_chunks": chunks})
        if not same and len(mismatches) < max_examples:
            mismatches.append(rows[-1])
    n = len(waves)
    fraction = identical / n
    result = {
        "engine": "sherpa-onnx", "sherpa_onnx_version": version, "model_type": MODEL_TYPE,
        "source": str(model_path), "source_sha256": exported.source_sha256,
        "model": str(exported.model), "tokens": str(exported.tokens), "howto": str(exported.howto),
        "size_bytes": exported.size_bytes, "bits": spec.knobs.get("bits"), "weight_storage": spec.weight_storage,
        "tail_padding_samples": tail, "utterances": n, "identical": identical,
        "identical_fraction": fraction, "identical_to_default_fraction": identical_default / n,
        "text_identical_fraction": same_text / n,
        "min_identical": min_identical, "passed": fraction >= min_identical,
        "chunks_match": all(r["chunks"] == r["edgetune_chunks"] for r in rows),
        "mismatches": mismatches, "seconds": round(time.perf_counter() - t0, 3),
    }
    result["passed"] = result["passed"] and result["chunks_match"]
    atomic_write_text(out_dir / "transcripts.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    atomic_write_text(out_dir / SHIP_JSON, json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
