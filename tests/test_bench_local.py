"""bench_model on the local target, the runner script, target parsing and the bench CLI.

Models are small real streaming ONNX files (edgetune.bench.testing) run by real ONNX Runtime
sessions in a real runner subprocess.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgetune.bench import bench_model, parse_target
from edgetune.bench.testing import make_streaming_model
from edgetune.bench import LocalTransport
from edgetune.errors import ArtifactError, ConfigError, TargetError
from edgetune.testing import TransportContract

RUNNER = Path(__file__).resolve().parents[1] / "edgetune" / "_runner.py"
FP_KEYS = {"cpu_model", "cores", "governor", "temperature_c", "os", "machine", "ort_version", "python", "numpy"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_streaming_model(tmp_path_factory.mktemp("models") / "toy.onnx", width=64, depth=2)


def test_bench_local_result_fields(toy):
    r = bench_model(toy, "local", runs=30, warmup=5)
    assert len(r["samples_ms"]) == 30 and all(s > 0 for s in r["samples_ms"])
    lat = r["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert r["size_bytes"] == toy.stat().st_size
    assert r["gzip_bytes"] == pytest.approx(len(gzip.compress(toy.read_bytes(), 9)), abs=64)
    # chunk 320 ms + lookahead 0 + half of (25 ms window - 10 ms shift): a centred Kaldi frame = 7.5 ms
    assert r["algorithmic_latency_ms"] == pytest.approx(327.5)
    assert r["rtf"] == pytest.approx(lat["mean"] / 320.0)
    assert r["peak_rss_bytes"] >= r["baseline_rss_bytes"] > 0
    assert FP_KEYS <= set(r["fingerprint"])
    assert r["fingerprint"]["ort_version"] and r["fingerprint"]["cores"] == os.cpu_count()
    assert (r["target"], r["runs"], r["warmup"], r["threads"]) == ("local", 30, 5, 1)
    json.dumps(r)  # JSON-serialisable


def test_bench_pins_cores(toy):
    r = bench_model(toy, "local", runs=5, warmup=1, cores="0")
    assert r["fingerprint"]["affinity"] == [0]
    assert r["cores"] == "0"


def test_bench_removes_its_temp_dir_also_on_failure(toy, tmp_path, monkeypatch):
    made = []
    original = LocalTransport.make_tempdir

    def recording(self):
        made.append(original(self))
        return made[-1]

    monkeypatch.setattr(LocalTransport, "make_tempdir", recording)
    bench_model(toy, "local", runs=3, warmup=0)
    with pytest.raises(TargetError, match="runner failed"):
        bench_model(toy, "local", runs=10**8, warmup=0, timeout_s=3)  # the runner stops itself at 1 s
    assert len(made) == 2 and not any(os.path.exists(p) for p in made)


def test_missing_and_foreign_models_name_the_file(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ArtifactError, match="nope.onnx"):
        bench_model(missing)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx at all")
    with pytest.raises(ArtifactError, match="junk.onnx"):
        bench_model(junk)
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "plain",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    plain = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(g), str(plain))
    with pytest.raises(ArtifactError, match="plain.onnx.*not an edgetune model"):
        bench_model(plain)


@pytest.mark.parametrize("kwargs", [{"runs": 1}, {"threads": 0}, {"warmup": -1}, {"timeout_s": 0},
                                    {"cores": "0;rm"}, {"runner": "tflite"}])
def test_bad_settings_raise_config_error(toy, kwargs):
    with pytest.raises(ConfigError):
        bench_model(toy, **kwargs)


def test_target_parsing():
    assert parse_target("local").python == sys.executable
    t = parse_target("ssh://alice@board.lan:2222?identity=/k&known_hosts=/kh&python=/opt/py&option=ProxyJump=b")
    assert (t.user, t.host, t.port, t.python) == ("alice", "board.lan", 2222, "/opt/py")
    assert "StrictHostKeyChecking=yes" in t.ssh_argv and "BatchMode=yes" in t.ssh_argv
    assert ["-i", "/k"] == t.ssh_argv[t.ssh_argv.index("-i"):t.ssh_argv.index("-i") + 2]
    assert "ProxyJump=b" in t.ssh_argv and "UserKnownHostsFile=/kh" in t.ssh_argv
    assert parse_target("adb://R58M123?tmpdir=/data/local/tmp/x").serial == "R58M123"
    with pytest.raises(TargetError, match="local, ssh, adb"):
        parse_target("telnet://host")
    with pytest.raises(TargetError, match="local, ssh, adb"):
        parse_target("myboard")
    with pytest.raises(TargetError, match="'idenity'.*identity"):
        parse_target("ssh://u@h?idenity=/k")
    with pytest.raises(TargetError, match="never turns host-key checking off"):
        parse_target("ssh://u@h?host_key_checking=no")


class TestLocalTransport(TransportContract):
    """The transport contract on this machine."""

    @pytest.fixture
    def transport(self):
        return parse_target("local")


class DirTransport(LocalTransport):
    """A transport added from outside edgetune: local, with its per-run directories under one folder."""

    def __init__(self, target: str, root: str):
        super().__init__(target)
        self.root = root

    def make_tempdir(self):
        import tempfile

        return tempfile.mkdtemp(prefix="edgetune.", dir=self.root)


@pytest.fixture
def dir_scheme(tmp_path):
    """``dir:///PATH`` registered the way a new transport is: one class plus register_transport."""
    from edgetune.bench import register_transport, transports
    from edgetune.bench._transport import _TRANSPORTS

    root = tmp_path / "device"
    root.mkdir()
    register_transport("dir", ("python",), lambda target, url, options: DirTransport(target, url.path))
    assert transports() == ["local", "ssh", "adb", "dir"]
    yield root
    _TRANSPORTS.pop("dir")


