"""Every model on a study's front, shipped and checked in sherpa-onnx (``edgetune ship --front DIR``)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from edgetune.errors import ShipError


def front_trials(study_dir: Path) -> list[dict[str, str]]:
    """The rows of ``report/trials.csv`` on the front (write the report first)."""
    table = Path(study_dir) / "report" / "trials.csv"
    if not table.is_file():
        raise ShipError(f"{table} does not exist; fix: run `edgetune report --study-dir {study_dir}` first")
    with open(table, newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r.get("pareto") == "True"]


def ship_front(study_dir: str | os.PathLike, out_dir: str | os.PathLike, *, limit: int | None = None,
               min_identical: float = 0.99, batch: int = 1, model_type: str = "zipformer2_ctc",
               layernorm: str = "fused", log: Any = print) -> dict[str, Any]:
    """Ship every front model of ``study_dir`` into ``out_dir/trial-N`` and decode the study's test split
    with sherpa-onnx; writes and returns ``out_dir/ship-front.json`` (one row per model, ``all_passed``)."""
    from edgetune.data import load_dataset
    from edgetune.search._config import load_config
    from edgetune.ship._check import ship_check

    study_dir, out = Path(study_dir), Path(out_dir)
    config = load_config(study_dir / "study.yaml")
    test = list(load_dataset(config.dataset, progress=False).test)
    if limit:
        test = test[:limit]
    rows = []
    for r in front_trials(study_dir):
        model = study_dir / r["artifact"]
        res = ship_check(model, test, out / f"trial-{r['number']}", min_identical=min_identical, batch=batch,
                         model_type=model_type, layernorm=layernorm)
        row = {"trial": int(r["number"]), "bits": int(float(r["bits"])), "sparsity": float(r["sparsity"]),
               "depth_multiplier": float(r["depth_multiplier"]), "chunk_ms": int(float(r["chunk_ms"])),
               "wer": float(r["wer"]), "utterances": res["utterances"], "identical": res["identical"],
               "identical_fraction": res["identical_fraction"],
               "identical_kaldi_fbank_fraction": res.get("identical_kaldi_fbank_fraction"),
               "near_tie_mismatches": res["near_tie_mismatches"],
               "unexplained_mismatches": res["unexplained_mismatches"],
               "char_disagreement": res["char_disagreement"], "batch": res["batch"],
               "batch_identical_fraction": res["batch_identical_fraction"], "passed_by": res["passed_by"],
               "passed": res["passed"], "sherpa_onnx_version": res.get("sherpa_onnx_version"),
               "sherpa_onnxruntime": res.get("sherpa_onnxruntime"), "onnxruntime": res.get("onnxruntime"),
               "model_type": res.get("model_type"), "layernorm": res["layernorm"],
               "identical_to_study_file_fraction": res["identical_to_study_file_fraction"]}
        log(f"trial {row['trial']} ({row['bits']}-bit, width {row['depth_multiplier']}, sparsity {row['sparsity']}, "
            f"{row['chunk_ms']} ms): {row['identical']}/{row['utterances']} identical in sherpa-onnx, "
            f"{row['near_tie_mismatches']} near ties, {row['unexplained_mismatches']} other; passed by {row['passed_by']}")
        rows.append(row)
    summary = {"study": config.study_name, "dataset": config.dataset, "layernorm": layernorm, "models": rows,
               "all_passed": bool(rows) and all(r["passed"] for r in rows)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "ship-front.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
    return summary
