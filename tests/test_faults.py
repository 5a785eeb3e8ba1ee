"""Infrastructure faults on real file systems: a full disk and a read-only study directory.

Full disk: a real tmpfs of a few KB mounted over ``<study dir>/trials`` (or over the whole study
directory) and filled up, so writes fail with the kernel's own ``ENOSPC``. Read-only: a tmpfs
remounted ``ro`` (root ignores chmod, so a read-only mount is the honest test as root). Both need
``mount``, i.e. root or CAP_SYS_ADMIN; without it the tests skip with the reason (unless
$EDGETUNE_REQUIRE_SERVICES is set).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgetune.errors import StudyError
from edgetune.search import SimulatedRunner, run_study

from _helpers import study_config

NAME = "faults"  # the study name of this file's configs (_helpers.study_yaml)


def _mount(argv: list[str]) -> None:
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        reason = f"cannot mount a tmpfs here ({' '.join(argv)}: {res.stderr.strip()}); needs root or CAP_SYS_ADMIN"
        if os.environ.get("EDGETUNE_REQUIRE_SERVICES"):
            pytest.fail(reason)
        pytest.skip(reason)


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64k"):
    """A real tmpfs of ``size`` at ``path`` (created if missing), unmounted on exit."""
    path.mkdir(parents=True, exist_ok=True)
    _mount(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> None:
    """Write into ``path`` until the file system says ENOSPC."""
    try:
        with open(path / "filler", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC


def remount_readonly(path: Path) -> None:
    _mount(["mount", "-o", "remount,ro", str(path)])


# ---- a full disk is the machine's fault: the trial is retried, not failed ---------------------


def test_full_disk_keeps_the_trial_for_retry_and_resume_finishes_it(tmp_path: Path) -> None:
    study_dir = tmp_path / "study"
    config = study_config(NAME, 3)
    with tmpfs(study_dir / "trials") as trials:
        fill(trials)
        with pytest.raises(StudyError) as e:
            run_study(config, study_dir, runner=SimulatedRunner(), progress=False)
    msg = str(e.value)
    assert "No space left on device" in msg and "free disk space" in msg
    assert "retried when the study resumes" in msg and "run the same command again" in msg
    # the space is back (the full tmpfs is gone): the same command finishes the study
    summary = run_study(config, study_dir, runner=SimulatedRunner(), progress=False)
    assert (summary.complete, summary.failed, summary.finished) == (3, 0, 3)
    import optuna

    study = optuna.load_study(study_name="faults",
                              storage=optuna.storages.JournalStorage(
                                  optuna.storages.journal.JournalFileBackend(str(study_dir / "journal.log"))))
    first = study.trials[0]
    assert first.state.name == "FAIL" and "fail_reason" not in first.user_attrs
    assert "No space left on device" in first.user_attrs["infrastructure_error"]
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == 0]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].params == first.params


def test_infrastructure_errors_are_told_apart_from_candidate_failures() -> None:
    from edgetune.errors import ParityError, TrainingError
    from edgetune.search._trials import infrastructure_error

    disk = OSError(errno.ENOSPC, "No space left on device", "/x/model.onnx")
    assert infrastructure_error(disk) is disk
    assert infrastructure_error(OSError(errno.EIO, "Input/output error")) is not None
    wrapped = TrainingError("could not save the checkpoint")
    wrapped.__cause__ = disk
    assert infrastructure_error(wrapped) is disk
    torch_style = RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos; "
                               "PytorchStreamWriter failed writing file: No space left on device")
    assert infrastructure_error(torch_style) is torch_style
    assert infrastructure_error(ParityError("identical fraction 0.5 < 0.99")) is None
    assert infrastructure_error(TrainingError("loss is NaN at step 3")) is None
    assert infrastructure_error(MemoryError()) is None  # a candidate too big for the machine
    assert infrastructure_error(OSError(errno.ENOENT, "No such file or directory")) is None


# ---- a read-only finished study can still be reported and exported --------------------------


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    from edgetune.cli import main

    rc = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def test_read_only_study_is_reported_and_exported(tmp_path: Path, capsys, study_file) -> None:
    study_dir = tmp_path / "study"
    config_file = study_file(NAME, 3)
    with tmpfs(study_dir, size="16m"):
        summary = run_study(study_config(NAME, 3), study_dir, runner=SimulatedRunner(), progress=False)
        before = sorted(p.name for p in study_dir.iterdir())
        remount_readonly(study_dir)
        with pytest.raises(OSError) as e:  # really read-only, for root too
            (study_dir / "probe").write_text("x")
        assert e.value.errno == errno.EROFS

        rc, err = _cli(["report", "--study-dir", str(study_dir), "--out", str(tmp_path / "rep"), "--static"], capsys)
        assert rc == 0, err
        assert (tmp_path / "rep" / "pareto.md").is_file()
        n = summary.front[0]
        rc, err = _cli(["export", "--study-dir", str(study_dir), "--trial", str(n),
                        "--out", str(tmp_path / "exp" / "m.onnx")], capsys)
        assert rc == 0, err
        assert (tmp_path / "exp" / "m.onnx").read_bytes() == (study_dir / "trials" / str(n) / "model.onnx").read_bytes()

        # writing into the read-only study: a clear error naming the folder and the fix, no traceback
        rc, err = _cli(["report", "--study-dir", str(study_dir), "--static"], capsys)
        assert rc == 2 and "Read-only file system" in err and str(study_dir) in err and "Fix:" in err
        rc, err = _cli(["search", "--config", str(config_file), "--study-dir", str(study_dir), "--simulate",
                        "--n-trials", "4", "--quiet", "--no-report"], capsys)
        assert rc == 2 and "Read-only file system" in err and str(study_dir) in err and "Fix:" in err
        assert sorted(p.name for p in study_dir.iterdir()) == before  # no lock file was left behind


def test_unwritable_export_out_is_a_clear_error(tmp_path: Path, capsys) -> None:
    study_dir = tmp_path / "study"
    summary = run_study(study_config(NAME), study_dir, runner=SimulatedRunner(), progress=False)
    with tmpfs(tmp_path / "ro", size="1m") as ro:
        remount_readonly(ro)
        out = ro / "m.onnx"
        rc, err = _cli(["export", "--study-dir", str(study_dir), "--trial", str(summary.front[0]),
                        "--out", str(out)], capsys)
        assert rc == 2 and str(ro) in err and "Read-only file system" in err and "writable" in err
        assert not out.exists()


def test_unwritable_candidate_out_fails_before_any_work(tmp_path: Path, capsys) -> None:
    with tmpfs(tmp_path / "ro", size="1m") as ro:
        remount_readonly(ro)
        rc, err = _cli(["candidate", "--preset", "tiny", "--epochs", "1", "--out", str(ro / "cand"), "--quiet"], capsys)
        assert rc == 2 and str(ro / "cand") in err and "Read-only file system" in err and "writable" in err


def test_out_that_is_a_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc, err = _cli(["candidate", "--preset", "tiny", "--epochs", "1", "--out", str(blocker / "cand"), "--quiet"],
                   capsys)
    assert rc == 2 and str(blocker) in err and "Fix: check the path" in err


def test_full_disk_for_a_cli_command_is_a_clear_error(tmp_path: Path, capsys) -> None:
    study_dir = tmp_path / "study"
    summary = run_study(study_config(NAME), study_dir, runner=SimulatedRunner(), progress=False)
    with tmpfs(tmp_path / "full", size="64k") as full:
        fill(full)
        rc, err = _cli(["export", "--study-dir", str(study_dir), "--trial", str(summary.front[0]),
                        "--out", str(full / "m.onnx")], capsys)
    assert rc == 2 and "No space left on device" in err and "free disk space" in err and str(full) in err


# ---- a lost database connection (real PostgreSQL, stopped mid-trial) ----------------------------

PG_WORKER = """
import subprocess, sys
from edgetune.search import SimulatedRunner, config_from_yaml, run_study
from edgetune.errors import StudyError

