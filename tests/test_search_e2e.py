"""End to end through the real pipeline: a two-trial study on the tiny corpus trains, exports
and measures real streaming ONNX models; the report and ``edgetune export`` work on them and
the exported file runs in ONNX Runtime chunk by chunk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _helpers import study_config

pytestmark = pytest.mark.slow

#: what differs from _helpers.STUDY: the tiny corpus, a two-point grid (chunk 160 and 320 ms), quick timing
STUDY = {"seed": 0, "dataset": "tiny", "space": {"bits": 32, "sparsity": 0.25, "depth_multiplier": 0.25,
                                                 "chunk_ms": [160, 320]},
         "budgets": ["latency_ms <= 5000"], "train": {"epochs": 1, "batch_size": 16, "device": "cpu"},
         "bench": {"threads": 1, "runs": 10, "warmup": 2}, "sampler": {"name": "grid"}}


def test_real_study_report_and_export(tmp_path: Path) -> None:
    pipeline = pytest.importorskip("edgetune.pipeline")
    import numpy as np

    from edgetune._runner import StreamingModel
    from edgetune._io import sha256_file
    from edgetune.cli import main
    from edgetune.report import build_report
    from edgetune.search import StudyPaths, open_study, run_study

    config = study_config("e2e", 2, **STUDY)
    study_dir = tmp_path / "study"
    summary = run_study(config, study_dir, runner=pipeline.run_candidate, progress=False, report=build_report)
    trials = open_study(config, StudyPaths(study_dir), create=False).get_trials()
    assert summary.finished == 2
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"], [t.user_attrs.get("fail_reason") for t in trials]
    assert sorted(t.params["chunk_ms"] for t in trials) == [160, 320]
    for t in trials:
        art = study_dir / t.user_attrs["artifact"]
        assert sha256_file(art) == t.user_attrs["sha256"]
        assert art.stat().st_size == t.user_attrs["size_bytes"]
        result = json.loads((art.parent / "result.json").read_text())
        assert t.values[0] == result["wer"]
        assert t.values[1] == pytest.approx(result["latency_ms"]["p90"] + result["algorithmic_latency_ms"])
    assert (study_dir / "report" / "index.html").exists()

    n = summary.front[0]
    out = tmp_path / "export" / "m.onnx"
    assert main(["export", "--study-dir", str(study_dir), "--trial", str(n), "--out", str(out)]) == 0
    card = json.loads((tmp_path / "export" / "m.card.json").read_text())
    assert card["knobs"] == trials[n].user_attrs["knobs"]
    model = StreamingModel(str(out))
    assert model.meta["knobs"]["bits"] == card["knobs"]["bits"]
    logits = model.run_utterance(np.full((3 * model.chunk_frames, model.n_mels), -5.0, np.float32))
    assert logits.shape[-1] == len(model.meta["vocabulary"]) and np.isfinite(logits).all()

    # the model card's Python snippet runs as written on a real WAV file
    import contextlib
    import io
    import os

    import soundfile as sf

    sf.write(tmp_path / "audio.wav", (np.random.default_rng(0).standard_normal(16000) * 0.01).astype(np.float32), 16000)
    cwd, buf = os.getcwd(), io.StringIO()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(buf):
            exec(compile(card["usage"]["python"], "card-snippet", "exec"), {})
    finally:
        os.chdir(cwd)
    assert buf.getvalue().endswith("\n")  # printed a transcript line (maybe empty for noise)
    assert card["usage"]["cli"] == f"edgetune transcribe {out} audio.wav"
