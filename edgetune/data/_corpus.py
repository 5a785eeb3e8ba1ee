"""The built-in corpus: English phone commands synthesized with eSpeak NG (no downloads).

What is in it
    Sentences from :mod:`edgetune.data._prompts` (timers, calls, texts to names, digit
    strings, times, ...) spoken by ``accent x variant`` eSpeak voices (8 English accents x
    ~100 voice-quality variants), each utterance with its own speaking rate (130-210 wpm),
    pitch (25-75), pitch range (20-80), peak level (0.3-0.95) and 50-300 ms of silence
    before and after (as a phone hears it; it also gives the shortest words, "no", "yes",
    enough frames for CTC at high subsampling), as 16 kHz 16-bit WAV.

Speaker independence
    The "speaker" is the variant (formants, pitch, breathiness): each split gets its own
    variants (seeded, stratified by the variant's gender), so no test or dev voice quality is
    ever heard in training, whatever the accent. Every split has all accents.

Groups (for per-group WER)
    ``group`` is the accent: en-us, en-us-nyc, en-gb, en-gb-x-rp, en-gb-scotland,
    en-gb-x-gbclan, en-gb-x-gbcwmd, en-029.

Determinism and caching
    Everything (texts, voices, jitter) is planned from the seed, and utterances are
    synthesized in fixed shards of ``shard_size``, each in a fresh worker process (eSpeak's
    output depends on the calls made before in a process), so a preset and seed always give
    the same bytes on a given machine, whatever the number of workers. The folder holds
    ``corpus.json`` (the build's parameters and ``complete``), ``wav/<split>/*.wav``,
    ``shards/*.jsonl`` (one record file per finished shard, written atomically after its
    WAVs) and the manifests ``train.jsonl``, ``dev.jsonl``, ``test.jsonl``, which are written
    last, before ``complete`` is set. An interrupted build resumes at the first unfinished
    shard; a half-made folder is never loaded.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgetune._io import atomic_write_text
from edgetune.data._espeak import ENGLISH_ACCENTS, voice_variants
from edgetune.data._manifest import SPLITS, DatasetSplits, Utterance, read_manifest, utterance_record, write_jsonl
from edgetune.data._prompts import make_sentence
from edgetune.errors import ConfigError, DataError

log = logging.getLogger(__name__)

CORPUS_VERSION = 2  # bump when the plan (texts, voices, jitter) or the audio processing changes
SAMPLE_RATE = 16000
MARKER = "corpus.json"
_SPLIT_FRACTIONS = {"test": 0.15, "dev": 0.10}  # of the variants; the rest train


@dataclass(frozen=True)
class CorpusPreset:
    """How many utterances each split gets. Hours follow from the mean duration (~1.97 s)."""

    name: str
    train: int
    dev: int
    test: int
    shard_size: int = 100  # utterances per worker process; part of what makes the audio

    def __post_init__(self) -> None:
        for split in SPLITS:
            if getattr(self, split) < 1:
                raise ConfigError(f"corpus preset {self.name!r}: {split} must have >= 1 utterance, "
                                  f"got {getattr(self, split)}")
        if self.shard_size < 1:
            raise ConfigError(f"corpus preset {self.name!r}: shard_size must be >= 1, got {self.shard_size}")


# full: train >= 50 h. Mean utterance: 1.616 s of speech (measured on the first 3000 of full's
# train, standard error 0.015 s) + 0.35 s of silence padding = 1.97 s; 95k x 1.97 s = 51.9 h.
PRESETS: dict[str, CorpusPreset] = {
    "tiny": CorpusPreset("tiny", train=48, dev=12, test=12, shard_size=24),
    "smoke": CorpusPreset("smoke", train=320, dev=40, test=60),
    # grid: the fixed protocol of the tabulated GPU benchmark (benchmarks/gpu_grid.py), ~3.5 h
    "grid": CorpusPreset("grid", train=6_000, dev=300, test=500, shard_size=250),
    # base: what the base models are trained on (~13 h), test >= 1,500 utterances of unseen voices
    "base": CorpusPreset("base", train=24_000, dev=500, test=1_500, shard_size=250),
    "full": CorpusPreset("full", train=95_000, dev=1_500, test=1_500, shard_size=250),
}


@dataclass(frozen=True)
class _Job:
    """One utterance to synthesize."""

    id: str
    split: str
    text: str
    accent: str
    variant: str
    rate: int
    pitch: int
    pitch_range: int
    peak: float
    noise_seed: int  # eSpeak's breath/aspiration noise
    lead_ms: int  # silence before the speech
    tail_ms: int  # silence after it
    path: str  # relative to the corpus folder

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"


def default_cache_root() -> Path:
    """``$EDGETUNE_CACHE`` or ``~/.cache/edgetune``."""
    env = os.environ.get("EDGETUNE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgetune"


def resolve_preset(preset: str | CorpusPreset) -> CorpusPreset:
    if isinstance(preset, CorpusPreset):
        return preset
    if preset not in PRESETS:
        raise ConfigError(f"unknown corpus preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[preset]


def split_variants(seed: int) -> dict[str, list[str]]:
    """Voice variants per split: disjoint, seeded, each split gets a share of every gender."""
    by_gender: dict[str, list[str]] = {}
    for variant, gender in voice_variants().items():
        by_gender.setdefault(gender, []).append(variant)
    rng = random.Random(f"edgetune-corpus-voices:{seed}")
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for gender in sorted(by_gender):
        names = sorted(by_gender[gender])
        rng.shuffle(names)
        n_test = max(1, round(len(names) * _SPLIT_FRACTIONS["test"]))
        n_dev = max(1, round(len(names) * _SPLIT_FRACTIONS["dev"]))
        out["test"] += names[:n_test]
        out["dev"] += names[n_test:n_test + n_dev]
        out["train"] += names[n_test + n_dev:]
    return {s: sorted(v) for s, v in out.items()}


def plan_corpus(preset: CorpusPreset, seed: int) -> dict[str, list[_Job]]:
    """Every utterance of the corpus, decided from the seed alone."""
    variants = split_variants(seed)
    accents = sorted(ENGLISH_ACCENTS)
    plan = {}
    for split in SPLITS:
        rng = random.Random(f"edgetune-corpus:{seed}:{split}")
        voices = [(a, v) for a in accents for v in variants[split]]
        rng.shuffle(voices)  # cycled, so every voice speaks before any speaks twice
        jobs = []
        for i in range(getattr(preset, split)):
            accent, variant = voices[i % len(voices)]
            uid = f"{split}-{i:06d}"
            jobs.append(_Job(uid, split, make_sentence(rng), accent, variant, rate=rng.randint(130, 210),
                             pitch=rng.randint(25, 75), pitch_range=rng.randint(20, 80),
                             peak=round(rng.uniform(0.3, 0.95), 3), noise_seed=rng.randrange(2**31),
                             lead_ms=rng.randint(50, 300), tail_ms=rng.randint(50, 300),
                             path=f"wav/{split}/{uid}.wav"))
        plan[split] = jobs
    return plan


def _shards(preset: CorpusPreset, plan: dict[str, list[_Job]]) -> list[tuple[str, list[_Job]]]:
    out = []
    for split in SPLITS:
        jobs = plan[split]
        for k in range(0, len(jobs), preset.shard_size):
            out.append((f"{split}-{k // preset.shard_size:05d}", jobs[k:k + preset.shard_size]))
    return out


def _build_params(preset: CorpusPreset, seed: int) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        espeak = version("espeakng-loader")
    except PackageNotFoundError:  # pragma: no cover
        espeak = "unknown"
    return {"corpus_version": CORPUS_VERSION, "preset": asdict(preset), "seed": seed,
            "sample_rate": SAMPLE_RATE, "espeakng_loader": espeak}


def _describe(preset: Any) -> str:
    try:
        return f"{preset['name']} ({preset['train']}/{preset['dev']}/{preset['test']} utterances)"
    except (TypeError, KeyError):
        return repr(preset)


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = package_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


class _ShardRunner:
    """Runs shards in worker processes, several at a time; on any failure or Ctrl-C kills them all."""

    def __init__(self, folder: Path, on_utterance: Callable[[], None]) -> None:
        self.folder = folder
        self.on_utterance = on_utterance
        self.lock = threading.Lock()
        self.procs: list[subprocess.Popen] = []
        self.stopped = False

    def run(self, shard: str, jobs: list[_Job]) -> None:
        """Synthesize one shard in a fresh process; DataError with the worker's stderr on failure."""
        request = json.dumps({"root": str(self.folder), "shard": shard, "jobs": [asdict(j) for j in jobs]})
        with self.lock:  # no process may start after stop_all()
            if self.stopped:
                return
            proc = subprocess.Popen([sys.executable, "-m", "edgetune.data._synth_worker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_worker_env())
            self.procs.append(proc)
        err: list[str] = []
        reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
        reader.start()
        try:
            proc.stdin.write(request)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the worker died at start: its stderr says why
        for line in proc.stdout:
            if line.startswith("done "):
                self.on_utterance()
        rc = proc.wait()
        reader.join()
        if rc != 0 and not self.stopped:
            tail = "".join(err).strip()[-2000:]
            raise DataError(f"corpus worker for shard {shard} in {self.folder} failed (exit code {rc}):\n{tail}")

    def stop_all(self) -> None:
        with self.lock:
            self.stopped = True
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()


def _progress(enabled: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled, transient=False)


def _synthesize(folder: Path, todo: list[tuple[str, list[_Job]]], total: int, done: int,
                workers: int, progress: bool) -> None:
    with _progress(progress) as bar:
        task = bar.add_task(f"synthesizing {folder.name}", total=total, completed=done)
        runner = _ShardRunner(folder, lambda: bar.advance(task))
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = [pool.submit(runner.run, name, jobs) for name, jobs in todo]
            for fut in as_completed(futures):
                fut.result()  # the first failure stops the build
        except BaseException:
            runner.stop_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock on the corpus folder, so parallel callers build it once (POSIX; no-op elsewhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load_complete(folder: Path, name: str) -> DatasetSplits:
    splits = {s: read_manifest(folder / f"{s}.jsonl") for s in SPLITS}
    return DatasetSplits(name=name, root=folder, **splits)


def _missing_audio(folder: Path, plan: dict[str, list[_Job]]) -> set[str]:
    return {j.id for jobs in plan.values() for j in jobs if not (folder / j.path).is_file()}


def build_corpus(preset: str | CorpusPreset = "smoke", cache_dir: Path | None = None, seed: int = 0,
                 progress: bool = True, workers: int | None = None) -> DatasetSplits:
    """Build (or load from cache) the synthesized corpus and return its splits.

    ``cache_dir`` is the corpus folder itself (default
    ``$EDGETUNE_CACHE/corpus/<preset>-seed<seed>``, ``$EDGETUNE_CACHE`` defaulting to
    ``~/.cache/edgetune``). A complete cache with the same parameters is loaded as is; an
    incomplete one is finished; one built by an older corpus version is rebuilt; a folder
    holding another preset or seed raises DataError. ``workers`` defaults to the CPU count;
    the result does not depend on it.
    """
    preset = resolve_preset(preset)
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"corpus seed must be an integer >= 0, got {seed!r}")
    folder = Path(cache_dir) if cache_dir is not None else \
        default_cache_root() / "corpus" / f"{preset.name}-seed{seed}"
    folder = Path(os.path.abspath(folder))
    params = _build_params(preset, seed)
    ready = _load_if_complete(folder, params, preset.name)  # fast path: no lock, no plan
    if ready is not None:
        return ready
    plan = plan_corpus(preset, seed)
    with _build_lock(folder):  # a parallel caller building the same folder waits here, then loads it
        ready = _prepare_existing(folder, preset, params, plan)
        if ready is not None:
            return ready
        return _build(folder, preset, params, plan, workers, progress)


def _load_if_complete(folder: Path, params: dict[str, Any], name: str) -> DatasetSplits | None:
    """The corpus if ``folder`` holds it complete, with these parameters and every audio file; else None."""
    try:
        state = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("params") != params or state.get("complete") is not True:
        return None
    splits = _load_complete(folder, name)
    if all(os.path.isfile(u.audio_filepath) for s in SPLITS for u in splits.split(s)):
        return splits
    return None


def _prepare_existing(folder: Path, preset: CorpusPreset, params: dict[str, Any],
                      plan: dict[str, list[_Job]]) -> DatasetSplits | None:
    """Under the build lock: the corpus if ``folder`` holds it complete, else None after clearing what must be
    redone (an older version's files; the shard records of missing audio). DataError if it is not ours."""
    marker = folder / MARKER
    if not marker.is_file():
        if folder.exists() and any(p.name != ".lock" for p in folder.iterdir()):
            raise DataError(f"{folder} is not empty and holds no {MARKER}; build the corpus into an empty or new folder")
        return None
    try:
        state = json.loads(marker.read_text(encoding="utf-8"))
        old = state["params"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{marker} is not a corpus marker edgetune wrote; delete {folder} or pick another folder") from None
    if (old.get("preset"), old.get("seed")) != (params["preset"], params["seed"]):
        raise DataError(f"{folder} holds corpus {_describe(old.get('preset'))} seed {old.get('seed')}, not "
                        f"{_describe(params['preset'])} seed {params['seed']}; use another folder or delete this one")
    if old != params:
        log.warning("corpus in %s was built by another corpus/eSpeak version (%s); rebuilding", folder, old)
        for sub in ("wav", "shards"):
            shutil.rmtree(folder / sub, ignore_errors=True)
        return None
    missing = _missing_audio(folder, plan)
    if state.get("complete") and not missing:
        return _load_complete(folder, preset.name)
    if missing:
        if state.get("complete"):
            log.warning("corpus in %s lacks %d audio files (e.g. %s); re-synthesizing their shards",
                        folder, len(missing), sorted(missing)[0])
        for name, jobs in _shards(preset, plan):
            if any(j.id in missing for j in jobs):
                (folder / "shards" / f"{name}.jsonl").unlink(missing_ok=True)
    return None


def _build(folder: Path, preset: CorpusPreset, params: dict[str, Any], plan: dict[str, list[_Job]],
           workers: int | None, progress: bool) -> DatasetSplits:
    """Synthesize the shards not done yet, then write the manifests, then mark the corpus complete."""
    marker = folder / MARKER
    atomic_write_text(marker, json.dumps({"params": params, "complete": False}, indent=2) + "\n")
    for split in SPLITS:
        (folder / "wav" / split).mkdir(parents=True, exist_ok=True)
    (folder / "shards").mkdir(exist_ok=True)
    for stale in [*folder.glob("wav/*/*.tmp*"), *folder.glob("shards/.*.tmp"), *folder.glob(".*.tmp")]:
        stale.unlink(missing_ok=True)  # left by a killed worker

    shards = _shards(preset, plan)
    todo = [(name, jobs) for name, jobs in shards if not (folder / "shards" / f"{name}.jsonl").is_file()]
    total = sum(len(jobs) for _, jobs in shards)
    if todo:
        n_workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        _synthesize(folder, todo, total, total - sum(len(j) for _, j in todo), n_workers, progress)

    records: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for name, jobs in shards:
        shard_file = folder / "shards" / f"{name}.jsonl"
        got = [json.loads(line) for line in shard_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if [r["id"] for r in got] != [j.id for j in jobs]:
            raise DataError(f"{shard_file} does not match the corpus plan; delete it and build again")
        records[jobs[0].split].extend(got)
    for split in SPLITS:
        write_jsonl(folder / f"{split}.jsonl", records[split])
    atomic_write_text(marker, json.dumps({"params": params, "complete": True}, indent=2) + "\n")
    return _load_complete(folder, preset.name)


def shard_record(folder: Path, job: _Job, n_samples: int) -> dict[str, Any]:
    """The manifest line of a synthesized utterance (Utterance keys + how it was voiced)."""
    utt = Utterance(str(folder / job.path), n_samples / SAMPLE_RATE, job.text, ENGLISH_ACCENTS[job.accent], job.id)
    rec = utterance_record(utt, folder)
    rec.update(voice=job.voice, variant=job.variant, rate=job.rate, pitch=job.pitch,
               pitch_range=job.pitch_range, peak=job.peak)
    return rec


def expected_hours(preset: CorpusPreset, mean_seconds: float = 1.97) -> float:
    """Rough size of a preset before building it (mean utterance length measured on smoke)."""
    return math.fsum((preset.train, preset.dev, preset.test)) * mean_seconds / 3600.0