text, study_dir, stop = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3:]
def fail_when(knobs):  # the database goes away while the trial trains
    if stop:
        subprocess.run(stop, check=True, capture_output=True)
    return None
try:
    s = run_study(config_from_yaml(text), study_dir, runner=SimulatedRunner(fail_when=fail_when), progress=False)
except StudyError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
print(s.complete, s.failed, s.finished)
"""


@pytest.fixture
def private_postgres(tmp_path: Path):
    """A throwaway PostgreSQL cluster on a free loopback port (the Debian binaries, run as postgres)."""
    import glob
    import shutil
    import socket

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins or shutil.which("runuser") is None or os.getuid() != 0:
        reason = "needs the PostgreSQL server binaries (/usr/lib/postgresql/*/bin) and root to run them as postgres"
        if os.environ.get("EDGETUNE_REQUIRE_SERVICES"):
            pytest.fail(reason)
        pytest.skip(reason)
    import tempfile

    pg = bins[-1]
    home = Path(tempfile.mkdtemp(prefix="edgetune-pg-"))  # pytest's tmp_path is private to root
    os.chmod(home, 0o755)
    data = home / "pgdata"
    data.mkdir()
    shutil.chown(data, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_pg, f"{pg}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust"], check=True,
                   capture_output=True)
    start = [*as_pg, f"{pg}/pg_ctl", "-D", str(data), "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k /tmp",
             "-l", str(data / "pg.log"), "-w", "start"]
    stop = [*as_pg, f"{pg}/pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"]
    subprocess.run(start, check=True, capture_output=True)
    try:
        yield {"url": f"postgresql://postgres@127.0.0.1:{port}/postgres", "start": start, "stop": stop}
    finally:
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(180)
def test_lost_database_connection_keeps_the_trial_for_retry(tmp_path: Path, private_postgres, study_file) -> None:
    pytest.importorskip("psycopg2")
    cfg = study_file(NAME, storage=private_postgres["url"])
    script = tmp_path / "worker.py"
    script.write_text(PG_WORKER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    first = subprocess.run([sys.executable, str(script), str(cfg), str(tmp_path / "s"), *private_postgres["stop"]],
                           capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 2, first.stderr[-3000:]
    assert "stopped by the machine, not the candidate" in first.stderr and "Traceback" not in first.stderr
    assert "storage server is reachable" in first.stderr
    subprocess.run(private_postgres["start"], check=True, capture_output=True)  # the database is back
    second = subprocess.run([sys.executable, str(script), str(cfg), str(tmp_path / "s")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.split() == ["2", "0", "2"]  # both trials complete, none failed: the lost one was retried
