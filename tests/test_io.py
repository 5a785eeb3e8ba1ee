"""The one home of shared I/O (edgetune._io): the atomic writer and the JSON-safe rule for NaN."""

from __future__ import annotations

import enum
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from edgetune._io import atomic_copy, atomic_write, atomic_write_bytes, atomic_write_text, json_safe, replace_dir


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new ünïcode\n")
    assert target.read_bytes() == "new ünïcode\n".encode()
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")

    def half(tmp: Path) -> None:
        tmp.write_bytes(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_file_mode_is_that_of_a_plain_open(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic", "x")
    assert (tmp_path / "atomic").stat().st_mode == plain.stat().st_mode


def test_suffix_reaches_writers_that_read_it(tmp_path: Path) -> None:
    target = tmp_path / "f.npz"
    atomic_write(target, lambda tmp: np.savez(tmp, a=np.arange(3)), suffix=".tmp.npz")
    with np.load(target) as z:
        assert z["a"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]


def test_copy_and_replace_dir(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(1000))
    atomic_copy(src, tmp_path / "out" / "dst.bin")
    assert (tmp_path / "out" / "dst.bin").read_bytes() == src.read_bytes()
    final, staged = tmp_path / "final", tmp_path / ".final.tmp"
    final.mkdir()
    (final / "old").write_text("1")
    staged.mkdir()
    (staged / "new").write_text("2")
    replace_dir(staged, final)
    assert [p.name for p in final.iterdir()] == ["new"] and not staged.exists()
    assert not (tmp_path / ".final.old").exists()


class Colour(enum.Enum):
    RED = "red"


def test_json_safe_converts_to_plain_json_data() -> None:
    value = {"a": np.float32(0.5), "b": np.arange(2), "c": (1, 2), "d": Colour.RED, "e": Path("x/y"), 3: "int key"}
    assert json_safe(value, non_finite="keep") == {"a": 0.5, "b": [0, 1], "c": [1, 2], "d": "red", "e": "x/y",
                                                   "3": "int key"}


def test_json_safe_nan_rule_is_explicit() -> None:
    value = {"wer": float("nan"), "deep": [np.float64("inf"), {"x": -math.inf}], "ok": 1.5}
    kept = json_safe(value, non_finite="keep")
    assert math.isnan(kept["wer"]) and kept["deep"][0] == math.inf and kept["deep"][1]["x"] == -math.inf
    nulled = json_safe(value, non_finite="null")
    assert nulled == {"wer": None, "deep": [None, {"x": None}], "ok": 1.5}
    json.dumps(nulled, allow_nan=False)  # strict JSON
    with pytest.raises(ValueError, match="non_finite must be 'keep' or 'null'"):
        json_safe(value, non_finite="drop")  # type: ignore[arg-type]
