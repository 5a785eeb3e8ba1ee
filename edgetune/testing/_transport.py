"""The contract every benchmark transport keeps, as a pytest suite to subclass per transport.

Like optuna's ``testing/pytest_samplers.py``: a test module subclasses :class:`TransportContract`
and provides a ``transport`` fixture (a fresh :class:`edgetune.bench.Transport`); every test below
then runs against it. Each check goes through the transport itself (``test -e`` on the device),
so it holds for a remote device as well as for this machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgetune.bench._transport import Transport
from edgetune.errors import TargetError

#: a name a shell would run as commands if it were ever unquoted
HOSTILE = "a b'; touch PWNED; $(touch PWNED2) `touch PWNED3` \"q\" -x"


def _exists(transport: Transport, path: str) -> bool:
    return transport.run(["test", "-e", path], 30, what="test -e").returncode == 0


class TransportContract:
    """Round trip, hostile names, cleanup and timeouts; subclass it and define a ``transport`` fixture."""

    @pytest.fixture
    def transport(self) -> Transport:  # pragma: no cover - every subclass defines its own
        raise NotImplementedError("a TransportContract subclass defines a `transport` fixture")

    def test_push_pull_round_trip(self, transport: Transport, tmp_path: Path) -> None:
        src = tmp_path / "odd: name -x.bin"
        src.write_bytes(os.urandom(1000) + b"\x00\x01edgetune")
        back = tmp_path / "back.bin"
        with transport.session() as remote:
            transport.push(str(src), f"{remote}/blob")
            transport.pull(f"{remote}/blob", str(back))
            listing = transport.run(["ls", "-1"], 30, cwd=remote)
        assert back.read_bytes() == src.read_bytes()
        assert listing.returncode == 0 and listing.stdout.split() == ["blob"]

    def test_session_directory_is_fresh_and_removed(self, transport: Transport) -> None:
        with transport.session() as a, transport.session() as b:
            assert a != b and _exists(transport, a) and _exists(transport, b)
            assert transport.run(["ls", "-A"], 30, cwd=a).stdout.split() == []
        assert not _exists(transport, a) and not _exists(transport, b)

    def test_session_directory_is_removed_on_failure(self, transport: Transport) -> None:
        made = []
        with pytest.raises(KeyError, match="inside the session"):
            with transport.session() as remote:
                made.append(remote)
                raise KeyError("inside the session")
        assert made and not _exists(transport, made[0])

    def test_hostile_names_are_data(self, transport: Transport, tmp_path: Path, monkeypatch) -> None:
        src = tmp_path / HOSTILE
        src.write_bytes(b"payload")
        monkeypatch.chdir(tmp_path)
        with transport.session() as remote:
            transport.push(str(src), f"{remote}/{HOSTILE}")
            echo = transport.run(["echo", HOSTILE], 30, cwd=remote)
            listing = transport.run(["ls", "-1", "--", HOSTILE], 30, cwd=remote)
            pwned = transport.run(["sh", "-c", "ls PWNED* 2>/dev/null | wc -l"], 30, cwd=remote)
        assert echo.stdout.rstrip("\n") == HOSTILE  # one argument, unchanged
        assert listing.returncode == 0 and listing.stdout.rstrip("\n") == HOSTILE
        assert pwned.stdout.strip() == "0" and list(tmp_path.rglob("PWNED*")) == []

    def test_exit_status_and_stderr_come_back(self, transport: Transport) -> None:
        res = transport.run(["sh", "-c", "echo out; echo err >&2; exit 3"], 30)
        assert (res.returncode, res.stdout.strip(), res.stderr.strip()) == (3, "out", "err")

    def test_a_run_past_its_timeout_is_stopped(self, transport: Transport) -> None:
        with pytest.raises(TargetError, match="timed out after 1 s"):
            transport.run(["sleep", "20"], 1)


__all__ = ["HOSTILE", "TransportContract"]
