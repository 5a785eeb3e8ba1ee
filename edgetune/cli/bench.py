"""``edgetune bench MODEL.onnx --target TARGET ... --json out.json``: time a model on a device.

Only parses arguments and calls :func:`edgetune.bench.bench_models` (and, with ``--wer``,
:func:`edgetune.bench.device_wer`); prints a short table and writes the full result (latency
samples, target, fingerprint, device and host WER) for ``edgetune check``.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="time an edgetune ONNX model on a device (local, ssh://, adb://)",
        description="Time one chunk step of an edgetune streaming ONNX model on a target device.",
        epilog="Targets: local | ssh://[user@]host[:port][?identity=..&known_hosts=..&python=..] | "
               "adb://SERIAL[?python=..&tmpdir=..]. Exit codes: 0 ok, 2 bad model, target or settings.")
    p.add_argument("model", help="the exported edgetune .onnx file")
    p.add_argument("--target", default="local", help="where to run (default: local)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    p.add_argument("--runs", type=int, default=200, help="timed chunk steps (default 200; >= 1000 for a stable p99)")
    p.add_argument("--warmup", type=int, default=20, help="untimed chunk steps first (default 20)")
    p.add_argument("--cores", default=None, help="pin to these cores, taskset syntax: 0 or 4-7 or 0,2")
    from edgetune.bench import runners

    p.add_argument("--runner", choices=runners(), default="python",
                   help="python: runner.py (numpy+onnxruntime); perf_test: onnxruntime_perf_test binary; "
                        "or one registered with edgetune.bench.register_runner")
    p.add_argument("--perf-test", default=None, metavar="PATH",
                   help="onnxruntime_perf_test path on the device (default $EDGETUNE_PERF_TEST or PATH)")
    p.add_argument("--features", default=None, help="a [T, n_mels] .npy of real features (default: random)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before the timed run is stopped")
    p.add_argument("--rounds", type=int, default=1,
                   help="start the runner this many times and pool the samples (default 1)")
    p.add_argument("--baseline-model", default=None, metavar="BASE.onnx",
                   help="also bench this model, alternating with MODEL round by round (same job, same drift)")
    p.add_argument("--block", type=int, default=20,
                   help="with --baseline-model: chunk steps per model before switching (default 20)")
    p.add_argument("--baseline-json", default=None, metavar="BASE.json",
                   help="where to write the baseline model's result (needs --baseline-model)")
    p.add_argument("--reference", action="store_true",
                   help="also time edgetune's fixed host-speed reference model in the same process, so "
                        "`edgetune check` can compare with a baseline stored by another job (see docs/ci-budgets.md)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the check of the content digest stored at export (bench a modified model anyway)")
    p.add_argument("--wer", default=None, metavar="DATASET",
                   help="also decode a test set on the target and report its WER next to the host's: a dataset "
                        "(preset or folder: its test split), an audio folder, or a features .npz (--wer-features)")
    p.add_argument("--limit", type=int, default=None, help="with --wer: the first N utterances only")
    p.add_argument("--wer-features", default=None, metavar="OUT.npz",
                   help="with --wer: keep the features file sent to the device here (reuse it as --wer OUT.npz)")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT.json", help="write the full result here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgetune._io import atomic_write_text
    from edgetune.bench import bench_models
    from edgetune.errors import ConfigError

    if bool(args.baseline_model) != bool(args.baseline_json):
        raise ConfigError("--baseline-model and --baseline-json go together: the baseline's result needs a file")
    if (args.limit is not None or args.wer_features) and not args.wer:
        raise ConfigError("--limit and --wer-features go with --wer DATASET")
    models = [args.model] + ([args.baseline_model] if args.baseline_model else [])
    results = bench_models(models, args.target, rounds=args.rounds, block=args.block, threads=args.threads,
                           runs=args.runs, warmup=args.warmup, cores=args.cores, timeout_s=args.timeout,
                           runner=args.runner, features=args.features, perf_test=args.perf_test,
                           reference=args.reference, verify=not args.no_verify)
    if args.wer:
        from edgetune.bench import device_wer

        w = device_wer(args.model, args.wer, args.target, limit=args.limit, threads=args.threads,
                       timeout_s=args.timeout, verify=not args.no_verify, features_out=args.wer_features)
        results[0].update(wer=w["wer"], wer_host=w["wer_host"], wer_delta=w["wer_delta"], device_wer=w)
    for result, out in zip(results, [args.json_out, args.baseline_json]):
        print(format_table(result))
        if out:
            atomic_write_text(out, json.dumps(result, indent=1, sort_keys=True) + "\n")
            print(f"wrote {out}")
    return 0


def format_table(r: dict) -> str:
    lat, fp = r["latency_ms"], r.get("fingerprint") or {}
    mib = lambda b: "n/a" if b is None else f"{b / 2**20:.1f} MiB"  # noqa: E731
    rows = [
        ("model", f"{r['model']} ({r['size_bytes']:,} B, gzip {r['gzip_bytes']:,} B)"),
        ("target", f"{r['target']} [{r['runner']}] {fp.get('cpu_model') or '?'}, {fp.get('cores') or '?'} cores, "
                   f"governor {fp.get('governor') or '?'}, {fp.get('temperature_c') or '?'} °C"),
        ("settings", f"threads {r['threads']}, cores {r['cores'] or 'any'}, {r['runs']} runs "
                     f"({r.get('rounds', 1)} round(s), {r['warmup']} warmup each)"),
        ("latency/chunk", f"p50 {lat['p50']:.3f}  p90 {lat['p90']:.3f}  p99 {lat['p99']:.3f}  "
                          f"mean {lat['mean']:.3f} ± {lat['std']:.3f} ms"),
        ("rtf", "n/a" if r.get("rtf") is None else f"{r['rtf']:.4f} (chunk {r['chunk_ms']:g} ms)"),
        ("algorithmic", f"{r['algorithmic_latency_ms']:g} ms (chunk + lookahead + window)"
         if r.get("algorithmic_latency_ms") is not None else "n/a"),
        ("peak RSS", f"{mib(r.get('peak_rss_bytes'))} (baseline before load {mib(r.get('baseline_rss_bytes'))})"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    st = r.get("stability")
    if st:
        cv = "n/a" if st["cv_pct"] is None else f"{st['cv_pct']:.1f}%"
        mm = "n/a" if st["max_min"] is None else f"{st['max_min']:.2f}"
        lines.append(f"{'stability':<{width}}  {st['score']:.0f}/100 ({st['rating']}): CV {cv} over {st['runs']} "
                     f"run(s){' x reference' if st.get('normalized') else ''}, max/min {mm}, "
                     f"p99/p50 {st['p99_p50']:.2f}")
    w = r.get("device_wer")
    if w:
        f = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
        lines.append(f"{'WER':<{width}}  device {f(w['wer'])}, host {f(w['wer_host'])} (delta "
                     f"{'n/a' if w['wer_delta'] is None else format(w['wer_delta'], '+.4f')}) on {w['utterances']} "
                     f"utterance(s); {w['transcripts_differ']} transcript(s) differ")
    lines += [f"warning: {w}" for w in r.get("warnings", [])]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    from edgetune.cli import main

    sys.exit(main(["bench", *sys.argv[1:]]))
