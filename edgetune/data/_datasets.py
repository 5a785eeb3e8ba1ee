"""Real datasets: JSONL manifest folders and LibriSpeech folders, and up-front validation.

``load_dataset(spec)`` accepts:

- a preset name (``"tiny"``, ``"smoke"``, ``"full"``): the built-in eSpeak corpus;
- a folder with ``train``/``dev``/``test`` manifests, each named ``<split>.jsonl``,
  ``<split>.json`` or ``<split>_manifest.json`` (NeMo style: ``audio_filepath``,
  ``duration``, ``text``, optional ``group`` or ``speaker``). ``dev`` may also be called
  ``val``/``valid``/``validation``;
- a LibriSpeech-layout folder: ``<split folder>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt``
  beside the ``.flac`` files. Split folders map by their name's prefix: ``train*`` -> train
  (``train-clean-100``, ``train-clean-360``, ``train-other-500`` are merged), ``dev*`` -> dev,
  ``test*`` -> test (``dev-clean`` + ``dev-other`` are merged; use a folder holding only the
  ones you want to choose). A root that is itself one split folder (speaker folders directly
  inside) is split by speaker.

Whenever dev or test is missing, it is carved out of train **by speaker** (10% of the train
speakers each, seeded), so the splits stay speaker-disjoint; a warning says so.
Transcripts are normalised to the vocabulary; characters it lacks are counted and reported in
a warning. Groups: the manifest's ``group``/``speaker``; for LibriSpeech the speaker's sex
(``F``/``M``) from ``SPEAKERS.TXT`` when the root (or its parent) has one, else the speaker id.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgetune.data._audio import audio_duration, audio_info_rate, load_audio
from edgetune.data._corpus import PRESETS, build_corpus
from edgetune.data._manifest import SPLITS, DatasetSplits, Utterance, read_manifest
from edgetune.data._text import count_unknown_chars, encode, normalize_text
from edgetune.errors import DataError

log = logging.getLogger(__name__)

DURATION_TOLERANCE_S = 0.1
_SPLIT_ALIASES = {"train": ("train",), "dev": ("dev", "val", "valid", "validation"), "test": ("test",)}
_MANIFEST_PATTERNS = ("{}.jsonl", "{}.json", "{}_manifest.json", "{}_manifest.jsonl")
_CARVE_FRACTION = 0.1


def _find_manifest(root: Path, split: str) -> Path | None:
    for alias in _SPLIT_ALIASES[split]:
        for pattern in _MANIFEST_PATTERNS:
            path = root / pattern.format(alias)
            if path.is_file():
                return path
    return None


def _normalised(utts: list[Utterance], where: str) -> list[Utterance]:
    unknown = count_unknown_chars(u.text for u in utts)
    if unknown:
        shown = ", ".join(f"{ch!r} x{n}" for ch, n in unknown.most_common(20))
        log.warning("%s: %d characters outside the vocabulary were dropped from transcripts: %s",
                    where, sum(unknown.values()), shown)
    return [replace(u, text=normalize_text(u.text), group=u.group or "all") for u in utts]


def _carve(train: list[Utterance], names: list[str], seed: int, where: Path,
           speaker_of: Callable[[Utterance], str]) -> dict[str, list[Utterance]]:
    """Move whole speakers from train into the missing splits."""
    speakers = sorted({speaker_of(u) for u in train})
    if len(speakers) < len(names) + 1:
        raise DataError(f"{where}: {', '.join(names)} missing and train has only {len(speakers)} speaker(s), "
                        "too few to carve speaker-disjoint splits; provide the split explicitly")
    rng = random.Random(f"edgetune-carve:{seed}")
    rng.shuffle(speakers)
    n = max(1, round(len(speakers) * _CARVE_FRACTION))
    taken = {name: set(speakers[i * n:(i + 1) * n]) for i, name in enumerate(names)}
    out = {name: [u for u in train if speaker_of(u) in spk] for name, spk in taken.items()}
    moved = set().union(*taken.values())
    out["train"] = [u for u in train if speaker_of(u) not in moved]
    log.warning("%s has no %s split: carved %s from train by speaker (%d speakers each)",
                where, "/".join(names), "/".join(names), n)
    return out


def _finish(name: str, root: Path, splits: dict[str, list[Utterance]], seed: int,
            speaker_of: Callable[[Utterance], str] = lambda u: u.group) -> DatasetSplits:
    missing = [s for s in ("dev", "test") if not splits.get(s)]
    if not splits.get("train"):
        raise DataError(f"{root}: no training data found; expected train.jsonl (or a LibriSpeech train-* folder)")
    if missing:
        splits.update(_carve(splits["train"], missing, seed, root, speaker_of))
    return DatasetSplits(name=name, root=root, **{s: _normalised(splits[s], f"{root} [{s}]") for s in SPLITS})


def _load_manifest_folder(root: Path, seed: int) -> DatasetSplits:
    splits = {}
    for split in SPLITS:
        path = _find_manifest(root, split)
        splits[split] = read_manifest(path) if path else []
    return _finish(str(root), root, splits, seed)


def _speaker_sex(root: Path) -> dict[str, str]:
    for folder in (root, root.parent):
        path = folder / "SPEAKERS.TXT"
        if path.is_file():
            out = {}
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = [p.strip() for p in line.split("|")]
                if not line.startswith(";") and len(parts) >= 2 and parts[1] in ("F", "M"):
                    out[parts[0]] = parts[1]
            return out
    return {}


def _duration_or_zero(path: Path) -> float:
    try:
        return audio_duration(path) if path.is_file() else 0.0
    except DataError:
        return 0.0  # validate_dataset reports the file as unreadable


def _read_librispeech_split(folder: Path, sex: dict[str, str]) -> list[Utterance]:
    entries = []  # (audio, text, speaker, uid)
    for trans in sorted(folder.glob("*/*/*.trans.txt")):
        speaker = trans.parent.parent.name
        for lineno, line in enumerate(trans.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if line.strip():
                uid, _, text = line.strip().partition(" ")
                entries.append((trans.parent / f"{uid}.flac", text, speaker, uid, f"{trans}:{lineno}"))
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) * 2)) as pool:  # header reads: I/O bound
        durations = list(pool.map(_duration_or_zero, [e[0] for e in entries]))
    return [Utterance(str(audio), duration, text, sex.get(speaker, speaker), uid, where)
            for (audio, text, speaker, uid, where), duration in zip(entries, durations)]


def is_librispeech(root: Path) -> bool:
    return any(root.glob("*/*/*.trans.txt")) or any(root.glob("*/*/*/*.trans.txt"))


def _load_librispeech(root: Path, seed: int) -> DatasetSplits:
    sex = _speaker_sex(root)
    splits: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
    if any(root.glob("*/*/*.trans.txt")) and not any(root.glob("*/*/*/*.trans.txt")):
        splits["train"] = _read_librispeech_split(root, sex)  # the root is one split: carve by speaker
    else:
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            split = next((s for s, aliases in _SPLIT_ALIASES.items()
                          if any(re.match(rf"{a}(\b|[-_])", sub.name.lower()) for a in aliases)), None)
            if split is None:
                if any(sub.glob("*/*/*.trans.txt")):
                    log.warning("%s: folder %s is not named train*/dev*/test*; ignored", root, sub.name)
                continue
            splits[split].extend(_read_librispeech_split(sub, sex))
    return _finish(str(root), root, splits, seed, speaker_of=lambda u: u.id.split("-")[0])


def load_dataset(spec: str | os.PathLike, cache_dir: Path | None = None, seed: int = 0,
                 progress: bool = True) -> DatasetSplits:
    """The dataset named by ``spec``: a preset name or a folder (layouts in the module docstring).

    ``cache_dir`` and ``progress`` apply to the built-in corpus; ``seed`` also picks the
    speakers carved out of train when a real dataset lacks dev or test.
    """
    if isinstance(spec, str) and spec in PRESETS:
        return build_corpus(spec, cache_dir=cache_dir, seed=seed, progress=progress)
    root = Path(spec).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset {str(spec)!r} is neither a preset ({', '.join(PRESETS)}) nor a folder")
    root = Path(os.path.abspath(root))
    if any(_find_manifest(root, s) for s in SPLITS):
        return _load_manifest_folder(root, seed)
    if is_librispeech(root):
        return _load_librispeech(root, seed)
    raise DataError(f"{root} holds neither train/dev/test .jsonl manifests nor a LibriSpeech layout "
                    "(<split>/<speaker>/<chapter>/*.trans.txt with .flac files)")


def check_dataset_spec(spec: str | os.PathLike) -> None:
    """Fail fast (DataError) unless ``spec`` is a preset or a folder in a layout :func:`load_dataset`
    reads; reads no audio and builds nothing, so a study config is checked in milliseconds."""
    if isinstance(spec, str) and spec in PRESETS:
        return
    root = Path(spec).expanduser()
    if not root.is_dir():
        what = "a file, not a folder" if root.exists() else "no such folder"
        raise DataError(f"dataset {str(spec)!r} is neither a preset ({', '.join(PRESETS)}) nor a folder ({what}). "
                        f"Fix: name a preset, or a folder holding train/dev/test .jsonl manifests or a "
                        f"LibriSpeech layout")
    if not any(_find_manifest(root, s) for s in SPLITS) and not is_librispeech(root):
        raise DataError(f"{os.path.abspath(root)} holds neither train/dev/test .jsonl manifests nor a LibriSpeech "
                        "layout (<split>/<speaker>/<chapter>/*.trans.txt with .flac files). Fix: point dataset at "
                        "the folder that holds train.jsonl (or the LibriSpeech root)")


#: milliseconds per CTC output frame of the built-in family (x4 subsampling of 10 ms features)
CTC_FRAME_MS = 40.0
#: clips shorter than this are usable but suspicious (a warning in ``edgetune data check``)
SHORT_CLIP_S = 0.3


def ctc_frames_needed(text: str) -> int:
    """Output frames CTC needs for ``text``: one per label plus a blank between repeated labels."""
    ids = encode(normalize_text(text))
    return len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))


@dataclass
class AudioCheck:
    """What checking one utterance found: an error (unusable), warnings, and the file's facts."""

    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    native_rate: int | None = None
    seconds: float | None = None


