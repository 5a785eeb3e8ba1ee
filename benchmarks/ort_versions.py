#!/usr/bin/env python3
"""Do a quantized edgetune file's logits depend on the ONNX Runtime version? (benchmarks/results/ort-versions-vm.json)

A phone or board runs whatever ONNX Runtime its app bundles (sherpa-onnx 2.0.1 bundles 1.28.2),
not the version edgetune measured WER with. For each setting, the committed demo base is derived
without training (int8 and INT4, observers calibrated on the tiny corpus), exported twice:

- ``fused``: LayerNormalization as one node (what a study exports);
- ``decomposed``: the same file through ``edgetune ship --layernorm primitive``'s rewrite
  (``edgetune.export.sherpa.primitive_layernorm_copy``: primitive ops that ORT does not fuse back).

Each file is then decoded chunk by chunk (states fed back) on the tiny test split's features under
every interpreter given with ``--python`` (each with another onnxruntime wheel; only numpy and
onnxruntime are needed there) and under this one. Reported per version against this one: the
largest logit difference, the frames whose argmax changes and the utterances whose greedy CTC
tokens change; and, through the product's ``ship_check``, sherpa-onnx's identical fraction.

    python3 -m venv /tmp/ort128 && /tmp/ort128/bin/pip install onnxruntime==1.28.0 numpy
    PYTHONPATH=. python benchmarks/ort_versions.py --python /tmp/ort128/bin/python [--python ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: runs under the other interpreters: numpy + onnxruntime only
DECODE = r"""
import sys, json, numpy as np, onnxruntime as ort
model, feats, out = sys.argv[1:4]
so = ort.SessionOptions(); so.intra_op_num_threads = 1
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
ins = s.get_inputs()
T = ins[0].shape[1]
z = np.load(feats)
logits = {}
for key in z.files:
    x = z[key]
    x = np.concatenate([x, np.zeros(((-len(x)) % T, x.shape[1]), np.float32) + x.min()])
    states = [np.zeros([d if isinstance(d, int) else 1 for d in i.shape],
                       np.float32 if "float" in i.type else np.int64) for i in ins[1:]]
    parts = []
    for c in range(0, len(x), T):
        r = s.run(None, {ins[0].name: x[None, c:c + T], **{i.name: v for i, v in zip(ins[1:], states)}})
        parts.append(r[0][0]); states = r[1:]
    logits[key] = np.concatenate(parts)
