#!/usr/bin/env python3
"""Measure ``edgetune ship --type wenet_ctc`` on the committed demo base (benchmarks/results/ship-wenet-vm.json).

For each setting the demo base is derived without training (``derive_model``: fp32 as is, int8 with
observers calibrated on the tiny corpus's train split), exported, and put through the product's
``ship_check`` as wenet_ctc and as zipformer2_ctc on the tiny test split. Then:

- the sample scale: kaldi-native-fbank of x32768 samples vs of the samples (sherpa's wenet path vs
  edgetune's features): the shift on entries above the floor, and after the graph's
  ``Max(x - 2 ln 32768, ln FLT_EPSILON)`` the largest error, in float32 steps, and the share of
  entries that are bit-identical;
- an ablation: the same file with the shift *not* undone (``FEATURE_SHIFT = 0``), decoded by sherpa,
  to show that sherpa does scale the samples (its transcripts then differ).

    PYTHONPATH=. python benchmarks/ship_wenet.py [--out benchmarks/results/ship-wenet-vm.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KEEP = ("identical_fraction", "identical_kaldi_fbank_fraction", "export_exact", "near_tie_mismatches",
        "unexplained_mismatches", "char_disagreement", "chunks_match", "passed", "passed_by", "utterances",
        "size_bytes", "sample_scale_feature_error", "recognizer", "sherpa_onnx_version", "sherpa_onnxruntime",
        "onnxruntime", "identical_to_default_fraction", "seconds")


def derived(knobs, path: Path) -> Path:
    from edgetune.base import derive_model, load_base
    from edgetune.data import FeatureSpec, extract_features, load_dataset
    from edgetune.export import export_streaming_onnx
    from edgetune.train import make_examples

    import torch

    torch.manual_seed(0)  # calibration runs train-mode passes (dropout): seeded, the int8 file is one file
    base = load_base(REPO / "models" / "demo", rebuild_onnx=False)
    spec = FeatureSpec()
    train = list(load_dataset("tiny", progress=False).train)
    calibration = make_examples(train, extract_features(train, spec, progress=False)) if knobs.bits < 32 else None
    export_streaming_onnx(derive_model(base, knobs, calibration=calibration, pad_value=spec.silence).eval(),
                          knobs, path, check=False)
    return path


def scale_stats(test) -> dict:
    from edgetune.data import FeatureSpec, load_audio
    from edgetune.export._sherpa_wenet import FEATURE_SHIFT, LOG_FLOOR, SAMPLE_SCALE
    from edgetune.ship import kaldi_native_fbank

    spec = FeatureSpec()
    shifts, errs, steps, same, n, floor = [], [], [], 0, 0, 0
    for utt in test:
        wave = np.concatenate([load_audio(utt.audio_filepath, 16000), np.zeros(2880, np.float32)])
        plain, scaled = kaldi_native_fbank(wave, spec), kaldi_native_fbank(wave, spec, SAMPLE_SCALE)
        live = plain > LOG_FLOOR
        shifts.append(scaled[live].astype(np.float64) - plain[live])
        undone = np.maximum(scaled - FEATURE_SHIFT, LOG_FLOOR).astype(np.float32)
        err = np.abs(undone.astype(np.float64) - plain)
        errs.append(err.max())
        steps.append((err / np.spacing(np.abs(scaled).astype(np.float32))).max())
        same += int((undone == plain).sum())
        n += plain.size
        floor += int((~live).sum())
    s = np.concatenate(shifts)
    return {"utterances": len(test), "entries": n, "entries_at_floor": floor,
            "shift_expected": float(FEATURE_SHIFT), "shift_min": float(s.min()), "shift_max": float(s.max()),
            "shift_mean": float(s.mean()), "max_abs_error_after_undo": float(max(errs)),
            "max_error_in_float32_steps_of_scaled_value": float(max(steps)),
            "bit_identical_fraction": same / n}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ship-wenet-vm.json"))
    args = p.parse_args()
    from edgetune.data import load_dataset
    from edgetune.export import _sherpa_wenet
    from edgetune.knobs import Knobs
    from edgetune.ship import ship_check

    test = list(load_dataset("tiny", progress=False).test)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for bits in (32, 8):
            for chunk in (320, 640):
                knobs = Knobs(bits=bits, chunk_ms=chunk)
                src = derived(knobs, tmp / f"demo-{bits}-{chunk}.onnx")
                row = {"bits": bits, "chunk_ms": chunk}
                for kind in ("wenet_ctc", "zipformer2_ctc"):
                    r = ship_check(src, test, tmp / f"{kind}-{bits}-{chunk}", model_type=kind)
                    row[kind] = {k: r.get(k) for k in KEEP}
                print(json.dumps(row), flush=True)
                rows.append(row)
        src = derived(Knobs(bits=32, chunk_ms=320), tmp / "ablation.onnx")
        shift = _sherpa_wenet.FEATURE_SHIFT
        _sherpa_wenet.FEATURE_SHIFT = np.float32(0.0)  # the file no longer undoes sherpa's x32768
        try:
            r = ship_check(src, test, tmp / "ablation", model_type="wenet_ctc")
        finally:
            _sherpa_wenet.FEATURE_SHIFT = shift
        rows_ab = [json.loads(line) for line in (tmp / "ablation" / "transcripts.jsonl").read_text().splitlines()]
        ablation = {"bits": 32, "chunk_ms": 320, "identical_fraction": r["identical_fraction"],
                    "char_disagreement": r["char_disagreement"],
                    "examples": [{"sherpa": x["sherpa"], "edgetune": x["edgetune"]} for x in rows_ab[:3]]}
    result = {"machine": platform.platform(), "dataset": "tiny (test split)", "base": "models/demo",
              "settings": rows, "sample_scale": scale_stats(test), "ablation_shift_not_undone": ablation}
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps({"sample_scale": result["sample_scale"], "ablation": ablation}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
