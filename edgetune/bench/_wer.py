"""WER on the device's own kernels: decode a test set through the runner on the target.

Integer kernels differ by CPU (a parity failure seen only on a VNNI Xeon, a full-range int8
bug only on AVX2), so the WER measured on the host says little about the phone. Here the host
computes the Kaldi fbank features of the test utterances once (:func:`write_features`: one
compact ``.npz``, no audio on the device), pushes the model and the features through the
transport (local, ssh, adb), runs ``runner.py --decode`` there (numpy + onnxruntime), reads the
greedy transcripts back from its JSON lines, decodes the same file and features on the host
with the same code, and reports both WERs and how many transcripts differ.

Integrity: the features file carries a digest of its content (recomputed before decoding, on
both sides); the runner also checks that the model and features it was given have the sha256
of the host's files, so a file changed in transit or on the device is refused
(:class:`~edgetune.errors.ArtifactError`) instead of measured.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from edgetune._io import atomic_write
from edgetune.errors import ArtifactError, DataError, TargetError
from edgetune.bench._transport import Transport, parse_target

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
REMOTE_FEATURES = "features.npz"
MAX_EXAMPLES = 20  # differing transcripts kept in the result


def _utterances(source: str | os.PathLike) -> list[dict[str, Any]]:
    """[{id, audio, ref, group}] of ``source``: a dataset (preset name or folder: its test split), an
    audio folder or one audio file (references from a ``NAME.txt`` beside each file, else None)."""
    from edgetune.data import PRESETS, load_dataset, normalize_text
    from edgetune.data._datasets import _find_manifest, is_librispeech
    from edgetune.data._manifest import SPLITS

    path = Path(source).expanduser()
    if (isinstance(source, str) and source in PRESETS) or (path.is_dir() and (
            any(_find_manifest(path, s) for s in SPLITS) or is_librispeech(path))):
        test = load_dataset(source, progress=False).test
        if not test:
            raise DataError(f"dataset {str(source)!r} has an empty test split; --wer decodes the test split")
        return [{"id": u.id or Path(u.audio_filepath).stem, "audio": u.audio_filepath, "ref": u.text,
                 "group": u.group or ""} for u in test]
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise DataError(f"{str(source)!r} is a folder with neither train/dev/test manifests nor "
                            f"{'/'.join(AUDIO_SUFFIXES)} files; pass a dataset, an audio folder or a features .npz")
    elif path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
        files = [path]
    else:
        raise DataError(f"--wer {str(source)!r} is neither a dataset preset, a dataset or audio folder, an audio "
                        f"file nor a features .npz written by edgetune")
    rows = []
    for f in files:
        txt = f.with_suffix(".txt")
        ref = normalize_text(txt.read_text(encoding="utf-8")) if txt.is_file() else None
        rows.append({"id": str(f.relative_to(path)) if path.is_dir() else f.name, "audio": str(f), "ref": ref,
                     "group": ""})
    return rows


def write_features(model_path: str | os.PathLike, source: str | os.PathLike, out_path: str | os.PathLike, *,
                   limit: int | None = None) -> dict[str, Any]:
    """Kaldi fbank features (:func:`edgetune.data.compute_fbank`, the model's feature settings) of the
    utterances of ``source`` (first ``limit``) into ``out_path`` (.npz); returns its manifest.

    The manifest holds the feature settings, ids, references, groups, frame counts and a content
    digest (``runner.features_digest``), so any edit of the file is caught before decoding. The same
    utterances and settings give the same digest (no time stamp inside)."""
    import numpy as np

    from edgetune.bench._harness import read_model_metadata
    from edgetune._runner import FEATURES_SCHEMA, features_digest
    from edgetune.data import FeatureSpec, compute_fbank, load_audio

    meta, _ = read_model_metadata(Path(model_path))
    spec = FeatureSpec(**meta["features"])
    rows = _utterances(source)
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit must be >= 1, but got {limit}")
        rows = rows[:limit]
    feats = [compute_fbank(load_audio(r["audio"], spec.sample_rate), spec) for r in rows]
    manifest = {"schema": FEATURES_SCHEMA, "features": meta["features"], "source": str(source),
                "ids": [r["id"] for r in rows], "refs": [r["ref"] for r in rows],
                "groups": [r["group"] for r in rows], "lengths": [int(f.shape[0]) for f in feats]}
    frames = np.concatenate(feats).astype(np.float32) if feats else np.zeros((0, spec.n_mels), np.float32)
    manifest["digest"] = features_digest(manifest, frames)
    atomic_write(out_path, lambda tmp: np.savez_compressed(tmp, manifest=np.array(json.dumps(manifest, sort_keys=True)),
                                                             feats=frames), suffix=".tmp.npz")
    return manifest


def _load_checked(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a features file, refused (ArtifactError) when edited or written for other features."""
    from edgetune._runner import IntegrityError, load_features

    try:
        manifest, _ = load_features(str(path))
    except IntegrityError as exc:
        raise ArtifactError(str(exc)) from None
    if manifest["features"] != meta["features"]:
        raise ArtifactError(f"{path} holds features computed with {manifest['features']}, but the model hears "
                            f"{meta['features']}; write them for this model (--wer DATASET)")
    return manifest


def device_wer(model_path: str | os.PathLike, source: str | os.PathLike, target: str | Transport = "local", *,
               limit: int | None = None, threads: int = 1, timeout_s: float = 600.0, verify: bool = True,
               features_out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Decode ``source`` with ``model_path`` on ``target`` and on the host; return both WERs.

    ``source`` is a dataset (preset or folder: its test split), an audio folder/file, or a features
    ``.npz`` from :func:`write_features` (reused as is, e.g. cached between CI runs). Returns
    ``wer`` (device), ``wer_host``, ``wer_delta`` (device - host; None without references),
    ``worst_group_wer``, ``utterances``, ``transcripts_differ``, up to 20 ``differ_examples`` and
    every row in ``transcripts`` ({id, ref, device, host}), the sha256 of both files,
    ``decode_seconds`` and the device's ``fingerprint``. Raises ArtifactError for a model or
    features file that was modified (on the host, in transit or on the device), TargetError when
    the target or runner fails. ``target`` may also be a :class:`Transport` instance.
    """
    from edgetune.bench._harness import read_model_metadata
    from edgetune.bench._runners import REMOTE_MODEL, REMOTE_RUNNER, RUNNER_PATH, parse_events
    from edgetune._runner import decode_features, file_sha256

    model_path = Path(model_path)
    meta, external = read_model_metadata(model_path, verify=verify)
    with tempfile.TemporaryDirectory(prefix="edgetune-wer.") as tmp:
        if str(source).endswith(".npz"):
            features = Path(source)
            if not features.is_file():
                raise DataError(f"features file {str(features)!r} does not exist")
            if limit is not None:
                raise DataError(f"--limit applies when the features are computed; {str(features)!r} is a "
                                f"features file already: write it again with --limit")
        else:
            features = Path(features_out) if features_out else Path(tmp) / REMOTE_FEATURES
            write_features(model_path, source, features, limit=limit)
        manifest = _load_checked(features, meta)
        if features_out and Path(features_out) != features:
            Path(features_out).write_bytes(features.read_bytes())
        sums = {"model": file_sha256(str(model_path)), "features": file_sha256(str(features))}
        transport = target if isinstance(target, Transport) else parse_target(target)
        with transport.session() as remote_dir:
            transport.push(str(RUNNER_PATH), f"{remote_dir}/{REMOTE_RUNNER}")
            transport.push(str(model_path), f"{remote_dir}/{REMOTE_MODEL}")
            for name in external:
                transport.push(str(model_path.parent / name), f"{remote_dir}/{name}")
            transport.push(str(features), f"{remote_dir}/{REMOTE_FEATURES}")
            argv = [transport.python, REMOTE_RUNNER, "--model", REMOTE_MODEL, "--decode", REMOTE_FEATURES,
                    "--threads", str(threads), "--model-sha256", sums["model"], "--features-sha256",
                    sums["features"], "--max-seconds", f"{max(1.0, timeout_s - 2.0):g}"]
            res = transport.run(argv, timeout_s, cwd=remote_dir, what="decode the test set")
        events = parse_events(res.stdout)
        device = _device_transcripts(events, res, transport, len(manifest["ids"]))
        host = [fields["hyp"] for kind, fields in decode_features(str(model_path), str(features), threads=threads)
                if kind == "transcript"]
    return {**_compare(manifest, device["hyps"], host), "target": transport.target, "model_sha256": sums["model"],
            "features_sha256": sums["features"], "features_digest": manifest["digest"], "source": str(source),
            "decode_seconds": device["decode_seconds"], "fingerprint": device["fingerprint"]}


def _device_transcripts(events: list[dict[str, Any]], res: Any, transport: Transport, n: int) -> dict[str, Any]:
    final = events[-1] if events else None
    if final is not None and final.get("type") == "error":
        why = f"{final.get('error')}: {final.get('message')}"
        if final.get("error") == "IntegrityError":
            raise ArtifactError(f"{transport.target}: the runner refused to decode: {final.get('message')}")
        raise TargetError(f"{transport.target}: decoding on the device failed: {why}")
    if final is None or final.get("type") != "result" or res.returncode != 0:
        detail = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-3:]
        raise TargetError(f"{transport.target}: the runner exited with status {res.returncode} and no result line "
                          f"({transport.python} --decode): {' | '.join(detail)}. Fix: check that "
                          f"{transport.python!r} exists on the device with numpy and onnxruntime installed")
    hyps: list[str | None] = [None] * n
    for e in events:
        if e.get("type") == "transcript" and isinstance(e.get("index"), int) and 0 <= e["index"] < n:
            hyps[e["index"]] = e.get("hyp")
    missing = [i for i, h in enumerate(hyps) if not isinstance(h, str)]
    if missing:
        raise TargetError(f"{transport.target}: the runner sent {n - len(missing)} of {n} transcripts "
                          f"(first missing: #{missing[0]})")
    return {"hyps": hyps, "decode_seconds": final.get("decode_seconds"), "fingerprint": final.get("fingerprint")}


def _compare(manifest: dict[str, Any], device: list[str], host: list[str]) -> dict[str, Any]:
    """WER of both transcript lists (when every utterance has a reference) and where they differ."""
    refs, ids = manifest["refs"], manifest["ids"]
    differ = [i for i, (d, h) in enumerate(zip(device, host)) if d != h]
    out: dict[str, Any] = {"utterances": len(ids), "transcripts_differ": len(differ),
                           "differ_examples": [{"id": ids[i], "ref": refs[i], "device": device[i], "host": host[i]}
                                               for i in differ[:MAX_EXAMPLES]],
                           "transcripts": [{"id": i, "ref": r, "device": d, "host": h}
                                           for i, r, d, h in zip(ids, refs, device, host)],
                           "wer": None, "wer_host": None, "wer_delta": None, "worst_group_wer": None}
    if ids and all(isinstance(r, str) for r in refs):
        from edgetune.data._text import group_wer, word_error_rate

        wer, wer_host = word_error_rate(refs, device), word_error_rate(refs, host)
        per_group = group_wer(refs, device, manifest["groups"])
        out.update(wer=wer, wer_host=wer_host, wer_delta=wer - wer_host, wer_per_group=per_group,
                   worst_group_wer=max(per_group.values()) if per_group else wer)
    else:
        out["note"] = "no reference transcripts (dataset manifest or NAME.txt beside each audio file): WER unknown"
    return out


__all__ = ["device_wer", "write_features", "AUDIO_SUFFIXES"]