np.savez(out, **logits)
print(json.dumps({"onnxruntime": ort.__version__}))
"""


def export(knobs, path: Path, decomposed: bool) -> Path:
    import torch

    from edgetune.base import derive_model, load_base
    from edgetune.data import FeatureSpec, extract_features, load_dataset
    from edgetune.export import export_streaming_onnx
    from edgetune.export.sherpa import primitive_layernorm_copy
    from edgetune.train import make_examples

    torch.manual_seed(0)  # calibration runs train-mode passes: seeded, both variants hold the same weights
    base = load_base(REPO / "models" / "demo", rebuild_onnx=False)
    spec = FeatureSpec()
    train = list(load_dataset("tiny", progress=False).train)
    calibration = make_examples(train, extract_features(train, spec, progress=False))
    model = derive_model(base, knobs, calibration=calibration, pad_value=spec.silence).eval()
    fused = path.with_name(path.stem + "-source.onnx")
    export_streaming_onnx(model, knobs, fused, check=False)
    if not decomposed:
        fused.replace(path)
    else:
        primitive_layernorm_copy(fused, path)
    return path


def greedy(logits: np.ndarray, blank: int = 0) -> list[int]:
    best = logits.argmax(-1)
    return [int(t) for i, t in enumerate(best) if t != blank and (i == 0 or t != best[i - 1])]


def compare(ref: dict, other: dict) -> dict:
    diff = max(float(np.abs(ref[k] - other[k]).max()) for k in ref)
    frames = sum(int((ref[k].argmax(-1) != other[k].argmax(-1)).sum()) for k in ref)
    utts = sum(greedy(ref[k]) != greedy(other[k]) for k in ref)
    return {"max_abs_logit_diff": diff, "argmax_changed_frames": frames,
            "frames": sum(len(v) for v in ref.values()), "token_changed_utterances": utts, "utterances": len(ref)}


def latency_ratio(model: Path, baseline: Path, rounds: int) -> dict:
    """Chunk-step latency of ``model`` over ``baseline``, interleaved in one process per round
    (block mode: drift and other tenants hit both alike)."""
    from edgetune.bench import bench_models

    a, b = bench_models([model, baseline], rounds=rounds, runs=400, verify=False)
    per_round = [x / y for x, y in zip(a["round_p50_ms"], b["round_p50_ms"])]
    return {"p50_ratio": a["latency_ms"]["p50"] / b["latency_ms"]["p50"],
            "median_round_ratio": float(np.median(per_round)), "round_ratios": [round(r, 4) for r in per_round],
            "p50_ms": {"decomposed": a["latency_ms"]["p50"], "fused": b["latency_ms"]["p50"]},
            "rounds": rounds, "runs_per_round": 400, "threads": 1}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--python", action="append", default=[], help="an interpreter with another onnxruntime")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ort-versions-vm.json"))
    p.add_argument("--dataset", default="smoke", help="whose test split to decode (default smoke: 60 utterances)")
    p.add_argument("--no-sherpa", action="store_true", help="skip the sherpa-onnx ship check")
    p.add_argument("--rounds", type=int, default=10, help="interleaved latency rounds, decomposed vs fused")
    args = p.parse_args()
    from edgetune.data import FeatureSpec, extract_features, load_dataset
    from edgetune.knobs import Knobs
    from edgetune.ship import ship_check

    test = list(load_dataset(args.dataset, progress=False).test)
    feats = extract_features(test, FeatureSpec(), progress=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "feats.npz", **{f"u{i}": f.numpy().astype(np.float32) for i, f in enumerate(feats)})
        for bits in (8, 4):
            for decomposed in (False, True):
                name = f"int{bits}-{'decomposed' if decomposed else 'fused'}"
                model = export(Knobs(bits=bits, chunk_ms=320), tmp / f"{name}.onnx", decomposed)
                logits, versions = {}, {}
                for py in [sys.executable, *args.python]:
                    out = tmp / f"{name}-{len(logits)}.npz"
                    done = subprocess.run([py, "-c", DECODE, str(model), str(tmp / "feats.npz"), str(out)],
                                          capture_output=True, text=True, check=True)
                    v = json.loads(done.stdout.strip().splitlines()[-1])["onnxruntime"]
                    with np.load(out) as z:
                        logits[v] = {k: z[k] for k in z.files}
                    versions[v] = py
                mine = next(iter(logits))
                row = {"setting": name, "bits": bits, "layernorm": "decomposed" if decomposed else "fused",
                       "reference_onnxruntime": mine,
                       "versus": {v: compare(logits[mine], logits[v]) for v in list(logits)[1:]}}
                if not args.no_sherpa:
                    r = ship_check(model, test, tmp / f"ship-{name}")
                    row["sherpa"] = {k: r.get(k) for k in ("sherpa_onnx_version", "sherpa_onnxruntime",
                                                           "identical", "utterances", "identical_fraction")}
                print(json.dumps(row), flush=True)
                rows.append(row)
            row["latency_decomposed_over_fused"] = latency_ratio(tmp / f"int{bits}-decomposed.onnx",
                                                                 tmp / f"int{bits}-fused.onnx", args.rounds)
            print(json.dumps({"bits": bits, "latency": row["latency_decomposed_over_fused"]}), flush=True)
    result = {"machine": platform.platform(), "processor": platform.processor(), "dataset": f"{args.dataset} (test split)",
              "base": "models/demo (derived without training, chunk 320 ms)", "settings": rows,
              "command": "PYTHONPATH=. python " + " ".join(sys.argv),
              "cpu_count": os.cpu_count(), "loadavg_at_end": os.getloadavg()}
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