def check_utterance(u: Utterance, sample_rate: int = 16000, ctc_frame_ms: float = CTC_FRAME_MS) -> AudioCheck:
    """Decode one utterance's audio and check it against its manifest line.

    Errors: no transcript, missing, unreadable, NaN samples, empty, wrong duration (more than
    0.1 s off), too short for CTC at ``ctc_frame_ms`` per output frame. Warnings: shorter than
    0.3 s, digital silence.
    """
    out = AudioCheck()
    if not u.text.strip() or not normalize_text(u.text):
        out.error = "no transcript" if not u.text.strip() else "no transcript (no vocabulary characters)"
        return out
    if not os.path.exists(u.audio_filepath):
        out.error = "missing"
        return out
    try:
        out.native_rate = audio_info_rate(u.audio_filepath)
        wave = load_audio(u.audio_filepath, sample_rate)
    except DataError as exc:
        msg = str(exc)
        out.error = ("unreadable: " + msg.split("unreadable (", 1)[-1].rsplit(")", 1)[0]
                     if "unreadable (" in msg else msg)
        return out
    out.seconds = wave.size / sample_rate
    if wave.size == 0:
        out.error = "empty (0 samples)"
        return out
    if abs(out.seconds - u.duration) > DURATION_TOLERANCE_S:
        out.error = f"wrong duration: manifest says {u.duration:.3f} s, file has {out.seconds:.3f} s"
        return out
    frames = int(out.seconds * 1000.0 // ctc_frame_ms)
    needed = ctc_frames_needed(u.text)
    if frames < needed:
        out.error = (f"too short for CTC: {out.seconds:.3f} s gives {frames} output frame(s) at {ctc_frame_ms:g} ms, "
                     f"the transcript needs at least {needed}")
        return out
    if out.seconds < SHORT_CLIP_S:
        out.warnings.append(f"very short clip ({out.seconds:.3f} s)")
    if not np.any(wave):
        out.warnings.append("digital silence (every sample is 0)")
    return out


def _problem(u: Utterance, sample_rate: int) -> str | None:
    """Why this utterance cannot be used, or None."""
    return check_utterance(u, sample_rate).error


def _key(splits: DatasetSplits, sample_rate: int) -> str:
    h = hashlib.sha256(f"{splits.name}|{sample_rate}".encode())
    for s in SPLITS:
        for u in splits.split(s):
            h.update(f"{s}|{u.audio_filepath}|{u.duration}|{u.text}\n".encode())
            with contextlib.suppress(OSError):
                st = os.stat(u.audio_filepath)
                h.update(f"{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


_VALIDATED: set[str] = set()  # datasets this process has already checked (a study calls once per trial)


def validate_dataset(splits: DatasetSplits, sample_rate: int = 16000, workers: int | None = None) -> None:
    """Decode every audio file and check it; raise one DataError listing each bad file and why.

    Reasons: missing, unreadable (with the decoder's message), empty, wrong duration (manifest
    vs file differ by more than 0.1 s), too short for CTC, no transcript. Nothing is skipped: a
    bad file fails the run before training starts, and the message lists what to fix or remove
    from the manifest. Stereo and other sample rates are fine (downmixed and resampled on load).
    A dataset that passed once in this process (same files, sizes and times) is not decoded again.
    """
    key = _key(splits, sample_rate)
    if key in _VALIDATED:
        return
    items = [(s, u) for s in SPLITS for u in splits.split(s)]
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        problems = list(pool.map(lambda item: _problem(item[1], sample_rate), items))
    bad = [(s, u, why) for (s, u), why in zip(items, problems) if why]
    if not bad:
        _VALIDATED.add(key)
        return
    counts = Counter(why.split(":")[0] for _, _, why in bad)
    lines = [f"  [{s}] {u.audio_filepath} (id {u.id or '-'}): {why}{f' [{u.source}]' if u.source else ''}"
             for s, u, why in bad[:200]]
    more = f"\n  ... and {len(bad) - 200} more" if len(bad) > 200 else ""
    raise DataError(f"dataset {splits.name}: {len(bad)} of {len(items)} utterances are unusable "
                    f"({', '.join(f'{k}: {n}' for k, n in counts.most_common())}); fix or remove them "
                    f"from the manifest (`edgetune data check {splits.root}` lists every problem):\n"
                    + "\n".join(lines) + more)


def load_validated_dataset(spec: str | os.PathLike, cache_dir: Path | None = None, seed: int = 0,
                           progress: bool = True) -> DatasetSplits:
    """:func:`load_dataset`, then, for a dataset folder, :func:`validate_dataset` (every file decoded
    and checked before any training; the built-in presets are checked when they are built).
    What ``candidate``, ``search`` and ``base train`` load."""
    splits = load_dataset(spec, cache_dir=cache_dir, seed=seed, progress=progress)
    if not (isinstance(spec, str) and spec in PRESETS):
        validate_dataset(splits)
    return splits
