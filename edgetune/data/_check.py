"""``edgetune data check DIR``: every problem of a dataset folder, without training.

:func:`check_dataset` reads the manifests (or LibriSpeech transcripts) collecting **every** bad
line instead of stopping at the first, decodes every audio file with the same checks that
:func:`~edgetune.data.validate_dataset` runs before training (missing, unreadable, empty, wrong
duration, too short for CTC, no transcript), finds duplicates, and summarises each split:
utterances, hours, groups, native sample rates and durations. Errors make the dataset unusable;
warnings are merely suspicious (very short clips, digital silence, a file listed twice in one
split).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from edgetune.data._datasets import (CTC_FRAME_MS, _find_manifest, _finish, _load_librispeech, check_dataset_spec,
                                     check_utterance, is_librispeech)
from edgetune.data._manifest import SPLITS, Utterance, read_manifest
from edgetune.errors import DataError


@dataclass(frozen=True)
class Finding:
    """One problem: where (``manifest:line`` and/or the audio file) and what."""

    level: str  # "error" | "warning"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


@dataclass
class SplitSummary:
    utterances: int = 0
    hours: float = 0.0
    groups: int = 0
    sample_rates: dict[int, int] = field(default_factory=dict)
    min_s: float = 0.0
    median_s: float = 0.0
    max_s: float = 0.0


@dataclass
class DatasetReport:
    """The outcome of :func:`check_dataset`: findings and a per-split summary."""

    root: str
    findings: list[Finding] = field(default_factory=list)
    splits: dict[str, SplitSummary] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self) -> str:
        """Every finding, one per line, then the summary table."""
        lines = [str(f) for f in self.findings]
        lines.append(f"dataset {self.root}:")
        for name, s in self.splits.items():
            rates = ", ".join(f"{r} Hz x{n}" for r, n in sorted(s.sample_rates.items())) or "-"
            lines.append(f"  {name:5s} {s.utterances:6d} utterances  {s.hours:7.3f} h  {s.groups:4d} groups  "
                         f"durations {s.min_s:.2f}/{s.median_s:.2f}/{s.max_s:.2f} s (min/median/max)  "
                         f"rates: {rates}")
        short = sum("too short for CTC" in f.message for f in self.findings)
        dups = sum("the same audio is in" in f.message or "times in" in f.message for f in self.findings)
        lines.append(f"  too short for CTC: {short}, duplicated audio: {dups}")
        verdict = "ok" if self.ok else "fix or remove the lines named above, then check again"
        lines.append(f"  {len(self.errors)} error(s), {len(self.warnings)} warning(s): {verdict}")
        return "\n".join(lines)


def _where(u: Utterance) -> str:
    return f"{u.source}: {u.audio_filepath}" if u.source else u.audio_filepath


def check_dataset(spec: str | os.PathLike, *, sample_rate: int = 16000, ctc_frame_ms: float = CTC_FRAME_MS,
                  seed: int = 0, workers: int | None = None) -> DatasetReport:
    """Check a dataset folder (or preset) completely; DataError only when it is not a dataset at all."""
    check_dataset_spec(spec)
    root = Path(os.path.abspath(Path(spec).expanduser())) if Path(spec).expanduser().is_dir() else Path(str(spec))
    report = DatasetReport(str(root))
    problems: list[tuple[str, str]] = []
    if root.is_dir() and any(_find_manifest(root, s) for s in SPLITS):
        raw = {}
        for split in SPLITS:
            path = _find_manifest(root, split)
            raw[split] = read_manifest(path, problems) if path else []
        try:
            splits = _finish(str(root), root, raw, seed)
        except DataError as exc:
            report.findings += [Finding("error", w, m) for w, m in problems] + [Finding("error", str(root), str(exc))]
            return report
    elif root.is_dir() and is_librispeech(root):
        splits = _load_librispeech(root, seed)
    else:
        from edgetune.data._datasets import load_dataset

        splits = load_dataset(spec, seed=seed)
    report.findings += [Finding("error", w, m) for w, m in problems]

    items = [(s, u) for s in SPLITS for u in splits.split(s)]
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        checks = list(pool.map(lambda item: check_utterance(item[1], sample_rate, ctc_frame_ms), items))
    for (split, u), c in zip(items, checks):
        if c.error:
            report.findings.append(Finding("error", _where(u), f"[{split}] {c.error}"))
        report.findings += [Finding("warning", _where(u), f"[{split}] {w}") for w in c.warnings]

    seen: dict[str, list[tuple[str, Utterance]]] = defaultdict(list)
    for split, u in items:
        seen[os.path.normpath(u.audio_filepath)].append((split, u))
    for path, uses in seen.items():
        in_splits = sorted({s for s, _ in uses}, key=SPLITS.index)
        if len(in_splits) > 1:
            report.findings.append(Finding(
                "error", path, f"the same audio is in {' and '.join(in_splits)} "
                f"({', '.join(u.source for _, u in uses if u.source)}): test results would be inflated; keep it "
                "in one split"))
        elif len(uses) > 1:
            report.findings.append(Finding(
                "warning", path, f"listed {len(uses)} times in {in_splits[0]} "
                f"({', '.join(u.source for _, u in uses if u.source)})"))

    for split in SPLITS:
        rows = [(u, c) for (s, u), c in zip(items, checks) if s == split]
        secs = [c.seconds if c.seconds is not None else u.duration for u, c in rows]
        report.splits[split] = SplitSummary(
            utterances=len(rows), hours=sum(secs) / 3600.0, groups=len({u.group for u, _ in rows}),
            sample_rates=dict(Counter(c.native_rate for _, c in rows if c.native_rate)),
            min_s=min(secs, default=0.0), median_s=statistics.median(secs) if secs else 0.0,
            max_s=max(secs, default=0.0))
    return report


__all__ = ["DatasetReport", "Finding", "SplitSummary", "check_dataset"]
