#!/usr/bin/env python3
"""edgetune on-device runner: a standalone script whose only dependencies are numpy and onnxruntime.

It is copied as-is to boards and phones (Termux), so it must never import edgetune.
This module also serves the package itself: ``StreamingModel`` is the one implementation
of "run an edgetune ONNX file chunk by chunk with its caches" (WER, parity, transcribe
and latency all go through it).

As a script (``python runner.py --model m.onnx --runs 200``) it times one chunk step,
printing one JSON line per event and a final ``{"type": "result", ...}`` line that any
transport (local, ssh, adb) carries back. ``fingerprint_from`` and the ``parse_*`` helpers
are pure functions so the package can reuse them for devices without Python.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import platform
import sys
import time

import numpy as np
import onnxruntime as ort

METADATA_KEY = "edgetune"


class StreamingModel:
    """An edgetune streaming ONNX file in an ONNX Runtime session, with its cache state."""

    def __init__(self, path: str, threads: int = 1, providers: list[str] | None = None,
                 optimization: str = "all"):
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[optimization]
        self.session = ort.InferenceSession(path, sess_options=so,
                                            providers=providers or ["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ValueError(f"{path} has no '{METADATA_KEY}' metadata: not an edgetune streaming model")
        self.meta = json.loads(meta[METADATA_KEY])
        self.chunk_frames = int(self.meta["chunk_frames"])
        self.n_mels = int(self.meta["features"]["n_mels"])
        self.features_input = self.meta["features_input"]
        self.logits_output = self.meta["logits_output"]
        self.caches = self.meta["caches"]
        self.output_names = [self.logits_output] + [c["output"] for c in self.caches]
        self.reset()

    def reset(self) -> None:
        """Start a new utterance: every cache back to zeros."""
        self.state = {c["input"]: np.zeros(c["shape"], dtype=np.dtype(c.get("dtype", "float32")))
                      for c in self.caches}

    def step(self, chunk: np.ndarray) -> np.ndarray:
        """Run one chunk [chunk_frames, n_mels] (or [1, chunk_frames, n_mels]); return logits [T', vocab]."""
        x = np.asarray(chunk, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        feeds = {self.features_input: x, **self.state}
        outs = self.session.run(self.output_names, feeds)
        for c, new in zip(self.caches, outs[1:]):
            self.state[c["input"]] = new
        return outs[0][0]

    def pad_features(self, feats: np.ndarray) -> np.ndarray:
        """Pad [T, n_mels] features at the end to a whole number of chunks with silence (Kaldi fbank's log(FLT_EPSILON))."""
        t = feats.shape[0]
        n = max(1, -(-t // self.chunk_frames)) * self.chunk_frames
        if n == t:
            return feats.astype(np.float32, copy=False)
        fill = float(np.log(np.finfo(np.float32).eps))
        pad = np.full((n - t, feats.shape[1]), fill, dtype=np.float32)
        return np.concatenate([feats.astype(np.float32, copy=False), pad], axis=0)

    def run_utterance(self, feats: np.ndarray) -> np.ndarray:
        """Stream a whole utterance's features [T, n_mels] chunk by chunk; return all logits [T', vocab]."""
        self.reset()
        x = self.pad_features(feats)
        outs = [self.step(x[i:i + self.chunk_frames]) for i in range(0, x.shape[0], self.chunk_frames)]
        return np.concatenate(outs, axis=0)

    def greedy_text(self, logits: np.ndarray) -> str:
        """CTC greedy decoding: best path, collapse repeats, drop blanks."""
        vocab = self.meta["vocabulary"]
        blank = int(self.meta["blank_id"])
        ids = logits.argmax(axis=-1)
        out, prev = [], -1
        for i in ids.tolist():
            if i != prev and i != blank:
                out.append(vocab[i])
            prev = i
        return " ".join("".join(out).split())


# ---------------------------------------------------------------------------------------
# Latency timing: everything below runs on the device, printed as JSON lines.
# ---------------------------------------------------------------------------------------

RESULT_SCHEMA = "edgetune-bench/1"


def emit(event_type: str, **fields) -> None:
    """Print one JSON event line (``{"type": ..., ...}``); any transport carries stdout back."""
    sys.stdout.write(json.dumps({"type": event_type, **fields}, sort_keys=True) + "\n")
    sys.stdout.flush()


def peak_rss_bytes() -> int | None:
    """Peak resident set size of this process so far (``ru_maxrss``), in bytes; None where unsupported."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux and Android report kilobytes, macOS bytes.
    return int(rss) if sys.platform == "darwin" else int(rss) * 1024


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def cpu_model_from_cpuinfo(text: str | None) -> str | None:
    """The CPU model name in /proc/cpuinfo text: x86 "model name", else ARM "Hardware"/"Processor",
    else the ARM implementer/part codes (``arm-0x41-0xd05``)."""
    if not text:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields and value.strip():
            fields[key.strip()] = value.strip()
    for key in ("model name", "Hardware", "Processor", "cpu model", "cpu"):
        if key in fields:
            return fields[key]
    if "CPU implementer" in fields and "CPU part" in fields:
        return f"arm-{fields['CPU implementer']}-{fields['CPU part']}"
    return None


def parse_temperature(raw: str | None) -> float | None:
    """A /sys/class/thermal zone ``temp`` value (millidegrees on Linux, degrees on some phones) in °C."""
    try:
        value = float((raw or "").strip())
    except ValueError:
        return None
    return round(value / 1000.0 if abs(value) > 200 else value, 1)


def fingerprint_from(cpuinfo: str | None, governor: str | None, zones: list[tuple[str, str | None]],
                     **known) -> dict:
    """Build the device fingerprint from raw texts, so a shell-only device (``perf_test`` runner)
    gets the same fields as the Python runner. ``zones`` is [(zone type, raw temp)]; the hottest
    readable zone is reported."""
    temps = [(parse_temperature(raw), kind) for kind, raw in zones]
    temps = [(t, kind) for t, kind in temps if t is not None and -40.0 < t < 150.0]
    hottest = max(temps) if temps else (None, None)
    fp = {
        "cpu_model": cpu_model_from_cpuinfo(cpuinfo),
        "governor": governor.strip() if governor and governor.strip() else None,
        "temperature_c": hottest[0],
        "temperature_zone": hottest[1],
    }
    fp.update(known)
    return fp


def device_fingerprint(cores: list[int] | None = None) -> dict:
    """Fingerprint of the machine this runs on. The governor and frequency are read for the first
    pinned core (cpu0 when unpinned); every field is None where the file is unreadable."""
    core = cores[0] if cores else 0
    cpufreq = f"/sys/devices/system/cpu/cpu{core}/cpufreq"
    zones = []
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        zones.append(((_read(os.path.join(zone, "type")) or zone).strip(), _read(os.path.join(zone, "temp"))))
    freq = None
    raw_freq = _read(os.path.join(cpufreq, "scaling_cur_freq"))
    if raw_freq and raw_freq.strip().isdigit():
        freq = int(raw_freq.strip())
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return fingerprint_from(
        _read("/proc/cpuinfo"), _read(os.path.join(cpufreq, "scaling_governor")), zones,
        cores=os.cpu_count(), affinity=affinity, governor_core=core, cur_freq_khz=freq,
        os=platform.platform(), machine=platform.machine(), hostname=platform.node(),
        ort_version=ort.__version__, python=platform.python_version(), numpy=np.__version__,
    )


def parse_cores(text: str | None) -> list[int] | None:
    """``"0,2-3"`` -> [0, 2, 3] (the ``taskset -c`` list syntax)."""
    if not text:
        return None
    cores: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"--cores must look like '0,2-3', but got {text!r}")
        cores.extend(range(int(lo), int(hi or lo) + 1))
    return sorted(set(cores))


def summarize(samples_ms: list[float]) -> dict:
    """p50/p90/p99 (linear interpolation), mean, std (ddof=1), min, max of latency samples in ms."""
    a = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(a.mean()),
            "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "min": float(a.min()), "max": float(a.max())}


def _feature_chunks(model: StreamingModel, features: str | None, count: int, seed: int) -> np.ndarray:
    """[k, chunk_frames, n_mels] chunks to cycle through: from a [T, n_mels] .npy file, else random log-mels."""
    if features:
        feats = np.load(features).astype(np.float32)
        if feats.ndim != 2 or feats.shape[1] != model.n_mels:
            raise ValueError(f"{features}: features must be [T, {model.n_mels}], but got {list(feats.shape)}")
        x = model.pad_features(feats)
        return x.reshape(-1, model.chunk_frames, model.n_mels)
    rng = np.random.default_rng(seed)
    k = max(1, min(count, 64))
    # log-mel-like values: log(power + 1e-6) is roughly in [-14, 5]
    return (rng.standard_normal((k, model.chunk_frames, model.n_mels)) * 3.0 - 5.0).astype(np.float32)


def time_model(path: str, *, threads: int = 1, runs: int = 200, warmup: int = 20,
               cores: list[int] | None = None, features: str | None = None, seed: int = 0,
               optimization: str = "all", max_seconds: float | None = None) -> dict:
    """Time one chunk step of an edgetune model ``runs`` times after ``warmup`` steps; return the result.

    One sample is one call of :meth:`StreamingModel.step` (one chunk, caches carried over, as in
    streaming use). Caches are reset every time the feature chunks wrap around, outside the timed
    region. Garbage collection is paused while timing. Peak RSS is this process's ``ru_maxrss``,
    which includes the Python + numpy + ONNX Runtime baseline: ``baseline_rss_bytes`` is measured
    before the model is loaded so the model's own share (``model_rss_bytes``) is visible.
    """
    return time_models([path], threads=threads, runs=runs, warmup=warmup, cores=cores, features=features,
                       seed=seed, optimization=optimization, max_seconds=max_seconds)[0]


def time_models(paths: list[str], *, threads: int = 1, runs: int = 200, warmup: int = 20, block: int = 20,
                cores: list[int] | None = None, features: str | None = None, seed: int = 0,
                optimization: str = "all", max_seconds: float | None = None) -> list[dict]:
    """Time several models in this one process, alternating between them every ``block`` steps.

    With one model this is plain sequential timing. With several, drift of the device (clock
    steps, heat, other tenants) slower than a few blocks hits every model alike, so their
    samples can be compared block by block (``edgetune check`` pairs them). ``runs`` is rounded
    up to whole blocks. Peak RSS is then the shared process's, so it is reported per model only
    when there is one model.
    """
    if runs < 2:
        raise ValueError(f"runs must be >= 2 to compute percentiles, but got {runs}")
    if block < 1:
        raise ValueError(f"block must be >= 1, but got {block}")
    started = time.monotonic()
    if cores:
        os.sched_setaffinity(0, cores)
    baseline = peak_rss_bytes()
    emit("start", pid=os.getpid(), baseline_rss_bytes=baseline)
    fingerprint = device_fingerprint(cores)
    emit("fingerprint", **fingerprint)
    models, loads = [], []
    for path in paths:
        t0 = time.perf_counter()
        models.append(StreamingModel(path, threads=threads, optimization=optimization))
        loads.append((time.perf_counter() - t0) * 1000.0)
        emit("loaded", model=path, load_ms=loads[-1], chunk_frames=models[-1].chunk_frames)
    chunks = [_feature_chunks(m, features, runs + warmup, seed) for m in models]
    steps = [0] * len(models)

    def step(i: int) -> float:
        j = steps[i] % len(chunks[i])
        if j == 0:
            models[i].reset()
        t = time.perf_counter_ns()
        models[i].step(chunks[i][j])
        steps[i] += 1
        return (time.perf_counter_ns() - t) / 1e6

    if len(models) == 1:
        block = runs
    n_blocks = -(-runs // block)
    samples: list[list[float]] = [[] for _ in models]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(len(models)):
            for _ in range(warmup):
                step(i)
        emit("warmup_done", warmup=warmup)
        for b in range(n_blocks):
            for i in range(len(models)):
                for _ in range(block):
                    samples[i].append(step(i))
                    if max_seconds is not None and time.monotonic() - started > max_seconds:
                        raise TimeoutError(f"runner stopped after {max_seconds:g} s ({len(samples[i])} of "
                                           f"{n_blocks * block} timed steps); lower --runs or raise the timeout")
    finally:
        if gc_was_enabled:
            gc.enable()

    peak = peak_rss_bytes()
    results = []
    for i, model in enumerate(models):
        chunk_ms = float(model.meta.get("chunk_ms") or 0.0)
        latency = summarize(samples[i])
        n = len(samples[i])
        warnings = [] if n >= 1000 else [
            f"p99 from {n} samples rests on {max(1, n // 100)} sample(s) above it; use >= 1000 runs for a stable p99"]
        solo = len(models) == 1
        results.append({
            "schema": RESULT_SCHEMA, "runner": "python", "latency_ms": latency, "samples_ms": samples[i],
            "rtf": latency["mean"] / chunk_ms if chunk_ms else None, "chunk_ms": chunk_ms,
            "peak_rss_bytes": peak if solo else None, "baseline_rss_bytes": baseline,
            "model_rss_bytes": (peak - baseline) if solo and peak is not None and baseline is not None else None,
            "shared_process_peak_rss_bytes": None if solo else peak,
            "load_ms": loads[i], "runs": n, "warmup": warmup, "threads": threads, "cores": cores,
            "block": None if solo else block, "optimization": optimization,
            "features": "file" if features else "random", "fingerprint": fingerprint, "warnings": warnings,
        })
    return results


# ---------------------------------------------------------------------------------------
# WER on the device's kernels: greedy transcripts of precomputed features (``--decode``).
# ---------------------------------------------------------------------------------------

FEATURES_SCHEMA = "edgetune-features/1"
DECODE_SCHEMA = "edgetune-decode/1"


class IntegrityError(ValueError):
    """A features file or model on the device is not the one the host sent (or was edited)."""


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def features_digest(manifest: dict, feats: np.ndarray) -> str:
    """sha256 of a features file's content: its manifest (without ``digest``) as sorted JSON, then
    the frames as little-endian float32. Written by the host, recomputed before decoding."""
    import hashlib

    body = {k: v for k, v in manifest.items() if k != "digest"}
    h = hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8"))
    h.update(np.ascontiguousarray(feats, dtype="<f4").tobytes())
    return h.hexdigest()


def load_features(path: str) -> tuple[dict, list[np.ndarray]]:
    """A features ``.npz`` (``manifest``: JSON, ``feats``: [sum of frames, n_mels] float32) ->
    (manifest, per-utterance [T, n_mels] arrays); IntegrityError when its digest does not match."""
    try:
        with np.load(path, allow_pickle=False) as z:
            manifest = json.loads(str(z["manifest"]))
            feats = z["feats"]
    except (OSError, ValueError, KeyError) as exc:
        raise IntegrityError(f"{path} is not a readable edgetune features file ({type(exc).__name__}: {exc})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != FEATURES_SCHEMA:
        raise IntegrityError(f"{path}: schema must be {FEATURES_SCHEMA!r}, but got "
                             f"{manifest.get('schema') if isinstance(manifest, dict) else manifest!r}")
    actual = features_digest(manifest, feats)
    if actual != manifest.get("digest"):
        raise IntegrityError(f"{path} was modified after it was written: its content digest is {actual[:16]}..., "
                             f"the digest it carries is {str(manifest.get('digest'))[:16]}... Fix: write the "
                             f"features again (edgetune bench --wer DATASET)")
    lengths = [int(n) for n in manifest["lengths"]]
    if feats.ndim != 2 or sum(lengths) != feats.shape[0] or len(lengths) != len(manifest["ids"]):
        raise IntegrityError(f"{path}: {len(lengths)} lengths summing to {sum(lengths)} do not fit frames "
                             f"{list(feats.shape)} and {len(manifest['ids'])} ids")
    offsets = np.cumsum([0] + lengths)
    return manifest, [feats[offsets[i]:offsets[i + 1]] for i in range(len(lengths))]


def decode_features(model_path: str, features_path: str, *, threads: int = 1, model_sha256: str | None = None,
                    features_sha256: str | None = None, max_seconds: float | None = None):
    """Yield ``("verified", {...})``, then ``("transcript", {index, id, hyp})`` per utterance, then
    ``("result", {...})``: greedy CTC transcripts of every utterance in ``features_path``, streamed
    chunk by chunk with :class:`StreamingModel` (the same code the host's WER uses).

    ``model_sha256`` / ``features_sha256`` are the host's digests of the files it sent: a file
    that differs on the device raises IntegrityError before anything is decoded, as does a
    features file whose feature settings are not the model's."""
    started = time.monotonic()
    got = {"model": file_sha256(model_path), "features": file_sha256(features_path)}
    for what, want in (("model", model_sha256), ("features", features_sha256)):
        if want is not None and got[what] != want:
            raise IntegrityError(f"the {what} file on the device ({got[what][:16]}...) is not the one the host "
                                 f"sent ({want[:16]}...): it was changed in transit or on the device")
    manifest, utterances = load_features(features_path)
    model = StreamingModel(model_path, threads=threads)
    if manifest.get("features") != model.meta.get("features"):
        raise IntegrityError(f"{features_path} holds features computed with {manifest.get('features')}, but "
                             f"the model hears {model.meta.get('features')}; write them for this model")
    yield "verified", {"model_sha256": got["model"], "features_sha256": got["features"],
                       "features_digest": manifest["digest"], "utterances": len(utterances)}
    for i, (uid, feats) in enumerate(zip(manifest["ids"], utterances)):
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            raise TimeoutError(f"decoding stopped after {max_seconds:g} s ({i} of {len(utterances)} utterances); "
                               f"lower --limit or raise the timeout")
        yield "transcript", {"index": i, "id": uid, "hyp": model.greedy_text(model.run_utterance(feats))}
    yield "result", {"schema": DECODE_SCHEMA, "utterances": len(utterances), "threads": threads,
                     "decode_seconds": time.monotonic() - started}


def decode_main(args) -> int:
    """``--decode features.npz``: JSON lines out (fingerprint, verified, transcript..., result)."""
    try:
        emit("start", pid=os.getpid())
        fingerprint = device_fingerprint(parse_cores(args.cores))
        emit("fingerprint", **fingerprint)
        for kind, fields in decode_features(args.model[0], args.decode, threads=args.threads,
                                            model_sha256=args.model_sha256, features_sha256=args.features_sha256,
                                            max_seconds=args.max_seconds):
            if kind == "result":
                fields["fingerprint"] = fingerprint
            emit(kind, **fields)
    except Exception as exc:
        emit("error", error=type(exc).__name__, message=str(exc))
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python runner.py --model m.onnx [--threads N --runs N --warmup N --cores 0,1]``: JSON lines out.

    ``--decode features.npz`` prints greedy transcripts of precomputed features instead of timing.
    Exit codes: 0 ok (last line ``{"type": "result", ...}``), 1 the run failed (last line
    ``{"type": "error", ...}``), 2 bad arguments.
    """
    p = argparse.ArgumentParser(description="edgetune on-device latency runner (numpy + onnxruntime only)")
    p.add_argument("--model", required=True, action="append",
                   help="the model; repeat to time several, alternating every --block steps")
    p.add_argument("--block", type=int, default=20, help="steps per model before switching (several models)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--cores", default=None, help="pin to these cores, taskset syntax: 0,2-3")
    p.add_argument("--features", default=None, help="a [T, n_mels] float32 .npy file; default random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--optimization", choices=["all", "basic", "none"], default="all")
    p.add_argument("--max-seconds", type=float, default=None, help="stop with an error after this long")
    p.add_argument("--decode", default=None, metavar="FEATURES.npz",
                   help="print greedy transcripts of these precomputed features (one model) instead of timing")
    p.add_argument("--model-sha256", default=None, help="with --decode: refuse a model with another sha256")
    p.add_argument("--features-sha256", default=None, help="with --decode: refuse a features file with another sha256")
    args = p.parse_args(argv)
    if args.decode:
        if len(args.model) != 1:
            p.error("--decode takes exactly one --model")
        return decode_main(args)
    try:
        results = time_models(args.model, threads=args.threads, runs=args.runs, warmup=args.warmup,
                              block=args.block, cores=parse_cores(args.cores), features=args.features,
                              seed=args.seed, optimization=args.optimization, max_seconds=args.max_seconds)
    except Exception as exc:  # report every failure as a JSON line the transport can carry back
        emit("error", error=type(exc).__name__, message=str(exc))
        return 1
    if len(results) == 1:
        emit("result", **results[0])
    else:
        emit("result", results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
