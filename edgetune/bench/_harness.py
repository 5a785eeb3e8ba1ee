"""What is timed, wherever it runs: push the runner and the model through a transport, run,
read the JSON lines back, and add what is measured on the host (file size, gzip size,
algorithmic latency from the metadata).

The runner is looked up by name (``runner="python"`` or ``"perf_test"``, or one registered
with :func:`edgetune.bench.register_runner`; see ``_runners.py``), the transport by target.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import uuid
import zlib
from pathlib import Path
from typing import Any

from edgetune.errors import ArtifactError, ConfigError, TargetError
from edgetune.bench._runners import (REMOTE_MODEL, REMOTE_RUNNER, RUNNER_PATH, RUNNERS, Timing, get_runner,
                                     parse_events, runner_options)
from edgetune.bench._transport import SETUP_TIMEOUT_S, parse_target

#: bench settings every runner shares (each runner adds the options it reads, e.g. ``perf_test``)
COMMON_SETTINGS = ("threads", "runs", "warmup", "cores", "timeout_s", "runner", "verify")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def bench_model(model_path: str | os.PathLike, target: str = "local", *, threads: int = 1, runs: int = 200,
                warmup: int = 20, cores: str | None = None, timeout_s: float = 600,
                runner: str = "python", features: str | None = None, seed: int = 0,
                perf_test: str | None = None, rounds: int = 1, reference: bool = False,
                verify: bool = True, **options: Any) -> dict[str, Any]:
    """Time an edgetune streaming ONNX model on ``target``; return a JSON-serialisable result.

    Keys: ``latency_ms`` {p50, p90, p99, mean, std, min, max} of one chunk step, ``samples_ms``,
    ``rtf`` (mean compute time per chunk / chunk duration), ``algorithmic_latency_ms`` (chunk +
    lookahead + analysis window, from the metadata), ``peak_rss_bytes`` (runner process peak,
    including the Python + ONNX Runtime baseline ``baseline_rss_bytes``), ``size_bytes``,
    ``gzip_bytes``, ``runs``, ``warmup``, ``threads``, ``cores``, ``target``, ``runner`` and
    ``fingerprint`` {cpu_model, cores, governor, temperature_c, os, machine, ort_version, python,
    numpy, ...} (None where unreadable).

    ``cores`` pins the runner (``"0,2-3"``: ``os.sched_setaffinity`` in the Python runner,
    ``taskset -c`` for ``perf_test``). ``rounds`` > 1 starts the runner that many times (fresh
    process and session each time, ``runs`` samples each) and pools the samples, so the result
    covers between-process variation too. ``timeout_s`` bounds each runner invocation; setup
    steps (mktemp, push, cleanup) have their own 60 s bound. ``reference`` times the host-speed
    reference model beside it (see :func:`bench_models`). Raises ArtifactError for a missing
    or non-edgetune model, ConfigError for bad settings, TargetError for transport/runner failures.
    ``verify`` (default) refuses a model whose content digest no longer matches (modified after export).
    ``options`` go to a registered runner that reads them (:func:`edgetune.bench.register_runner`).
    """
    return bench_models([model_path], target, threads=threads, runs=runs, warmup=warmup, cores=cores,
                        timeout_s=timeout_s, runner=runner, features=features, seed=seed, perf_test=perf_test,
                        rounds=rounds, reference=reference, verify=verify, **options)[0]


def bench_models(model_paths: list[str | os.PathLike], target: str = "local", *, rounds: int = 3,
                 interleave: str = "block", block: int = 20, reference: bool = False,
                 **settings: Any) -> list[dict[str, Any]]:
    """Bench several models **interleaved** on one target, ``rounds`` times; one result per model.

    This is how to compare a candidate with its baseline on a noisy device: drift (clock
    steps, heat, other tenants) hits both alike instead of whichever ran last.

    * ``interleave="block"`` (Python runner): each round is one runner process holding every
      model, alternating every ``block`` chunk steps; ``edgetune check`` then compares the two
      results block by block (a paired test). Peak RSS comes from a short solo run per model.
    * ``interleave="process"``: each round runs one runner process per model, in turn.

    ``reference=True`` adds the fixed host-speed reference model (``edgetune.bench._reference``)
    to the rotation (block mode) and attaches its samples to every result as ``reference``, so
    ``edgetune check`` can compare runs from different jobs relative to the host's speed.

    Results carry pooled samples, per-round p50s (``round_p50_ms``), a ``stability`` score over
    the rounds (``edgetune.bench._gate.stability``) and ``interleave`` {job, mode, block, rounds,
    index}. ``settings`` are :func:`bench_model`'s keyword arguments.
    """
    threads, runs, warmup = settings.get("threads", 1), settings.get("runs", 200), settings.get("warmup", 20)
    cores, timeout_s, runner = settings.get("cores"), settings.get("timeout_s", 600), settings.get("runner", "python")
    unknown = set(settings) - set(COMMON_SETTINGS) - runner_options()
    if unknown:
        raise ConfigError(f"unknown bench setting(s) {sorted(unknown)}")
    if not model_paths:
        raise ConfigError("bench_models needs at least one model path")
    _check_settings(threads=threads, runs=runs, warmup=warmup, timeout_s=timeout_s, runner=runner, cores=cores)
    device_runner = get_runner(runner).make(settings)
    if reference:
        if not device_runner.interleaves or interleave != "block":
            raise ConfigError("reference=True needs the python runner and block interleaving (one process "
                              f"alternates the model and the reference), but got runner={runner!r}, "
                              f"interleave={interleave!r}")
        from edgetune.bench._reference import reference_model

        model_paths = [*model_paths, reference_model()]
    for name, value in (("rounds", rounds), ("block", block)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, but got {value!r}")
    if interleave not in ("block", "process"):
        raise ConfigError(f"interleave must be 'block' or 'process', but got {interleave!r}")
    mode = "block" if interleave == "block" and device_runner.interleaves and len(model_paths) > 1 else "process"
    if mode == "block":
        runs = -(-runs // block) * block  # whole blocks, so samples pair up block by block
    models = []
    for model_path in model_paths:
        path = Path(model_path)
        meta, external = read_model_metadata(path, verify=settings.get("verify", True))
        models.append((path, external, {
            "model": path.name, "model_path": str(path.resolve()), "size_bytes": file_size(path, external),
            "gzip_bytes": gzip_size(path, external), "algorithmic_latency_ms": algorithmic_latency_ms(meta),
            "chunk_ms": float(meta.get("chunk_ms") or 0.0), "knobs": meta.get("knobs")}))
    transport = parse_target(target)
    per_model: list[list[dict[str, Any]]] = [[] for _ in models]
    timing = Timing(threads=threads, warmup=warmup, cores=cores, timeout_s=timeout_s)
    chunk_ms = [host_side["chunk_ms"] for _, _, host_side in models]
    with transport.session() as remote_dir:
        device_runner.prepare(transport, remote_dir)
        for i, (path, external, _) in enumerate(models):
            res = transport.run(["mkdir", f"m{i}"], SETUP_TIMEOUT_S, cwd=remote_dir, what="make a model directory")
            if res.returncode != 0:
                raise TargetError(f"{transport.target}: could not make {remote_dir}/m{i}: {res.stderr.strip()}")
            transport.push(str(path), f"{remote_dir}/m{i}/{REMOTE_MODEL}")
            for name in external:
                transport.push(str(path.parent / name), f"{remote_dir}/m{i}/{name}")
        names = [f"m{i}/{REMOTE_MODEL}" for i in range(len(models))]
        for _ in range(rounds):
            if mode == "block":
                for i, device in enumerate(device_runner.time(transport, remote_dir, names, runs=runs, timing=timing,
                                                              chunk_ms=chunk_ms, block=block)):
                    per_model[i].append(device)
                continue
            for i in range(len(models)):
                device = device_runner.time(transport, remote_dir, [names[i]], runs=runs, timing=timing,
                                            chunk_ms=[chunk_ms[i]])[0]
                per_model[i].append(device)
        solo = Timing(threads=threads, warmup=1, cores=cores, timeout_s=timeout_s)
        solo_rss = ([device_runner.time(transport, remote_dir, [name], runs=2, timing=solo, chunk_ms=[c])[0]
                     for name, c in zip(names, chunk_ms)] if mode == "block" else None)
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    job = uuid.uuid4().hex
    results = []
    for i, ((_, _, host_side), devices) in enumerate(zip(models, per_model)):
        result = {**_pool_rounds(devices, host_side["chunk_ms"]), **host_side}
        if solo_rss:
            result.update({k: solo_rss[i].get(k) for k in ("peak_rss_bytes", "baseline_rss_bytes", "model_rss_bytes")})
        result.update(target=target, runner=runner, threads=threads, runs=runs * rounds, runs_per_round=runs,
                      rounds=rounds, warmup=warmup, cores=cores, created=created,
                      interleave={"job": job, "mode": mode, "block": block if mode == "block" else None,
                                  "rounds": rounds, "index": i, "models": len(models)})
        results.append(result)
    if reference:
        from edgetune.bench._reference import REFERENCE, REFERENCE_NAME

        ref = results.pop()
        for result in results:
            result["reference"] = {"model": REFERENCE_NAME, "spec": REFERENCE, "samples_ms": ref["samples_ms"],
                                   "latency_ms": ref["latency_ms"]}
    from edgetune.bench._gate import round_values, stability

    for result in results:
        ref = (result.get("reference") or {}).get("samples_ms")
        try:
            values = round_values(result["samples_ms"], rounds, reference=ref)
        except ValueError:  # perf_test rounds of unequal length: score the pooled steps only
            values = round_values(result["samples_ms"], 1)
        result["stability"] = {**stability(values, result["samples_ms"]), "normalized": ref is not None}
    return results


def _pool_rounds(devices: list[dict[str, Any]], chunk_ms: float) -> dict[str, Any]:
    """One device result from several rounds: samples concatenated, summary recomputed, peaks maxed."""
    first = dict(devices[0])
    if len(devices) == 1:
        first["round_p50_ms"] = [first["latency_ms"]["p50"]]
        return first
    from edgetune.bench._perf_test import summarize_samples

    samples = [s for d in devices for s in d["samples_ms"]]
    latency = summarize_samples(samples)
    peaks = [d.get("peak_rss_bytes") for d in devices if d.get("peak_rss_bytes") is not None]
    first.update(samples_ms=samples, latency_ms=latency, rtf=latency["mean"] / chunk_ms if chunk_ms else None,
                 peak_rss_bytes=max(peaks) if peaks else None,
                 round_p50_ms=[d["latency_ms"]["p50"] for d in devices],
                 warnings=sorted({w for d in devices for w in d.get("warnings", [])}))
    if first.get("load_ms") is not None:
        first["load_ms"] = sum(d["load_ms"] for d in devices) / len(devices)
    return first


# ----------------------------------------------------------------------------- model facts (host side)


def read_model_metadata(path: Path, verify: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The ``edgetune`` metadata dict of an ONNX file and the names of its external data files.

    ``verify`` also checks the content digest stored at export (ArtifactError if modified)."""
    if not path.is_file():
        raise ArtifactError(f"model file {str(path)!r} does not exist (or is not a file); pass the path of an "
                            f"exported edgetune .onnx file")
    onnx = _import_onnx()
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for a non-ONNX file
        raise ArtifactError(f"{str(path)!r} is not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    if verify:
        from edgetune.export._integrity import verify_model

        verify_model(path, model)
    props = {p.key: p.value for p in model.metadata_props}
    if "edgetune" not in props:
        raise ArtifactError(f"{str(path)!r} is not an edgetune model: it has no 'edgetune' metadata entry "
                            f"(export it with edgetune, which writes the streaming contract)")
    try:
        meta = json.loads(props["edgetune"])
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{str(path)!r}: the 'edgetune' metadata is not valid JSON ({exc})") from None
    external = sorted({entry.value for tensor in _all_tensors(model) for entry in tensor.external_data
                       if entry.key == "location"})
    for name in external:
        if not _SAFE_NAME.match(name) or name in (REMOTE_MODEL, REMOTE_RUNNER):
            raise ArtifactError(f"{str(path)!r} refers to external data file {name!r}; only plain names "
                                f"[A-Za-z0-9._-] beside the model (not {REMOTE_MODEL!r}) can be benchmarked. "
                                f"Fix: re-export with external_data=False or a plain data file name")
        if not (path.parent / name).is_file():
            raise ArtifactError(f"{str(path)!r} needs external data file {str(path.parent / name)!r}, "
                                f"which does not exist")
    return meta, external


def _all_tensors(model) -> list:
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                tensors.append(attr.t)
    return [t for t in tensors if t.external_data]


def _import_onnx():
    from edgetune._imports import require

    return require("onnx", purpose="reading model metadata")


def algorithmic_latency_ms(meta: dict[str, Any]) -> float | None:
    """chunk_ms + lookahead_ms + (frame length - frame shift) / 2, as StreamingSpec defines it."""
    if meta.get("chunk_ms") is None:
        return None
    feats = meta.get("features") or {}
    window_ms = (float(feats.get("frame_length_ms", 25.0)) - float(feats.get("frame_shift_ms", 10.0))) / 2
    return float(meta["chunk_ms"]) + float(meta.get("lookahead_ms") or 0) + window_ms


def file_size(path: Path, external: list[str] = ()) -> int:
    """Bytes on disk of the model plus its external data files."""
    return path.stat().st_size + sum((path.parent / n).stat().st_size for n in external)


def gzip_size(path: Path, external: list[str] = ()) -> int:
    """Bytes after DEFLATE level 9 of the model and its data files (what a download would carry)."""
    total = 0
    for p in [path, *(path.parent / n for n in external)]:
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                total += len(comp.compress(block))
        total += len(comp.flush())
    return total


def _check_settings(*, threads: int, runs: int, warmup: int, timeout_s: float, runner: str, cores: str | None) -> None:
    get_runner(runner)  # ConfigError listing the registered runners
    for name, value, low in (("threads", threads, 1), ("runs", runs, 2), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, but got {value!r}")
    if not isinstance(timeout_s, (int, float)) or not timeout_s > 0 or math.isinf(timeout_s):
        raise ConfigError(f"timeout_s must be a positive number of seconds, but got {timeout_s!r}")
    if cores is not None and not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", str(cores)):
        raise ConfigError(f"cores must be a taskset-style list like '0' or '0,2-3', but got {cores!r}")


__all__ = ["COMMON_SETTINGS", "REMOTE_MODEL", "REMOTE_RUNNER", "RUNNERS", "RUNNER_PATH", "bench_model",
           "bench_models", "parse_events", "read_model_metadata"]
