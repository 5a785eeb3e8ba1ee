"""The adb transport, driven through a STAND-IN adb (tests/standins/adb): there is no phone here.

The stand-in performs push/pull/shell on this machine's file system (see its docstring), so
these tests check what edgetune sends to adb (argument lists, shell quoting, temp dir
lifecycle, error mapping) with a real runner and real ONNX Runtime behind it. They do not
prove anything about a real device's adbd.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path

import pytest

from edgetune.bench import bench_model, parse_target
from edgetune.bench.testing import make_streaming_model
from edgetune.errors import TargetError
from edgetune.testing import TransportContract

STANDIN_ADB = Path(__file__).resolve().parent / "standins" / "adb"


@pytest.fixture
def device(tmp_path, monkeypatch):
    """A stand-in device: its "home" and /data/local/tmp are folders under tmp_path."""
    home = tmp_path / "device_home"
    data_tmp = tmp_path / "device_data_local_tmp"
    home.mkdir()
    data_tmp.mkdir()
    monkeypatch.setenv("EDGETUNE_ADB", str(STANDIN_ADB))
    monkeypatch.setenv("STANDIN_ADB_HOME", str(home))
    monkeypatch.setenv("STANDIN_ADB_SERIALS", "standin-0001,standin-0002")
    monkeypatch.setenv("STANDIN_ADB_LOG", str(tmp_path / "adb.log"))
    return {"home": home, "tmp": data_tmp, "log": tmp_path / "adb.log"}


def _target(device, serial="standin-0001", **extra) -> str:
    query = {"python": sys.executable, "tmpdir": str(device["tmp"]), **extra}
    return f"adb://{serial}?{urllib.parse.urlencode(query)}"


def _calls(device) -> list[list[str]]:
    return [json.loads(line) for line in device["log"].read_text().splitlines()]


def test_bench_over_standin_adb(device, tmp_path):
    model = make_streaming_model(tmp_path / "m.onnx", width=32)
    r = bench_model(model, _target(device), runs=10, warmup=1)
    assert len(r["samples_ms"]) == 10 and r["target"].startswith("adb://standin-0001")
    calls = _calls(device)
    assert all(c[:2] == ["-s", "standin-0001"] for c in calls)
    verbs = [c[2] for c in calls]
    assert verbs[0] == "shell" and "mktemp -d" in calls[0][3]  # per-run temp dir first
    assert verbs.count("push") == 2  # model + runner, under fixed names
    assert {Path(c[4]).name for c in calls if c[2] == "push"} == {"model.onnx", "edgetune_runner.py"}
    assert calls[-1][2] == "shell" and calls[-1][3].startswith("rm -rf -- ")  # removed afterwards
    assert list(device["tmp"].iterdir()) == []


def test_hostile_names_over_adb(device, tmp_path):
    model = make_streaming_model(tmp_path / "x'; touch PWNED; $(touch PWNED2) `touch PWNED3`.onnx", width=32)
    payload = f"{sys.executable}; touch {tmp_path}/PWNED4"
    with pytest.raises(TargetError):
        bench_model(model, _target(device, python=payload), runs=3, warmup=0)
    r = bench_model(model, _target(device), runs=3, warmup=0)
    assert len(r["samples_ms"]) == 3
    assert list(tmp_path.rglob("PWNED*")) == [] and list(device["tmp"].iterdir()) == []


def test_unknown_serial_is_a_clear_error(device, tmp_path):
    model = make_streaming_model(tmp_path / "m.onnx", width=32)
    with pytest.raises(TargetError, match="adb cannot reach device 'R58M00000'"):
        bench_model(model, _target(device, serial="R58M00000"), runs=3)


def test_missing_adb_binary(device, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETUNE_ADB", str(tmp_path / "no-such-adb"))
    model = make_streaming_model(tmp_path / "m.onnx", width=32)
    with pytest.raises(TargetError, match="not found"):
        bench_model(model, _target(device), runs=3)


class TestAdbTransport(TransportContract):
    """The transport contract (round trip, hostile names, cleanup, timeouts) through the stand-in adb."""

    @pytest.fixture
    def transport(self, device):
        yield parse_target(_target(device))
        assert list(device["tmp"].iterdir()) == []


def test_adb_found_on_path(device, tmp_path, monkeypatch):
    monkeypatch.delenv("EDGETUNE_ADB")
    monkeypatch.setenv("PATH", f"{STANDIN_ADB.parent}:{__import__('os').environ['PATH']}")
    t = parse_target(_target(device))
    assert t.adb == str(STANDIN_ADB)
    model = make_streaming_model(tmp_path / "m.onnx", width=32)
    assert len(bench_model(model, _target(device), runs=3, warmup=0)["samples_ms"]) == 3


def _runner_models(device) -> list[list[str]]:
    """The --model arguments of each runner invocation, in call order."""
    import shlex

    out = []
    for c in _calls(device):
        if c[2] == "shell" and "edgetune_runner.py" in c[3]:
            words = shlex.split(c[3].split(" && ", 1)[1])
            out.append([words[i + 1] for i, w in enumerate(words) if w == "--model"])
    return out


def test_bench_models_block_interleaving(device, tmp_path):
    from edgetune.bench import bench_models

    a = make_streaming_model(tmp_path / "a.onnx", width=32)
    b = make_streaming_model(tmp_path / "b.onnx", width=48)
    ra, rb = bench_models([a, b], _target(device), rounds=3, runs=30, warmup=1, block=10)
    assert (ra["model"], rb["model"]) == ("a.onnx", "b.onnx")
    assert len(ra["samples_ms"]) == 90 and ra["runs"] == 90 and len(ra["round_p50_ms"]) == 3
    assert ra["interleave"]["job"] == rb["interleave"]["job"] and ra["interleave"]["mode"] == "block"
    assert ra["size_bytes"] < rb["size_bytes"] and ra["peak_rss_bytes"] > 0
    # three rounds holding both models, then one short solo run each for peak RSS
    both = ["m0/model.onnx", "m1/model.onnx"]
    assert _runner_models(device) == [both, both, both, both[:1], both[1:]]
    assert list(device["tmp"].iterdir()) == []


def test_bench_models_process_interleaving(device, tmp_path):
    from edgetune.bench import bench_models

    a = make_streaming_model(tmp_path / "a.onnx", width=32)
    b = make_streaming_model(tmp_path / "b.onnx", width=48)
    ra, rb = bench_models([a, b], _target(device), rounds=2, runs=4, warmup=1, interleave="process")
    assert len(rb["samples_ms"]) == 8 and rb["interleave"]["mode"] == "process"
    assert _runner_models(device) == [["m0/model.onnx"], ["m1/model.onnx"]] * 2
