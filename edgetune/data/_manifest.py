"""Utterances and JSONL manifests (NeMo-style: one JSON object per line).

A manifest line holds ``audio_filepath``, ``duration`` (seconds) and ``text``, plus our
``group`` (voice or speaker group, for per-group WER) and ``id``. NeMo manifests that have
``speaker`` instead of ``group`` are read with the speaker as the group. Other keys are
ignored on read, so a writer may add its own (the synthetic corpus records the voice).

Paths: on disk an ``audio_filepath`` may be relative, and is then relative to the folder of
the manifest; :func:`read_manifest` returns absolute paths and :func:`write_manifest` writes
paths relative to the manifest's folder when the audio lies under it (so a dataset folder
can be moved or copied as a whole), absolute otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetune._io import atomic_write_text
from edgetune.errors import DataError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Utterance:
    """One line of a manifest."""

    audio_filepath: str  # absolute in memory; relative to the manifest's folder on disk when under it
    duration: float  # seconds
    text: str  # normalised transcript (vocabulary characters only)
    group: str  # voice / speaker group, for per-group WER
    id: str = ""
    source: str = field(default="", compare=False)  # "manifest:line" it was read from, for error messages


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset: train, dev and test utterances (speaker-disjoint for the built-in corpus)."""

    name: str  # "smoke", "full", or the dataset path
    root: Path
    train: list[Utterance] = field(default_factory=list)
    dev: list[Utterance] = field(default_factory=list)
    test: list[Utterance] = field(default_factory=list)

    def split(self, name: str) -> list[Utterance]:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
        return getattr(self, name)

    def hours(self, name: str | None = None) -> float:
        """Audio hours in one split, or in all three."""
        names = SPLITS if name is None else (name,)
        return sum(u.duration for n in names for u in self.split(n)) / 3600.0


def _utterance_from_record(rec: Any, where: str, base: Path) -> Utterance:
    if not isinstance(rec, Mapping):
        raise DataError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    missing = [k for k in ("audio_filepath", "duration", "text") if k not in rec]
    if missing:
        raise DataError(f"{where}: missing key(s) {', '.join(missing)}; a manifest line needs "
                        "audio_filepath, duration and text")
    path = rec["audio_filepath"]
    if not isinstance(path, str) or not path:
        raise DataError(f"{where}: audio_filepath must be a non-empty string, got {path!r}")
    try:
        duration = float(rec["duration"])
    except (TypeError, ValueError):
        raise DataError(f"{where}: duration must be a number of seconds, got {rec['duration']!r}") from None
    if not duration >= 0:  # also rejects NaN
        raise DataError(f"{where}: duration must be >= 0 seconds, got {rec['duration']!r}")
    text = rec["text"]
    if not isinstance(text, str):
        raise DataError(f"{where}: text must be a string, got {text!r}")
    group = rec.get("group", rec.get("speaker", ""))
    full = path if os.path.isabs(path) else os.path.normpath(base / path)
    return Utterance(full, duration, text, "" if group is None else str(group), str(rec.get("id", "")), where)


def read_manifest(path: str | os.PathLike, problems: list[tuple[str, str]] | None = None) -> list[Utterance]:
    """Read a JSONL manifest; a bad line raises DataError naming the file, the line and the problem.

    With a ``problems`` list, bad lines are appended to it as ``("file:line", why)`` and skipped
    instead, so a checker can report every one of them.
    """
    path = Path(path)
    base = Path(os.path.abspath(path.parent))
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    utts = []
    with handle:
        for lineno, raw in enumerate(handle, 1):
            where = f"{path}:{lineno}"
            try:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                                    "save the manifest as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
                                    "each line must be one JSON object") from None
                utts.append(_utterance_from_record(rec, where, base))
            except DataError as exc:
                if problems is None:
                    raise
                problems.append((where, str(exc).removeprefix(f"{where}: ")))
    return utts


def utterance_record(utt: Utterance, base: Path) -> dict[str, Any]:
    """The JSON object of one manifest line, with the path made relative to ``base`` when under it."""
    path = Path(utt.audio_filepath)
    if path.is_absolute():
        path = Path(os.path.normpath(path))
        try:
            path_str = path.relative_to(base).as_posix()
        except ValueError:
            path_str = str(path)
    else:
        path_str = utt.audio_filepath
    return {"audio_filepath": path_str, "duration": utt.duration, "text": utt.text,
            "group": utt.group, "id": utt.id}


def write_jsonl(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> None:
    """Atomically write JSON objects, one per line."""
    lines = [json.dumps(dict(r), ensure_ascii=False, sort_keys=False) + "\n" for r in records]
    atomic_write_text(Path(path), "".join(lines))


def write_manifest(path: str | os.PathLike, utts: Iterable[Utterance]) -> None:
    """Atomically write a JSONL manifest (:func:`edgetune._io.atomic_write_text`)."""
    path = Path(path)
    base = Path(os.path.abspath(path.parent))
    write_jsonl(path, (utterance_record(u, base) for u in utts))
