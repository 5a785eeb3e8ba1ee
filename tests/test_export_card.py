"""``edgetune export``: sha256-verified copy and a model card that reports what was measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgetune._io import sha256_file
from edgetune.cli import main
from edgetune.errors import ArtifactError, ConfigError, ParityError
from edgetune.card import export_trial
from edgetune.search import SimulatedRunner, StudyPaths, open_study, run_study

from _helpers import STUDY, study_config

#: this file's study (what differs from _helpers.STUDY): sparsity up to 0.5, two objectives, a budget, 2 threads
CONFIG = {"seed": None, "space": {**STUDY["space"], "sparsity": {"low": 0.0, "high": 0.5, "step": 0.1}},
          "objectives": ["wer", "latency_ms"], "budgets": ["latency_ms <= 250"],
          "bench": {"threads": 2, "runs": 30, "warmup": 3}}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("study")
    config = study_config("exp", 6, **CONFIG)
    outcomes = iter([None, ParityError("parity")])  # the second candidate fails
    run_study(config, d, runner=SimulatedRunner(fail_when=lambda k: next(outcomes, None)), progress=False)
    return d, open_study(config, StudyPaths(d), create=False)


def complete_trial(study):
    return next(t for t in study.get_trials() if t.state.name == "COMPLETE")


def test_export_copies_verified_artifact_and_writes_card(study, tmp_path: Path) -> None:
    d, st = study
    t = complete_trial(st)
    out = tmp_path / "export" / "phone.onnx"
    done = export_trial(d, t.number, out)
    assert out.read_bytes() == (d / t.user_attrs["artifact"]).read_bytes()
    assert done.sha256 == sha256_file(out) == t.user_attrs["sha256"]
    card = json.loads((tmp_path / "export" / "phone.card.json").read_text())
    ua = t.user_attrs
    assert card["sha256"] == done.sha256 and card["file"] == "phone.onnx"
    assert card["knobs"] == ua["knobs"]
    assert card["accuracy"]["wer"] == ua["wer"] and card["accuracy"]["worst_group_wer"] == ua["worst_group_wer"]
    assert card["latency"]["per_chunk_compute_ms"] == ua["latency_ms"]
    assert card["latency"]["host"] == ua["host"] and card["latency"]["threads"] == 2
    assert card["latency"]["latency_ms"] == pytest.approx(ua["latency_ms"]["p90"] + ua["algorithmic_latency_ms"])
    assert card["size"]["size_bytes"] == ua["size_bytes"] == out.stat().st_size
    assert card["source"]["trial"] == t.number
    assert card["pareto"]["feasible"] == (card["latency"]["latency_ms"] <= 250)
    md = (tmp_path / "export" / "phone.md").read_text()
    assert "edgetune transcribe " in md and "onnxruntime" in md and done.sha256 in md
    assert f"{ua['latency_ms']['p90']:.4g}" in md
    # the Python snippet in the card is valid Python
    compile(card["usage"]["python"], "snippet", "exec")


def test_sha_mismatch_names_file_and_both_hashes(study, tmp_path: Path) -> None:
    d, st = study
    t = complete_trial(st)
    art = d / t.user_attrs["artifact"]
    original = art.read_bytes()
    try:
        art.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        tampered = sha256_file(art)
        with pytest.raises(ArtifactError) as e:
            export_trial(d, t.number, tmp_path / "x.onnx")
        msg = str(e.value)
        assert str(art) in msg and tampered in msg and t.user_attrs["sha256"] in msg
        assert not (tmp_path / "x.onnx").exists()
    finally:
        art.write_bytes(original)


def test_failed_unknown_trial_and_bad_out_are_errors(study, tmp_path: Path) -> None:
    d, st = study
    failed = [t for t in st.get_trials() if t.state.name == "FAIL"]
    with pytest.raises(ArtifactError, match="FAIL .*ParityError"):
        export_trial(d, failed[0].number, tmp_path / "f.onnx")
    with pytest.raises(ConfigError, match="no such trial"):
        export_trial(d, 999, tmp_path / "f.onnx")
    with pytest.raises(ConfigError, match=r"\.onnx"):
        export_trial(d, complete_trial(st).number, tmp_path / "f.bin")


def test_cli_export_and_report(study, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d, st = study
    n = complete_trial(st).number
    assert main(["export", "--study-dir", str(d), "--trial", str(n), "--out", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.card.json").exists() and (tmp_path / "m.md").exists()
    assert main(["export", "--study-dir", str(d), "--trial", "999", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "no such trial" in capsys.readouterr().err
    assert main(["report", "--study-dir", str(d), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "index.html").exists()
