"""The bad-input suite: each kind of broken input a user can hand edgetune, and the error it gets.

Every test asserts that the message names the offending thing (the file, key or value) AND says
how to fix it. Inputs are real files written into ``tmp_path`` (soundfile for audio, plain text
for YAML and manifests), studies run with the simulated runner, and the storage URL points at a
real closed port. A last pair of tests checks that nothing in the package unpickles data it
loads (``torch.load`` with ``weights_only=True``, ``np.load`` without ``allow_pickle=True``).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgetune.errors import ArtifactError, ConfigError, DataError, StudyError, TargetError
from edgetune.search import SimulatedRunner, config_from_yaml, load_config, run_study

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "edgetune"

from _helpers import STUDY, study_config

NAME = "bad_input"  # the study name of this file's configs (_helpers.study_yaml)


def tone(seconds: float, rate: int, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def manifest_folder(root: Path, rows: list[dict]) -> Path:
    """A NeMo-style dataset folder whose train/dev/test manifests all list ``rows``."""
    root.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    for split in ("train", "dev", "test"):
        (root / f"{split}.jsonl").write_text(text)
    return root


def good_row(root: Path, name: str, seconds: float = 0.5) -> dict:
    sf.write(root / name, tone(seconds, 16000), 16000)
    return {"audio_filepath": name, "duration": seconds, "text": "hello world"}


# ---- audio and datasets -----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_corrupt_audio_names_the_file_and_the_fix(tmp_path: Path, suffix: str) -> None:
    from edgetune.data import load_audio

    bad = tmp_path / f"broken{suffix}"
    sf.write(bad, tone(0.5, 16000), 16000)
    raw = bad.read_bytes()
    bad.write_bytes(raw[:4] + b"\x00garbage\xff" * 20)  # keep the magic, destroy the header
    with pytest.raises(DataError) as e:
        load_audio(bad)
    msg = str(e.value)
    assert str(bad) in msg and "unreadable" in msg
    assert "re-create or re-download" in msg


def test_corrupt_file_in_a_dataset_is_listed_with_its_reason(tmp_path: Path) -> None:
    from edgetune.data import load_dataset, validate_dataset

    root = tmp_path / "ds"
    root.mkdir()
    rows = [good_row(root, "ok.wav")]
    (root / "bad.flac").write_bytes(b"fLaC" + b"\x13" * 200)
    rows.append({"audio_filepath": "bad.flac", "duration": 0.5, "text": "broken file"})
    splits = load_dataset(manifest_folder(root, rows))
    with pytest.raises(DataError) as e:
        validate_dataset(splits)
    msg = str(e.value)
    assert str(root / "bad.flac") in msg and "unreadable" in msg
    assert str(root / "ok.wav") not in msg  # only the bad file is blamed
    assert "fix or remove them from the manifest" in msg


def test_other_sample_rate_and_stereo_are_resampled_and_downmixed(tmp_path: Path) -> None:
    """Handled, not refused: 44.1 kHz stereo comes back as 16 kHz mono with the same content."""
    from edgetune.data import load_audio, load_dataset, validate_dataset

    root = tmp_path / "ds"
    root.mkdir()
    left, right = tone(1.0, 44100, 440.0), tone(1.0, 44100, 440.0) * 0.5
    sf.write(root / "stereo.flac", np.stack([left, right], axis=1), 44100)
    wave = load_audio(root / "stereo.flac", 16000)
    assert wave.ndim == 1 and wave.dtype == np.float32
    assert wave.size == -(-44100 * 16000 // 44100) == 16000
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * 16000 / wave.size - 440.0) <= 2.0  # the tone survived, not aliased
    mid = wave[2000:-2000]
    assert np.isclose(np.abs(mid).max(), 0.75 * 0.5, rtol=0.03)  # the mean of both channels
    rows = [{"audio_filepath": "stereo.flac", "duration": 1.0, "text": "a tone"}]
    validate_dataset(load_dataset(manifest_folder(root, rows)))  # no error: the file is usable


def test_empty_transcript_is_listed(tmp_path: Path) -> None:
    from edgetune.data import load_dataset, validate_dataset

    root = tmp_path / "ds"
    root.mkdir()
    rows = [good_row(root, "a.wav"), {**good_row(root, "silent_text.wav"), "text": "   "}]
    with pytest.raises(DataError) as e:
        validate_dataset(load_dataset(manifest_folder(root, rows)))
    msg = str(e.value)
    assert str(root / "silent_text.wav") in msg and "no transcript" in msg
    assert "fix or remove them from the manifest" in msg


def test_missing_transcript_key_names_the_manifest_line(tmp_path: Path) -> None:
    from edgetune.data import load_dataset

    root = tmp_path / "ds"
    root.mkdir()
    row = good_row(root, "a.wav")
    del row["text"]
    manifest_folder(root, [good_row(root, "b.wav"), row])
    with pytest.raises(DataError) as e:
        load_dataset(root)
    msg = str(e.value)
    assert "train.jsonl" in msg and ":2" in msg  # the file and the line
    assert "text" in msg and "a manifest line needs" in msg


def test_missing_audio_file_names_the_file(tmp_path: Path) -> None:
    from edgetune.data import load_audio, load_dataset, validate_dataset

    with pytest.raises(DataError) as e:
        load_audio(tmp_path / "nowhere.wav")
    assert str(tmp_path / "nowhere.wav") in str(e.value)
    assert "fix the path in the manifest or restore the file" in str(e.value)

    root = tmp_path / "ds"
    root.mkdir()
    rows = [good_row(root, "a.wav"), {"audio_filepath": "gone.wav", "duration": 0.5, "text": "lost"}]
    with pytest.raises(DataError) as e:
        validate_dataset(load_dataset(manifest_folder(root, rows)))
    assert f"{root / 'gone.wav'} (id" in str(e.value) and "missing" in str(e.value)


# ---- the study config ---------------------------------------------------------------------


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "study.yaml"
    f.write_text("study_name: t\nn_trials: 3\nspace:\n  bits: [4, 8\n  chunk_ms: [160]\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert f"{f}:" in msg and "invalid YAML" in msg
    line = int(msg.split(f"{f}:", 1)[1].split(":", 1)[0])
    assert 4 <= line <= 6  # at or just after the unclosed list
    assert "Fix the syntax at that line" in msg


def test_unknown_key_lists_the_valid_ones(tmp_path: Path) -> None:
    f = tmp_path / "study.yaml"
    f.write_text("study_name: t\nn_trials: 3\nepochz: 4\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert "epochz" in msg and f"{f}:3" in msg
    assert "valid keys are" in msg and "train" in msg


@pytest.mark.parametrize(
    ("space", "key", "value", "fix"),
    [
        ("sparsity: {low: 0.0, high: 1.5}", "space.sparsity.high", "1.5", "pick a value in [0.0, 0.9]"),
        ("depth_multiplier: {low: 0.0, high: 1.0}", "space.depth_multiplier.low", "0.0", "pick a value in [0.25, 1.0]"),
        ("bits: [3, 8]", "space.bits[0]", "3", "one of 4, 8, 16, 32"),
    ],
)
def test_out_of_range_knob_names_key_value_and_range(tmp_path: Path, space: str, key: str, value: str, fix: str) -> None:
    f = tmp_path / "study.yaml"
    f.write_text(f"study_name: t\nn_trials: 3\nspace:\n  {space}\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert key in msg and f"got {value}" in msg and fix in msg and f"{f}:4" in msg


def test_unknown_target_scheme_lists_the_valid_ones() -> None:
    from edgetune.bench import parse_target

    with pytest.raises(TargetError) as e:
        parse_target("ftp://x")
    msg = str(e.value)
    assert "'ftp://x'" in msg
    assert "local, ssh, adb" in msg and "ssh://user@host" in msg


def test_unknown_target_in_a_config_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        config_from_yaml("study_name: t\nn_trials: 3\ntarget: [ftp://x]\n")
    msg = str(e.value)
    assert "target" in msg and "ftp://x" in msg and "local, ssh, adb" in msg


# ---- studies, artifacts and storage ----------------------------------------------------------


def test_tampered_artifact_is_refused_on_export(tmp_path: Path) -> None:
    from edgetune.card import export_trial

    study_dir = tmp_path / "study"
    summary = run_study(study_config(NAME), study_dir, runner=SimulatedRunner(), progress=False)
    number = summary.front[0]
    artifact = study_dir / "trials" / str(number) / "model.onnx"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    artifact.write_bytes(bytes(data))
    out = tmp_path / "export" / "phone.onnx"
    with pytest.raises(ArtifactError) as e:
        export_trial(study_dir, number, out)
    msg = str(e.value)
    assert str(artifact) in msg and "sha256 mismatch" in msg and f"trial {number}" in msg
    assert "Fix" in msg or "fix" in msg
    assert not out.exists()  # nothing half-exported


@pytest.mark.timeout(120)
def test_unreachable_storage_url_is_a_clear_study_error(tmp_path: Path) -> None:
    url = "postgresql://u@127.0.0.1:1/db"  # a closed port: refused at once, no hanging
    config = study_config(NAME, storage=url)
    with pytest.raises(StudyError) as e:
        run_study(config, tmp_path / "study", runner=SimulatedRunner(), progress=False)
    msg = str(e.value)
    assert url in msg and "cannot open study storage" in msg
    assert "Fix: check the URL, that the database server is reachable" in msg


def test_storage_url_password_is_masked_in_the_error(tmp_path: Path) -> None:
    url = "postgresql://user:hunter2@127.0.0.1:1/db"
    config = study_config(NAME, storage=url)
    with pytest.raises(StudyError) as e:
        run_study(config, tmp_path / "study", runner=SimulatedRunner(), progress=False)
    assert "hunter2" not in str(e.value) and "127.0.0.1:1/db" in str(e.value)


def test_study_dir_from_an_incompatible_config_is_refused(tmp_path: Path) -> None:
    study_dir = tmp_path / "study"
    run_study(study_config(NAME), study_dir, runner=SimulatedRunner(), progress=False)
    changed = study_config(NAME, space={**STUDY["space"], "chunk_ms": [160, 640]})
    with pytest.raises(StudyError) as e:
        run_study(changed, study_dir, runner=SimulatedRunner(), progress=False)
    msg = str(e.value)
    assert str(study_dir / "study.yaml") in msg and "space.chunk_ms" in msg
    assert "Fix: use a new --study-dir" in msg
    saved = load_config(study_dir / "study.yaml")
    assert saved.to_dict() == study_config(NAME).to_dict()  # the refused run wrote nothing


def test_study_dir_with_journal_but_no_config_is_refused(tmp_path: Path) -> None:
    study_dir = tmp_path / "study"
    run_study(study_config(NAME), study_dir, runner=SimulatedRunner(), progress=False)
    (study_dir / "study.yaml").unlink()
    with pytest.raises(StudyError) as e:
        run_study(study_config(NAME), study_dir, runner=SimulatedRunner(), progress=False)
    assert str(study_dir) in str(e.value) and "no study.yaml" in str(e.value)
    assert "Fix: use another --study-dir, or restore study.yaml" in str(e.value)


# ---- no unpickling of untrusted data -----------------------------------------------------------


def _unsafe_loads(source: str, where: str) -> list[str]:
    """``torch.load`` calls without ``weights_only=True``, ``np.load`` with ``allow_pickle=True``,
    and any ``pickle``/``joblib``/``dill`` load in ``source``."""

    def kw(call: ast.Call, name: str) -> object:
        for k in call.keywords:
            if k.arg == name:
                return k.value.value if isinstance(k.value, ast.Constant) else "<expr>"
        return None

    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
        name = node.func.attr
        line = f"{where}:{node.lineno}"
        if owner == "torch" and name == "load" and kw(node, "weights_only") is not True:
            found.append(f"{line}: torch.load without weights_only=True")
        if owner in ("np", "numpy") and name == "load" and kw(node, "allow_pickle") not in (None, False):
            found.append(f"{line}: np.load with allow_pickle")
        if owner in ("pickle", "cPickle", "joblib", "dill") and name in ("load", "loads"):
            found.append(f"{line}: {owner}.{name}")
    return found


def test_unsafe_load_checker_catches_what_it_should() -> None:
    bad = (
        "import torch, numpy as np, pickle\n"
        "torch.load(p)\n"
        "torch.load(p, weights_only=False)\n"
        "np.load(p, allow_pickle=True)\n"
        "pickle.loads(b)\n"
        "torch.load(p, weights_only=True)\n"
        "np.load(p, allow_pickle=False)\n"
        "np.load(p)\n"
    )
    assert [f.split(":")[1] for f in _unsafe_loads(bad, "x")] == ["2", "3", "4", "5"]


def test_package_never_unpickles_untrusted_data() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    found = [f for p in files for f in _unsafe_loads(p.read_text(), str(p.relative_to(REPO)))]
    assert not found, "unsafe deserialisation (pass weights_only=True / drop allow_pickle):\n" + "\n".join(found)


# ---- issue 17: config inputs checked before a study exists, and an all-failed study exits non-zero ----


@pytest.mark.parametrize(("key", "value", "expect"), [
    ("family", "conformer_heavy", "registered families are ['conformer_lite']"),
    ("dataset", "/nonexistent/ds", "neither a preset"),
    ("dataset", "{empty}", "holds neither train/dev/test .jsonl manifests"),
])
def test_family_and_dataset_are_checked_before_the_study_dir_is_made(tmp_path: Path, key: str, value: str,
                                                                     expect: str) -> None:
    empty = tmp_path / "empty_ds"
    empty.mkdir()
    config = study_config(NAME, **{key: value.format(empty=empty)})
    study_dir = tmp_path / "study"
    with pytest.raises(ConfigError) as e:
        run_study(config, study_dir, runner=SimulatedRunner(), progress=False)  # --simulate checks it too
    msg = str(e.value)
    assert msg.startswith(f"{key}:") and expect in msg and "Fix" in msg
    assert not study_dir.exists()  # the folder is not tied to the bad value


def test_search_simulate_with_an_unknown_family_exits_2_naming_the_file(tmp_path: Path, capsys, study_file) -> None:
    from edgetune.cli import main

    cfg = study_file(NAME, family="nope")
    rc = main(["search", "--config", str(cfg), "--study-dir", str(tmp_path / "s"), "--simulate", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "family: unknown model family 'nope'" in err and str(cfg) in err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(("budget", "why"), [
    ("latency_ms <= -5", "latency_ms is always > 0"),
    ("size_bytes <= 0", "size_bytes is always > 0"),
    ("wer <= -0.1", "wer is always >= 0"),
])
def test_budgets_that_can_never_be_met_are_refused(study_file, budget: str, why: str) -> None:
    f = study_file(NAME, budgets=[budget])
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert "budgets[0]" in msg and "can never be met" in msg and why in msg and "Fix" in msg and f"{f}:" in msg


def test_latency_budget_below_the_smallest_chunk_is_refused(tmp_path: Path) -> None:
    config = study_config(NAME, budgets=["latency_ms <= 100"])  # chunks 160, 320 ms
    with pytest.raises(ConfigError) as e:
        run_study(config, tmp_path / "study", runner=SimulatedRunner(), progress=False)
    msg = str(e.value)
    assert "budgets[0]" in msg and "at least 160 ms" in msg and "Fix" in msg
    ok = study_config(NAME, budgets=["latency_ms <= 400"])
    assert run_study(ok, tmp_path / "ok", runner=SimulatedRunner(), progress=False).complete == 2


def test_a_study_whose_every_trial_failed_exits_non_zero(tmp_path: Path, capsys, monkeypatch, study_file) -> None:
    import edgetune.search as search
    from edgetune.cli import main
    from edgetune.errors import TrainingError

    class Diverging(SimulatedRunner):
        def __init__(self, **kw):
            super().__init__(fail_when=lambda knobs: TrainingError("loss is NaN at step 3"), **kw)

    monkeypatch.setattr(search, "SimulatedRunner", Diverging)
    cfg = study_file(NAME, 3)
    rc = main(["search", "--config", str(cfg), "--study-dir", str(tmp_path / "s"), "--simulate", "--quiet",
               "--no-report"])
    captured = capsys.readouterr()
    assert "3/3 trials finished (0 complete, 3 failed" in captured.out
    assert rc == 1 and "every trial failed (3 of 3)" in captured.err and "loss is NaN" in captured.err
    monkeypatch.setattr(search, "SimulatedRunner", SimulatedRunner)  # a healthy study still exits 0
    rc = main(["search", "--config", str(cfg), "--study-dir", str(tmp_path / "ok"), "--simulate", "--quiet",
               "--no-report"])
    assert rc == 0


# ---- issue 17: `edgetune data check DIR` lists every problem, with file and line ------------------


def _bad_dataset(root: Path) -> dict[str, str]:
    """A dataset folder with one of each problem; returns problem name -> the manifest:line it is on."""
    root.mkdir(parents=True)
    train = [good_row(root, f"ok{i}.wav", 1.0) for i in range(4)]
    sf.write(root / "zero.wav", np.zeros(0, np.float32), 16000)
    sf.write(root / "tiny.wav", tone(0.05, 16000), 16000)
    sf.write(root / "long.wav", tone(2.2, 16000), 16000)
    sf.write(root / "quiet.wav", np.zeros(16000, np.float32), 16000)
    sf.write(root / "short_ok.wav", tone(0.25, 16000), 16000)
    train += [
        {"audio_filepath": "zero.wav", "duration": 0.0, "text": "hello"},            # line 5
        {"audio_filepath": "tiny.wav", "duration": 0.05, "text": "hello world"},     # line 6
        {"audio_filepath": "long.wav", "duration": 99.0, "text": "hello world"},     # line 7
        {"audio_filepath": "gone.wav", "duration": 1.0, "text": "lost"},             # line 8
        {"audio_filepath": "quiet.wav", "duration": 1.0, "text": "ok"},              # line 9 (warning)
        {"audio_filepath": "short_ok.wav", "duration": 0.25, "text": "ok"},          # line 10 (warning)
        {"audio_filepath": "ok0.wav", "duration": 1.0, "text": "hello world"},       # line 11 (listed twice)
    ]
    lines = [json.dumps(r) + "\n" for r in train]
    text = "".join(lines).encode() + "{\"audio_filepath\": \"caf\xe9.wav\"}\n".encode("latin-1")  # line 12
    text += b"{not json\n"                                                                    # line 13
    text += (json.dumps({"audio_filepath": "ok1.wav", "duration": 1.0}) + "\n").encode()     # line 14
    (root / "train.jsonl").write_bytes(text)
    dev = [good_row(root, f"dev{i}.wav", 1.0) for i in range(2)]
    (root / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dev))
    test = [good_row(root, "t0.wav", 1.0), {"audio_filepath": "ok2.wav", "duration": 1.0, "text": "hello world"}]
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))  # ok2 leaks from train
    t = root / "train.jsonl"
    return {"empty": f"{t}:5", "too short for CTC": f"{t}:6", "wrong duration": f"{t}:7", "missing": f"{t}:8",
            "not UTF-8": f"{t}:12", "not valid JSON": f"{t}:13", "missing key(s) text": f"{t}:14"}


def test_data_check_lists_every_problem_with_file_and_line(tmp_path: Path, capsys) -> None:
    from edgetune.cli import main

    root = tmp_path / "ds"
    expected = _bad_dataset(root)
    rc = main(["data", "check", str(root), "--json", str(tmp_path / "check.json")])
    out = capsys.readouterr().out
    assert rc == 1
    for why, where in expected.items():
        line = next((x for x in out.splitlines() if x.startswith(f"error: {where}")), None)
        assert line is not None and why in line, (why, where, out)
    assert "wrong duration: manifest says 99.000 s, file has 2.200 s" in out
    assert "the same audio is in train and test" in out and str(root / "ok2.wav") in out
    warnings = [x for x in out.splitlines() if x.startswith("warning:")]
    assert any("digital silence" in w and "quiet.wav" in w for w in warnings)
    assert any("very short clip" in w and "short_ok.wav" in w for w in warnings)
    assert any("listed 2 times in train" in w and "ok0.wav" in w for w in warnings)
    assert not any("ok3.wav" in x for x in out.splitlines() if x.startswith(("error", "warning")))
    report = json.loads((tmp_path / "check.json").read_text())
    assert len([f for f in report["findings"] if f["level"] == "error"]) == len(expected) + 1
    assert report["splits"]["test"]["utterances"] == 2 and report["splits"]["dev"]["sample_rates"] == {"16000": 2}
    assert "train" in out and " h " in out and "rates: 16000 Hz" in out  # the summary


def test_data_check_of_a_clean_folder_exits_0(tmp_path: Path, capsys) -> None:
    from edgetune.cli import main

    root = tmp_path / "ds"
    root.mkdir()
    manifest_folder(root, [good_row(root, f"a{i}.wav", 1.0) for i in range(3)])
    (root / "test.jsonl").write_text(json.dumps(good_row(root, "t.wav", 1.0)) + "\n")
    (root / "dev.jsonl").write_text(json.dumps(good_row(root, "d.wav", 1.0)) + "\n")
    rc = main(["data", "check", str(root)])
    out = capsys.readouterr().out
    assert rc == 0 and "0 error(s), 0 warning(s): ok" in out


def test_data_check_of_a_non_dataset_exits_2(tmp_path: Path, capsys) -> None:
    from edgetune.cli import main

    rc = main(["data", "check", str(tmp_path / "nowhere")])
    assert rc == 2 and "neither a preset" in capsys.readouterr().err


def test_non_utf8_manifest_names_file_and_line(tmp_path: Path) -> None:
    from edgetune.data import read_manifest

    f = tmp_path / "train.jsonl"
    f.write_bytes(b'{"audio_filepath": "a.wav", "duration": 1, "text": "ok"}\n'
                  + '{"audio_filepath": "b.wav", "duration": 1, "text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DataError) as e:
        read_manifest(f)
    msg = str(e.value)
    assert f"{f}:2" in msg and "not UTF-8" in msg and "0xe9" in msg and "iconv" in msg


def test_validation_catches_the_clips_that_used_to_be_scored(tmp_path: Path) -> None:
    from edgetune.data import load_dataset, validate_dataset

    root = tmp_path / "ds"
    _bad_dataset(root)
    (root / "train.jsonl").write_text("".join(
        line for line in (root / "train.jsonl").read_bytes().decode("latin-1").splitlines(True)[:11]))
    with pytest.raises(DataError) as e:
        validate_dataset(load_dataset(root))
    msg = str(e.value)
    for name, why in [("zero.wav", "empty"), ("tiny.wav", "too short for CTC"), ("long.wav", "wrong duration")]:
        assert f"{root / name} (id -): {why}" in msg
    assert f"[{root / 'train.jsonl'}:6]" in msg and "edgetune data check" in msg


def _folder_with_a_tiny_test_clip(root: Path) -> Path:
    root.mkdir(parents=True)
    rows = [good_row(root, f"a{i}.wav", 1.0) for i in range(3)]
    manifest_folder(root, rows)
    sf.write(root / "tiny.wav", tone(0.05, 16000), 16000)
    (root / "test.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps(
        {"audio_filepath": "tiny.wav", "duration": 0.05, "text": "hello world"}) + "\n")
    return root


def test_search_checks_the_dataset_files_before_any_trial(tmp_path: Path) -> None:
    root = _folder_with_a_tiny_test_clip(tmp_path / "ds")
    config = study_config(NAME, dataset=str(root))
    study_dir = tmp_path / "study"
    with pytest.raises(DataError) as e:
        run_study(config, study_dir, progress=False)  # the real pipeline runner: no trial may start
    assert f"{root / 'tiny.wav'} (id -): too short for CTC" in str(e.value)
    assert not study_dir.exists()


def test_candidate_checks_the_dataset_files_before_training(tmp_path: Path, capsys) -> None:
    from edgetune.cli import main

    root = _folder_with_a_tiny_test_clip(tmp_path / "ds")
    rc = main(["candidate", "--dataset", str(root), "--out", str(tmp_path / "out"), "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{root / 'tiny.wav'} (id -): too short for CTC" in err
    assert not (tmp_path / "out" / "model.onnx").exists()


# ---- issue 17: a model modified after export is refused outside a study too ----------------------


def _flip_a_weight_byte(src: Path, dst: Path) -> None:
    """Flip one byte inside the largest initializer's raw data (the protobuf still parses)."""
    import onnx

    model = onnx.load(str(src))
    init = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    data = src.read_bytes()
    at = data.find(init.raw_data) + len(init.raw_data) // 2
    assert at > len(init.raw_data) // 2
    dst.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:])
    onnx.load(str(dst))  # still a loadable ONNX file: only the digest can tell


