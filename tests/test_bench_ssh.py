"""The ssh transport against a real OpenSSH server on 127.0.0.1, and hostile file names.

The fixture starts ``/usr/sbin/sshd -D`` with a generated config (loopback only, a host key
and a client key made for the run with ssh-keygen, authorized_keys and PidFile in a temp
dir, ``StrictModes no``, ``UsePAM no``) and stops it afterwards. The client keeps host-key
checking on, with a generated known_hosts holding the server's key. If sshd is absent the
tests skip with the reason, unless $EDGETUNE_REQUIRE_SERVICES is set (CI), where that fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgetune.bench import bench_model, parse_target
from edgetune.bench.testing import make_streaming_model
from edgetune.errors import TargetError
from edgetune.testing import TransportContract

SSHD = "/usr/sbin/sshd"
HOSTILE = "a b'; touch PWNED; $(touch PWNED2) `touch PWNED3` \"q\".onnx"

pytestmark = pytest.mark.ssh


def _require_sshd() -> None:
    missing = [p for p in (SSHD, shutil.which("ssh"), shutil.which("scp"), shutil.which("ssh-keygen")) if not p
               or not os.path.exists(p)]
    if missing or not os.path.exists(SSHD):
        reason = (f"OpenSSH server/client not installed ({SSHD}, ssh, scp, ssh-keygen needed); "
                  f"install with: apt-get install -y openssh-server openssh-client")
        if os.environ.get("EDGETUNE_REQUIRE_SERVICES"):
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SshServer:
    """A running sshd on 127.0.0.1 and what a client needs to reach it."""

    proc: subprocess.Popen
    port: int
    user: str
    key: Path
    known_hosts: Path
    remote_tmp: Path  # where the runs' temp dirs are made (checked empty after each run)
    log: Path

    def target(self, key: Path | None = None, known_hosts: Path | None = None, **extra: str) -> str:
        query = {"identity": str(key or self.key), "known_hosts": str(known_hosts or self.known_hosts),
                 "python": sys.executable, "tmpdir": str(self.remote_tmp), "connect_timeout": "5", **extra}
        return f"ssh://{self.user}@127.0.0.1:{self.port}?{urllib.parse.urlencode(query)}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_sshd(base: Path) -> SshServer:
    _require_sshd()
    base.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    elif not os.path.isdir("/run/sshd"):
        reason = "sshd needs /run/sshd, which is missing and cannot be made without root"
        if os.environ.get("EDGETUNE_REQUIRE_SERVICES"):
            pytest.fail(reason)
        pytest.skip(reason)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / name)], check=True)
    shutil.copy(base / "client_key.pub", base / "authorized_keys")
    port = _free_port()
    user = pwd.getpwuid(os.getuid()).pw_name
    (base / "sshd_config").write_text(f"""