class TestRegisteredTransport(TransportContract):
    """A newly registered transport passes the same contract, and the harness benches through it."""

    @pytest.fixture
    def transport(self, dir_scheme):
        t = parse_target(f"dir://{dir_scheme}")
        assert isinstance(t, DirTransport) and t.root == str(dir_scheme)
        yield t
        assert list(dir_scheme.iterdir()) == []  # every directory it made is gone

    def test_bench_model_runs_through_it(self, dir_scheme, toy):
        r = bench_model(toy, f"dir://{dir_scheme}", runs=3, warmup=0)
        assert len(r["samples_ms"]) == 3 and r["target"] == f"dir://{dir_scheme}"
        assert list(dir_scheme.iterdir()) == []
        with pytest.raises(TargetError, match=r"'tmpdir'.*valid options: python"):
            parse_target(f"dir://{dir_scheme}?tmpdir=/x")


def test_unknown_scheme_lists_the_registered_ones(dir_scheme):
    with pytest.raises(TargetError, match="one of local, ssh, adb, dir "):
        parse_target("telnet://host")


def test_runner_script_prints_json_lines(toy):
    out = subprocess.run([sys.executable, str(RUNNER), "--model", str(toy), "--runs", "4", "--warmup", "1"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == ["start", "fingerprint", "loaded", "warmup_done", "result"]
    assert len(events[-1]["samples_ms"]) == 4


def test_runner_script_reports_errors_as_json(tmp_path):
    proc = subprocess.run([sys.executable, str(RUNNER), "--model", str(tmp_path / "x.onnx")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["type"] == "error" and "x.onnx" in last["message"]


def test_runner_max_seconds_stops_a_long_run(toy):
    proc = subprocess.run([sys.executable, str(RUNNER), "--model", str(toy), "--runs", "100000000",
                           "--max-seconds", "1"], capture_output=True, text=True, timeout=120)
    last = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 1 and last["error"] == "TimeoutError"


def test_bench_cli_writes_json_and_exit_codes(toy, tmp_path):
    from edgetune.cli import main

    out = tmp_path / "res" / "out.json"
    assert main(["bench", str(toy), "--target", "local", "--runs", "5", "--warmup", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert len(data["samples_ms"]) == 5 and data["target"] == "local" and "fingerprint" in data
    assert main(["bench", str(tmp_path / "missing.onnx")]) == 2
    assert main(["bench", str(toy), "--target", "ftp://x"]) == 2