def test_transcribe_refuses_a_model_with_flipped_bytes(tiny_model_path: Path, tmp_path: Path, capsys) -> None:
    from edgetune.cli import main

    audio = tmp_path / "a.wav"
    sf.write(audio, tone(1.0, 16000), 16000)
    assert main(["transcribe", str(tiny_model_path), str(audio)]) == 0  # the original runs
    capsys.readouterr()
    bad = tmp_path / "bad.onnx"
    _flip_a_weight_byte(tiny_model_path, bad)
    rc = main(["transcribe", str(bad), str(audio)])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""  # no transcript printed
    assert str(bad) in captured.err and "modified after export" in captured.err and "--no-verify" in captured.err
    assert main(["transcribe", "--no-verify", str(bad), str(audio)]) == 0  # the escape hatch


def test_bench_refuses_a_model_with_flipped_bytes(tiny_model_path: Path, tmp_path: Path) -> None:
    from edgetune.bench import bench_model

    bad = tmp_path / "bad.onnx"
    _flip_a_weight_byte(tiny_model_path, bad)
    with pytest.raises(ArtifactError) as e:
        bench_model(bad, runs=3, warmup=0)
    assert str(bad) in str(e.value) and "modified after export" in str(e.value)
    assert len(bench_model(bad, runs=3, warmup=0, verify=False)["samples_ms"]) == 3