Port {port}
ListenAddress 127.0.0.1
HostKey {base}/host_key
PidFile {base}/sshd.pid
AuthorizedKeysFile {base}/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
Subsystem sftp internal-sftp
LogLevel VERBOSE
""")
    host_pub = (base / "host_key.pub").read_text().split()
    (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    remote_tmp = base / "remote_tmp"
    remote_tmp.mkdir()
    log = base / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-f", str(base / "sshd_config"), "-E", str(log)])
    server = SshServer(proc, port, user, base / "client_key", base / "known_hosts", remote_tmp, log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within 15 s")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_streaming_model(tmp_path_factory.mktemp("models") / "toy.onnx", width=64)


def test_bench_over_ssh(sshd, toy):
    r = bench_model(toy, sshd.target(), runs=20, warmup=2)
    assert len(r["samples_ms"]) == 20 and r["latency_ms"]["p50"] > 0
    assert r["fingerprint"]["ort_version"] and r["target"].startswith("ssh://")
    assert r["size_bytes"] == toy.stat().st_size
    assert list(sshd.remote_tmp.iterdir()) == []  # the per-run directory was removed


class TestSshTransport(TransportContract):
    """The transport contract (round trip, hostile names, cleanup, timeouts) over the real sshd."""

    @pytest.fixture
    def transport(self, sshd):
        yield parse_target(sshd.target())
        assert list(sshd.remote_tmp.iterdir()) == []


def _pwned(*dirs: Path) -> list[Path]:
    return [p for d in dirs if d.exists() for p in d.rglob("PWNED*")]


@pytest.mark.parametrize("where", ["local", "ssh"])
def test_hostile_names_never_execute(where, sshd, tmp_path, monkeypatch):
    hostile_dir = tmp_path / "dir $(touch PWNED4); `touch PWNED5`"
    hostile_dir.mkdir()
    model = make_streaming_model(hostile_dir / HOSTILE, width=32)
    monkeypatch.chdir(tmp_path)
    target = "local" if where == "local" else sshd.target()
    r = bench_model(model, target, runs=5, warmup=1)
    assert r["model"] == HOSTILE and len(r["samples_ms"]) == 5
    home = Path(os.path.expanduser("~"))
    assert _pwned(tmp_path, sshd.remote_tmp, Path.cwd()) == []
    assert [p for p in home.glob("PWNED*")] == [] and [p for p in Path("/tmp").glob("PWNED*")] == []


def test_hostile_remote_python_is_not_executed(sshd, toy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # absolute and ../ paths: a payload that ran would leave files outside the removed temp dir
    payload = f"python3; touch {tmp_path}/PWNED6 ../PWNED7 $(touch {tmp_path}/PWNED8)"
    with pytest.raises(TargetError, match="exited with status"):
        bench_model(toy, sshd.target(python=payload), runs=3, warmup=0)
    assert _pwned(tmp_path, sshd.remote_tmp) == [] and not list(Path(os.path.expanduser("~")).glob("PWNED*"))


@pytest.mark.timeout(60)
def test_unreachable_port(sshd, toy):
    closed = _free_port()
    target = sshd.target().replace(f":{sshd.port}?", f":{closed}?")
    with pytest.raises(TargetError, match="connection refused"):
        bench_model(toy, target, runs=3)


@pytest.mark.timeout(60)
def test_auth_failure_wrong_key(sshd, toy, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")], check=True)
    with pytest.raises(TargetError, match="authentication failed"):
        bench_model(toy, sshd.target(key=tmp_path / "stranger"), runs=3)


@pytest.mark.timeout(60)
def test_unknown_host_key_is_rejected(sshd, toy, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(TargetError, match="host key verification failed"):
        bench_model(toy, sshd.target(known_hosts=empty), runs=3)


@pytest.mark.timeout(60)
def test_timeout_on_a_long_run(sshd, toy):
    with pytest.raises(TargetError, match="stopped after|timed out"):
        bench_model(toy, sshd.target(), runs=10**8, warmup=0, timeout_s=4)
    t = parse_target(sshd.target())
    with pytest.raises(TargetError, match="timed out after 2 s"):
        t.run(["sleep", "20"], 2)


@pytest.mark.timeout(120)
def test_dropped_connection(tmp_path, toy):
    """Kill sshd and its session processes while the runner runs: a TargetError, no hang."""
    psutil = pytest.importorskip("psutil")
    server = start_sshd(tmp_path / "sshd")
    errors: list[BaseException] = []

    def bench():
        try:
            bench_model(toy, server.target(), runs=10**8, warmup=0, timeout_s=90)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=bench)
    thread.start()
    runner = None
    try:
        deadline = time.monotonic() + 60
        while runner is None and time.monotonic() < deadline and thread.is_alive():
            for child in psutil.Process(server.proc.pid).children(recursive=True):
                try:
                    if any("edgetune_runner.py" in part for part in child.cmdline()):
                        runner = child
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.1)
        assert runner is not None, "the runner never started over ssh"
        time.sleep(0.5)
        sshd_procs = [p for p in [psutil.Process(server.proc.pid), *psutil.Process(server.proc.pid)
                                  .children(recursive=True)] if p.name().startswith("sshd")]
        for p in sshd_procs:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        thread.join(60)
        assert not thread.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], TargetError), errors
        assert "dropped" in str(errors[0])
    finally:
        if runner is not None and runner.is_running():
            runner.kill()
        server.stop()


# ---- ssh options that would run local commands or switch host-key checking off (issue 17) ----


@pytest.mark.parametrize("option", [
    "ProxyCommand=touch {marker}",
    "proxycommand=touch {marker}",  # ssh matches keywords case-insensitively
    " ProxyCommand =touch {marker}",
    "ProxyCommand touch=x {marker}",  # ssh would read the keyword ProxyCommand and value 'touch=x ...'
    "LocalCommand=touch {marker}",
    "PermitLocalCommand=yes",
    "KnownHostsCommand=/bin/sh -c 'touch {marker}'",
    "Match=exec \"touch {marker}\"",
    "PKCS11Provider={marker}.so",
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/dev/null",
    "Include=/tmp/evil_config",
    "ProxyJump=-oProxyCommand=touch {marker}",
    "ProxyJump=bastion;touch {marker}",
])
def test_ssh_options_that_run_local_commands_are_refused(sshd, toy, tmp_path, option):
    marker = tmp_path / "PWNED_option"
    target = sshd.target(option=option.format(marker=marker))
    with pytest.raises(TargetError) as e:
        bench_model(toy, target, runs=3, warmup=0)
    assert "not allowed" in str(e.value) or "must be" in str(e.value) or "must look like" in str(e.value)
    assert not marker.exists()


def test_the_issue_proxycommand_url_runs_nothing(tmp_path, toy):
    marker = tmp_path / "x"
    target = f"ssh://u@127.0.0.1:1?option=ProxyCommand=touch%20{marker}"
    with pytest.raises(TargetError) as e:
        bench_model(toy, target, runs=3, warmup=0)
    assert "'ProxyCommand' is not allowed" in str(e.value) and "Fix:" in str(e.value)
    assert not marker.exists()


def test_allowed_ssh_options_still_pass_through(sshd, toy):
    r = bench_model(toy, sshd.target(option="ServerAliveInterval=2"), runs=5, warmup=1)
    assert len(r["samples_ms"]) == 5
    t = parse_target(sshd.target(option="Compression=yes"))
    assert "Compression=yes" in t.ssh_argv and "Compression=yes" in t.scp_argv


@pytest.mark.parametrize("known_hosts", ["/dev/null", "missing"])
def test_known_hosts_must_be_a_real_file_even_with_accept_new(sshd, toy, tmp_path, known_hosts):
    path = tmp_path / "nowhere" / "known_hosts" if known_hosts == "missing" else Path(known_hosts)
    target = sshd.target(known_hosts=path, host_key_checking="accept-new")
    with pytest.raises(TargetError) as e:
        bench_model(toy, target, runs=3, warmup=0)
    msg = str(e.value)
    assert str(path) in msg and "never turns host-key checking off" in msg and "Fix:" in msg


def test_accept_new_records_the_key_in_an_empty_known_hosts(sshd, toy, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    r = bench_model(toy, sshd.target(known_hosts=known, host_key_checking="accept-new"), runs=3, warmup=0)
    assert len(r["samples_ms"]) == 3
    server_key = (Path(sshd.known_hosts).read_text().split()[2])
    assert server_key in known.read_text()  # trusted on first use, so a changed key fails next time
