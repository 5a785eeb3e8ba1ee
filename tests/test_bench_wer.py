"""WER on the device's own kernels (``edgetune bench --wer``): the model and precomputed Kaldi fbank
features go through the real transports, the runner decodes them there, and the transcripts come
back to be compared with the host's on the same file and features.

Targets: ``local``, a real loopback sshd (started by ``test_bench_ssh.start_sshd``) and the
STAND-IN adb (``tests/standins/adb``: no phone here, it runs on this machine's file system). Every
target here runs the same ONNX Runtime build as the host, so the transcripts must be identical.
Models are untrained exports (random, untied logits: the transcripts are non-empty), fp32 and int8.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from edgetune.bench import LocalTransport, device_wer, write_features
from edgetune._runner import main as runner_main
from edgetune.cli import main
from edgetune.errors import ArtifactError, DataError

STANDIN_ADB = Path(__file__).resolve().parent / "standins" / "adb"
LIMIT = 4


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory) -> Path:
    from edgetune.knobs import Knobs
    from edgetune.pipeline import export_untrained

    path = tmp_path_factory.mktemp("int8") / "int8.onnx"
    export_untrained(Knobs(bits=8, chunk_ms=160), path, model_config={"d_model": 32, "n_layers": 1, "n_heads": 2,
                                                                      "conv_kernel": 3}, parity_utterances=4, seed=1)
    return path


@pytest.fixture(scope="module")
def features(tiny_model_path, tmp_path_factory) -> Path:
    """Features of the first LIMIT test utterances of the tiny corpus, written once."""
    path = tmp_path_factory.mktemp("features") / "features.npz"
    write_features(tiny_model_path, "tiny", path, limit=LIMIT)
    return path


def _assert_same_on_device(r: dict, n: int = LIMIT) -> None:
    rows = r["transcripts"]
    assert r["utterances"] == len(rows) == n
    assert r["transcripts_differ"] == 0 and r["differ_examples"] == []
    assert [t["device"] for t in rows] == [t["host"] for t in rows]
    assert any(t["host"].strip() for t in rows)  # non-empty transcripts: the comparison means something
    assert r["wer"] == r["wer_host"] and r["wer_delta"] == 0.0 and r["wer"] > 0
    assert all(t["ref"] for t in rows)
    assert r["fingerprint"]["ort_version"] and len(r["model_sha256"]) == 64


@pytest.mark.parametrize("which", ["fp32", "int8"])
def test_local_target_decodes_like_the_host(which, tiny_model_path, int8_model):
    model = tiny_model_path if which == "fp32" else int8_model
    r = device_wer(model, "tiny", "local", limit=LIMIT)
    _assert_same_on_device(r)
    assert r["target"] == "local"


@pytest.mark.ssh
def test_ssh_target_decodes_like_the_host(tmp_path_factory, tiny_model_path, features):
    from test_bench_ssh import start_sshd

    server = start_sshd(tmp_path_factory.mktemp("sshd_wer"))
    try:
        r = device_wer(tiny_model_path, features, server.target())
        _assert_same_on_device(r)
        assert r["target"].startswith("ssh://") and r["features_digest"]
        assert list(server.remote_tmp.iterdir()) == []  # the per-run directory was removed
        # the CI path: `edgetune bench --target ssh://... --wer` then `edgetune check` gates on that WER
        out = tmp_path_factory.mktemp("ssh_cli") / "bench.json"
        assert main(["bench", str(tiny_model_path), "--target", server.target(), "--runs", "5", "--warmup", "1",
                     "--wer", "tiny", "--limit", "2", "--json", str(out)]) == 0
        data = json.loads(out.read_text())
        assert data["device_wer"]["target"].startswith("ssh://") and data["wer_delta"] == 0.0
        budgets = out.with_name("budgets.yaml")
        budgets.write_text("'*': {wer_delta: 0.005}\n")
        assert main(["check", "--results", str(out), "--budgets", str(budgets)]) == 0
        budgets.write_text("'*': {wer: 0.05}\n")  # an untrained model: far above 5 %
        assert main(["check", "--results", str(out), "--budgets", str(budgets)]) == 1
    finally:
        server.stop()


def test_standin_adb_target_decodes_like_the_host(tmp_path, monkeypatch, tiny_model_path, features):
    home, data_tmp, log = tmp_path / "home", tmp_path / "data_local_tmp", tmp_path / "adb.log"
    home.mkdir()
    data_tmp.mkdir()
    monkeypatch.setenv("EDGETUNE_ADB", str(STANDIN_ADB))
    monkeypatch.setenv("STANDIN_ADB_HOME", str(home))
    monkeypatch.setenv("STANDIN_ADB_SERIALS", "standin-0001")
    monkeypatch.setenv("STANDIN_ADB_LOG", str(log))
    target = f"adb://standin-0001?{urllib.parse.urlencode({'python': sys.executable, 'tmpdir': str(data_tmp)})}"
    r = device_wer(tiny_model_path, features, target)
    _assert_same_on_device(r)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    pushed = {Path(c[4]).name for c in calls if c[2] == "push"}
    assert pushed == {"model.onnx", "features.npz", "edgetune_runner.py"}  # no audio goes to the device
    assert any(c[2] == "shell" and "--decode features.npz" in c[3] for c in calls)
    assert list(data_tmp.iterdir()) == []


def test_features_file_is_reusable_and_matches_a_fresh_one(tiny_model_path, features, tmp_path):
    again = device_wer(tiny_model_path, "tiny", "local", limit=LIMIT, features_out=tmp_path / "f.npz")
    reused = device_wer(tiny_model_path, features, "local")
    assert [t["device"] for t in again["transcripts"]] == [t["device"] for t in reused["transcripts"]]
    assert again["features_digest"] == reused["features_digest"]  # same content, same digest
    with pytest.raises(DataError, match="--limit applies"):
        device_wer(tiny_model_path, features, "local", limit=2)


def _tampered_copy(features: Path, out: Path) -> Path:
    """The same manifest (digest included) with one frame changed: what an edit or a bad copy does."""
    with np.load(features, allow_pickle=False) as z:
        manifest, feats = z["manifest"], z["feats"].copy()
    feats[3, 7] += 1.0
    np.savez_compressed(out, manifest=manifest, feats=feats)
    return out


def test_tampered_features_file_is_refused(tiny_model_path, features, tmp_path, capsys):
    bad = _tampered_copy(features, tmp_path / "bad.npz")
    with pytest.raises(ArtifactError, match="was modified after it was written"):
        device_wer(tiny_model_path, bad, "local")
    # the standalone runner refuses it too, as a JSON error line with exit status 1
    rc = runner_main(["--model", str(tiny_model_path), "--decode", str(bad)])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 1 and last["type"] == "error" and last["error"] == "IntegrityError"
    assert "modified after it was written" in last["message"]


def test_tampered_model_is_refused(tiny_model_path, features, tmp_path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(tiny_model_path))
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    arr = numpy_helper.to_array(init).copy()
    arr.flat[0] += 0.5
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(ArtifactError, match="modified after export"):
        device_wer(bad, features, "local")


class TamperingTransport(LocalTransport):
    """A local device whose copy of one pushed file gets changed: a bad transfer or a meddling device."""

    def __init__(self, victim: str):
        super().__init__("local")
        self.victim = victim

    def push(self, local_path, remote_path):
        super().push(local_path, remote_path)
        if Path(remote_path).name == self.victim:
            with open(remote_path, "r+b") as f:
                f.seek(os.path.getsize(remote_path) // 2)
                byte = f.read(1)
                f.seek(-1, os.SEEK_CUR)
                f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("victim", ["model.onnx", "features.npz"])
def test_a_file_changed_on_the_device_is_refused(tiny_model_path, features, victim):
    what = "model" if victim == "model.onnx" else "features"
    with pytest.raises(ArtifactError, match=f"the {what} file on the device .* is not the one the host sent"):
        device_wer(tiny_model_path, features, TamperingTransport(victim))


def test_features_for_other_feature_settings_are_refused(features, tmp_path):
    from edgetune.bench.testing import make_streaming_model

    other = make_streaming_model(tmp_path / "mels40.onnx", width=16, n_mels=40)
    with pytest.raises(ArtifactError, match="the model hears"):
        device_wer(other, features, "local")


def test_audio_folder_with_and_without_references(tiny_model_path, tmp_path):
    from edgetune.data import load_dataset

    folder = tmp_path / "audio"
    folder.mkdir()
    test = load_dataset("tiny", progress=False).test[:2]
    for i, u in enumerate(test):
        shutil.copy(u.audio_filepath, folder / f"u{i}.wav")
    r = device_wer(tiny_model_path, folder, "local")
    assert r["utterances"] == 2 and r["transcripts_differ"] == 0 and r["wer"] is None and "no reference" in r["note"]
    for i, u in enumerate(test):
        (folder / f"u{i}.txt").write_text(u.text + "\n")
    r = device_wer(tiny_model_path, folder, "local")
    assert r["wer"] is not None and r["wer"] == r["wer_host"] and [t["ref"] for t in r["transcripts"]] == \
        [u.text for u in test]
    with pytest.raises(DataError, match="neither a dataset preset"):
        device_wer(tiny_model_path, tmp_path / "nowhere", "local")


def test_cli_bench_wer_then_check_gates_on_it(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", str(tiny_model_path), "--target", "local", "--runs", "5", "--warmup", "1",
               "--wer", "tiny", "--limit", "3", "--wer-features", str(tmp_path / "f.npz"), "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "WER" in text and "0 transcript(s) differ" in text
    data = json.loads(out.read_text())
    assert data["wer"] == data["wer_host"] == data["device_wer"]["wer"] and data["wer_delta"] == 0.0
    assert data["latency_ms"]["p50"] > 0 and (tmp_path / "f.npz").is_file()

    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("local: {wer_delta: 0.005, p99_ms: 10000}\n")
    junit = tmp_path / "report.xml"
    assert main(["check", "--results", str(out), "--budgets", str(budgets), "--junit", str(junit)]) == 0
    text = capsys.readouterr().out
    assert "PASS  wer_delta <= 0.005" in text and "0 of 3 transcripts differ" in text
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).iter("property")}
    assert props["device_wer_transcripts_differ"] == "0" and props["device_wer_utterances"] == "3"

    # an untrained model's WER is far above 5 %: the budget fails (exit 1), with a JUnit failure
    budgets.write_text("local: {wer: 0.05, wer_delta: 0.005}\n")
    assert main(["check", "--results", str(out), "--budgets", str(budgets), "--junit", str(junit)]) == 1
    failures = [c for c in ET.parse(junit).iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["wer <= 0.05"]
    assert "on the host" in failures[0].find("failure").get("message")


def test_check_fails_when_the_device_is_worse_than_the_host(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", str(tiny_model_path), "--runs", "5", "--warmup", "1", "--wer", "tiny", "--limit", "2",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    data["wer"] += 0.02  # what a kernel that decodes worse on this CPU looks like in the results
    data["wer_delta"] = data["device_wer"]["wer_delta"] = 0.02
    out.write_text(json.dumps(data))
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("'*': {wer_delta: 0.005}\n")
    capsys.readouterr()
    assert main(["check", "--results", str(out), "--budgets", str(budgets)]) == 1
    assert "FAIL  wer_delta <= 0.005" in capsys.readouterr().out


def test_bench_json_without_wer_skips_wer_budgets(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", str(tiny_model_path), "--runs", "5", "--warmup", "1", "--json", str(out)]) == 0
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("local: {wer_delta: 0.005}\n")
    capsys.readouterr()
    assert main(["check", "--results", str(out), "--budgets", str(budgets)]) == 0
    assert "bench without --wer DATASET" in capsys.readouterr().out