def test_edited_metadata_is_caught_too(tiny_model_path: Path, tmp_path: Path) -> None:
    import onnx

    from edgetune.export._integrity import DIGEST_KEY, verify_model

    model = onnx.load(str(tiny_model_path))
    assert verify_model(tiny_model_path) == next(p.value for p in model.metadata_props if p.key == DIGEST_KEY)
    meta = next(p for p in model.metadata_props if p.key == "edgetune")
    meta.value = meta.value.replace('"chunk_ms": 160', '"chunk_ms": 320')
    onnx.save(model, str(tmp_path / "edited.onnx"))
    with pytest.raises(ArtifactError, match="modified after export"):
        verify_model(tmp_path / "edited.onnx")


def test_base_train_checks_the_dataset_files_before_training(tmp_path: Path, capsys) -> None:
    from edgetune.cli import main

    root = _folder_with_a_tiny_test_clip(tmp_path / "ds")
    cfg = tmp_path / "base.yaml"
    cfg.write_text(f"version: 1\nname: t\nfamily: conformer_lite\ndataset: {root}\nexport_chunk_ms: 320\n"
                   "train: {epochs: 1, batch_size: 4, device: cpu}\n")
    rc = main(["base", "train", "--config", str(cfg), "--out", str(tmp_path / "base"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{root / 'tiny.wav'} (id -): too short for CTC" in err, err
    assert not (tmp_path / "base" / "card.json").exists()
