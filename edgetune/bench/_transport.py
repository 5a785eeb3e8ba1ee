"""Where a benchmark runs: transports named by URL-like targets (``local``, ``ssh://``, ``adb://``).

Each scheme is registered (:func:`register_transport`: scheme, query options, factory), so a new
transport is one :class:`Transport` subclass plus its registration; :func:`parse_target` looks the
scheme up and lists the registered ones when it is unknown.

A transport knows how to make a per-run temporary directory on the device, copy files
into it (and back), run a command there with a bounded time, and remove the directory.
It knows nothing about what is timed: the harness (``_harness.py``) pushes the runner and
the model and reads the runner's JSON lines from stdout.

Safety rules every transport follows:

* Commands are argument lists. Locally they go to ``subprocess`` without a shell. Where a
  remote shell parses the command (ssh, ``adb shell``), every argument is quoted with
  :func:`shlex.quote`, so a file name with spaces, quotes, ``;``, ``$(...)`` or backticks
  is data, never code.
* Files are pushed under fixed, safe remote names chosen by the caller; local paths are
  given to ``scp``/``adb`` as absolute paths so a ``:`` or a leading ``-`` in a name cannot
  turn into a host name or an option.
* Every subprocess has a timeout; on expiry its whole process group is killed and a
  :class:`~edgetune.errors.TargetError` says which step timed out.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from edgetune._registry import Registry
from edgetune.errors import TargetError

LOCAL_OPTIONS = ("python",)
SSH_OPTIONS = ("identity", "known_hosts", "python", "connect_timeout", "host_key_checking",
               "option", "tmpdir")
ADB_OPTIONS = ("python", "tmpdir")
SETUP_TIMEOUT_S = 60.0  # mktemp / push / cleanup steps

#: ``option=Key=Value`` keys a target may pass to ssh/scp (lower case; ssh matches keys case-insensitively).
#: None of them runs a local command, loads code, forwards anything or weakens host-key checking.
SSH_ALLOWED_OPTIONS = frozenset({
    "addressfamily", "bindaddress", "bindinterface", "canonicaldomains", "canonicalizefallbacklocal",
    "canonicalizehostname", "canonicalizemaxdots", "ciphers", "compression", "connectionattempts",
    "controlmaster", "controlpath", "controlpersist", "hostbasedacceptedalgorithms", "hostkeyalgorithms",
    "hostkeyalias", "hostname", "identityagent", "ipqos", "kexalgorithms", "loglevel", "macs",
    "preferredauthentications", "proxyjump", "pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes",
    "pubkeyauthentication", "rekeylimit", "serveraliveinterval", "serveralivecountmax", "tcpkeepalive",
    "user", "verifyhostkeydns",
})
_SSH_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_SSH_HOP = re.compile(r"(ssh://)?([A-Za-z0-9._~-]+@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?")


def ssh_option(text: str, target: str) -> str:
    """Check one ``option=Key=Value`` against :data:`SSH_ALLOWED_OPTIONS`; return ``Key=Value`` for ``-o``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not _SSH_KEY.fullmatch(key):
        raise TargetError(f"{target}: option must look like Key=Value (one ssh_config keyword, then =), "
                          f"but got {text!r}")
    if key.lower() not in SSH_ALLOWED_OPTIONS:
        raise TargetError(f"{target}: ssh option {key!r} is not allowed (it could run a local command, "
                          f"forward connections or weaken host-key checking); allowed: "
                          f"{', '.join(sorted(SSH_ALLOWED_OPTIONS))}. Fix: drop it, or put it in ~/.ssh/config "
                          f"if you trust it")
    if any(ch in value for ch in "\n\r\0"):
        raise TargetError(f"{target}: option {key} has a control character in its value {value!r}")
    if key.lower() == "proxyjump" and value.strip().lower() != "none":
        hops = value.strip().split(",")
        if not all(_SSH_HOP.fullmatch(h) for h in hops):
            raise TargetError(f"{target}: ProxyJump must be a comma-separated list of [user@]host[:port] "
                              f"jump hosts, but got {value!r}")
    return f"{key}={value.strip()}"


def _known_hosts_file(path: str, target: str) -> str:
    """``known_hosts=`` must name an existing regular file: /dev/null (or a missing file) with
    accept-new would accept any host key on every connection."""
    real = os.path.realpath(os.path.expanduser(path))
    if not os.path.isfile(real):
        why = "is not a regular file" if os.path.exists(real) else "does not exist"
        raise TargetError(f"{target}: known_hosts={path!r} {why}; edgetune never turns host-key checking off. "
                          f"Fix: ssh-keyscan -H HOST > known_hosts (check the key), or create an empty file "
                          f"for host_key_checking=accept-new to fill on the first connection")
    return path


@dataclass
class Completed:
    """The outcome of one command: exit status, captured text and how long it took."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_bounded(argv: list[str], timeout_s: float, *, what: str, cwd: str | None = None) -> Completed:
    """Run ``argv`` (no shell) in its own process group; kill the group after ``timeout_s``.

    Raises TargetError when the program is missing or the time runs out. A non-zero exit
    status is returned, not raised: callers map it to a message.
    """
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    except FileNotFoundError as exc:
        raise TargetError(f"{what}: {exc.filename!r} not found ({exc.strerror}); install it, put it on PATH "
                          f"or fix the path") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a grandchild outside the group holds the pipes
            pass
        raise TargetError(f"{what}: timed out after {timeout_s:g} s; raise timeout_s (--timeout) or lower "
                          f"--runs") from None
    except BaseException:
        _kill_group(proc)
        raise
    return Completed(list(argv), proc.returncode, out, err, time.monotonic() - start)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Transport(ABC):
    """Runs commands and moves files for one target. Use :meth:`session` for a per-run temp dir."""

    target: str
    python: str  # the interpreter that runs runner.py on the device

    @abstractmethod
    def run(self, argv: list[str], timeout_s: float, *, cwd: str | None = None, what: str = "run") -> Completed:
        """Run ``argv`` on the device (in ``cwd``) and return its outcome; TargetError on transport failure."""

    @abstractmethod
    def push(self, local_path: str, remote_path: str) -> None:
        """Copy a local file to ``remote_path`` on the device."""

    @abstractmethod
    def pull(self, remote_path: str, local_path: str) -> None:
        """Copy ``remote_path`` on the device to a local file."""

    @abstractmethod
    def make_tempdir(self) -> str:
        """Create a fresh private directory on the device and return its path."""

    def remove_tempdir(self, path: str) -> None:
        """Remove a directory made by :meth:`make_tempdir` (best effort is not enough: errors raise)."""
        res = self.run(["rm", "-rf", "--", path], SETUP_TIMEOUT_S, what="remove the temporary directory")
        if res.returncode != 0:
            raise TargetError(f"{self.target}: could not remove {path}: {res.stderr.strip()}")

    def session(self) -> "TempDirSession":
        """Context manager: a temporary directory on the device, removed on exit (also on failure)."""
        return TempDirSession(self)


class TempDirSession:
    """``with transport.session() as remote_dir:`` creates and always removes a device temp dir."""

    def __init__(self, transport: Transport):
        self.transport = transport
        self.path: str | None = None

    def __enter__(self) -> str:
        self.path = self.transport.make_tempdir()
        return self.path

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.path is None:
            return
        try:
            self.transport.remove_tempdir(self.path)
        except TargetError as cleanup_error:
            if exc is None:
                raise
            # the original failure matters more; keep the cleanup failure visible beside it
            print(f"edgetune: warning: {cleanup_error}", file=sys.stderr)


# ----------------------------------------------------------------------------- local


class LocalTransport(Transport):
    """Runs on this machine, with this interpreter, in a ``tempfile.mkdtemp`` directory."""

    def __init__(self, target: str = "local", python: str | None = None):
        self.target = target
        self.python = python or os.environ.get("EDGETUNE_LOCAL_PYTHON") or sys.executable

    def run(self, argv, timeout_s, *, cwd=None, what="run"):
        return run_bounded(argv, timeout_s, what=f"local: {what}", cwd=cwd)

    def push(self, local_path, remote_path):
        try:
            shutil.copyfile(local_path, remote_path)
        except OSError as exc:
            raise TargetError(f"local: could not copy {local_path} to {remote_path}: {exc.strerror}") from None

    def pull(self, remote_path, local_path):
        self.push(remote_path, local_path)

    def make_tempdir(self):
        return tempfile.mkdtemp(prefix="edgetune.")

    def remove_tempdir(self, path):
        shutil.rmtree(path, ignore_errors=False)


# ----------------------------------------------------------------------------- remote (shell-quoted)


def remote_command(argv: list[str], cwd: str | None = None) -> str:
    """One shell command line for a remote ``sh``: every argument quoted with shlex.quote."""
    cmd = shlex.join(argv)
    return f"cd {shlex.quote(cwd)} && {cmd}" if cwd else cmd


class SshTransport(Transport):
    """``ssh://[user@]host[:port][?options]`` through the system OpenSSH client (``ssh``, ``scp``).

    ~/.ssh/config, keys and agents apply as usual. Always passed: ``-o BatchMode=yes`` (never
    prompt), ``-o ConnectTimeout=N``, ``-o StrictHostKeyChecking=yes`` (host-key checking is on:
    an unknown or changed host key is an error). Query options (repeatable ``option``):

    ``identity=/path/key``       -i /path/key -o IdentitiesOnly=yes
    ``known_hosts=/path``         -o UserKnownHostsFile=/path (an existing regular file, not /dev/null)
    ``host_key_checking=accept-new``  trust a host seen for the first time (a changed key still fails)
    ``connect_timeout=10``        seconds (default 10)
    ``option=Key=Value``          an extra ``-o Key=Value`` from :data:`SSH_ALLOWED_OPTIONS` (e.g.
                                  ``option=ProxyJump=bastion``); options that run local commands
                                  (ProxyCommand, LocalCommand, KnownHostsCommand, Match exec, ...)
                                  or weaken host-key checking are refused
    ``python=/usr/bin/python3``   the remote interpreter (default: $EDGETUNE_REMOTE_PYTHON or python3)
    ``tmpdir=/data/tmp``          where the per-run directory is made (default: $TMPDIR or /tmp)

    ``$EDGETUNE_SSH`` / ``$EDGETUNE_SCP`` pick other client binaries; ``$EDGETUNE_SSH_OPTIONS``
    adds options (shell-split) to both.
    """

    def __init__(self, target: str, user: str | None, host: str, port: int | None, options: dict[str, list[str]]):
        self.target = target
        self.user, self.host, self.port = user, host, port
        self.destination = f"{user}@{host}" if user else host
        self.python = _last(options, "python") or os.environ.get("EDGETUNE_REMOTE_PYTHON") or "python3"
        self.tmpdir = _last(options, "tmpdir")
        self.connect_timeout = _positive_number(_last(options, "connect_timeout") or "10", "connect_timeout", target)
        checking = _last(options, "host_key_checking") or "yes"
        if checking not in ("yes", "accept-new"):
            raise TargetError(f"{target}: host_key_checking must be 'yes' or 'accept-new', but got {checking!r}; "
                              f"edgetune never turns host-key checking off (add the key to a known_hosts file "
                              f"and pass known_hosts=/path instead)")
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout:g}",
                "-o", f"StrictHostKeyChecking={checking}", "-o", "ServerAliveInterval=5",
                "-o", "ServerAliveCountMax=3"]
        if _last(options, "identity"):
            opts += ["-i", _last(options, "identity"), "-o", "IdentitiesOnly=yes"]
        self.known_hosts = _last(options, "known_hosts")
        if self.known_hosts:
            if os.path.normpath(self.known_hosts) in ("/dev/null", os.devnull):
                _known_hosts_file(self.known_hosts, target)  # raises: /dev/null is not a regular file
            opts += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        for extra in options.get("option", []):
            opts += ["-o", ssh_option(extra, target)]
        opts += shlex.split(os.environ.get("EDGETUNE_SSH_OPTIONS", ""))
        self.ssh = os.environ.get("EDGETUNE_SSH", "ssh")
        self.scp = os.environ.get("EDGETUNE_SCP", "scp")
        self.ssh_argv = [self.ssh, *opts] + (["-p", str(port)] if port else [])
        self.scp_argv = [self.scp, "-q", *opts] + (["-P", str(port)] if port else [])

    def _check_known_hosts(self) -> None:
        if self.known_hosts:
            _known_hosts_file(self.known_hosts, self.target)

    def run(self, argv, timeout_s, *, cwd=None, what="run"):
        self._check_known_hosts()
        cmd = remote_command(argv, cwd)
        res = run_bounded([*self.ssh_argv, "--", self.destination, cmd], timeout_s, what=f"{self.target}: {what}")
        if res.returncode == 255:
            raise TargetError(self._explain(res.stderr, what))
        return res

    def _explain(self, stderr: str, what: str) -> str:
        """Map ssh's exit status 255 and its stderr to an actionable message."""
        text = stderr.strip()
        low = text.lower()
        where = f"{self.target}: {what}"
        if "host key verification failed" in low or "remote host identification has changed" in low:
            why = ("host key verification failed: the host's key is not in known_hosts (or changed). "
                   "Fix: ssh-keyscan the host into a known_hosts file you trust and pass known_hosts=/path")
        elif "permission denied" in low or "too many authentication failures" in low:
            why = ("authentication failed (permission denied). Fix: pass identity=/path/to/key, load the key "
                   "into ssh-agent, or add the public key to the device's authorized_keys")
        elif "connection refused" in low:
            why = "connection refused: no SSH server is listening there. Fix: check the host, port and that sshd runs"
        elif "could not resolve hostname" in low or "name or service not known" in low:
            why = "host name does not resolve. Fix: check the name or use an IP address"
        elif "timed out" in low or "no route to host" in low or "network is unreachable" in low:
            why = f"host unreachable ({text.splitlines()[-1] if text else 'timeout'}). Fix: check network and host"
        elif ("closed by" in low or "connection reset" in low or "broken pipe" in low
              or "timeout, server" in low or "not responding" in low or not text):
            why = "the connection dropped while the command ran. Fix: check the device stayed up and rerun"
        else:
            why = "ssh failed"
        tail = f" [ssh said: {text.splitlines()[-1]}]" if text else ""
        return f"{where}: {why}{tail}"

    def _remote(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        return f"{self.user}@{host}:{path}" if self.user else f"{host}:{path}"

    def push(self, local_path, remote_path):
        self._scp(os.path.abspath(local_path), self._remote(remote_path), f"push {os.path.basename(local_path)}")

    def pull(self, remote_path, local_path):
        self._scp(self._remote(remote_path), os.path.abspath(local_path), f"pull {remote_path}")

    def _scp(self, src: str, dst: str, what: str) -> None:
        self._check_known_hosts()
        res = run_bounded([*self.scp_argv, "--", src, dst], SETUP_TIMEOUT_S, what=f"{self.target}: {what}")
        if res.returncode != 0:
            low = res.stderr.lower()
            if res.returncode == 255 or "lost connection" in low or "connection closed" in low:
                raise TargetError(self._explain(res.stderr, what))
            raise TargetError(f"{self.target}: {what} failed (scp exit {res.returncode}): {res.stderr.strip()}")

    def make_tempdir(self):
        self._check_known_hosts()
        base = self.tmpdir
        if base:
            script = f"mktemp -d {shlex.quote(base.rstrip('/') + '/edgetune.XXXXXXXX')}"
        else:
            script = 'mktemp -d "${TMPDIR:-/tmp}/edgetune.XXXXXXXX"'
        res = run_bounded([*self.ssh_argv, "--", self.destination, script], SETUP_TIMEOUT_S,
                          what=f"{self.target}: make a temporary directory")
        if res.returncode == 255:
            raise TargetError(self._explain(res.stderr, "make a temporary directory"))
        return _tempdir_from(res, self.target)


# ----------------------------------------------------------------------------- adb


class AdbTransport(Transport):
    """``adb://SERIAL[?python=...&tmpdir=...]`` through ``adb -s SERIAL push/shell/pull``.

    The adb binary is ``$EDGETUNE_ADB`` or ``adb`` on PATH. ``adb shell`` hands its words to
    the device's ``sh``, so the command is one string of shlex-quoted arguments. The per-run
    directory is made under ``tmpdir`` (default ``/data/local/tmp``, writable by the shell
    user). The Python runner needs an interpreter with numpy and onnxruntime reachable from
    ``adb shell`` (``python=/data/local/tmp/py/bin/python3``); without one use
    ``runner="perf_test"`` with an ``onnxruntime_perf_test`` binary built for the device.
    """

    def __init__(self, target: str, serial: str, options: dict[str, list[str]]):
        self.target = target
        self.serial = serial
        self.adb = os.environ.get("EDGETUNE_ADB") or shutil.which("adb") or "adb"
        self.python = _last(options, "python") or os.environ.get("EDGETUNE_REMOTE_PYTHON") or "python3"
        self.tmpdir = _last(options, "tmpdir") or "/data/local/tmp"

    def _adb(self, args: list[str], timeout_s: float, what: str) -> Completed:
        res = run_bounded([self.adb, "-s", self.serial, *args], timeout_s, what=f"{self.target}: {what}")
        low = res.stderr.lower()
        if res.returncode != 0 and ("not found" in low and "device" in low or "no devices" in low
                                    or "offline" in low or "unauthorized" in low):
            raise TargetError(f"{self.target}: {what}: adb cannot reach device {self.serial!r} "
                              f"({res.stderr.strip().splitlines()[-1]}). Fix: check `adb devices` lists it "
                              f"as 'device' and the serial is right")
        return res

    def run(self, argv, timeout_s, *, cwd=None, what="run"):
        return self._adb(["shell", remote_command(argv, cwd)], timeout_s, what)

    def push(self, local_path, remote_path):
        res = self._adb(["push", os.path.abspath(local_path), remote_path], SETUP_TIMEOUT_S,
                        f"push {os.path.basename(local_path)}")
        if res.returncode != 0:
            raise TargetError(f"{self.target}: adb push to {remote_path} failed: {res.stderr.strip()}")

    def pull(self, remote_path, local_path):
        res = self._adb(["pull", remote_path, os.path.abspath(local_path)], SETUP_TIMEOUT_S, f"pull {remote_path}")
        if res.returncode != 0:
            raise TargetError(f"{self.target}: adb pull of {remote_path} failed: {res.stderr.strip()}")

    def make_tempdir(self):
        template = self.tmpdir.rstrip("/") + "/edgetune.XXXXXXXX"
        res = self._adb(["shell", f"mktemp -d {shlex.quote(template)}"], SETUP_TIMEOUT_S, "make a temporary directory")
        return _tempdir_from(res, self.target)


# ----------------------------------------------------------------------------- registry, parsing targets


@dataclass(frozen=True)
class TransportKind:
    """One registered transport: its URL scheme, the query options it takes, and its factory
    ``(target, url, options) -> Transport`` (``url`` is :func:`urllib.parse.urlsplit` of the target)."""

    scheme: str
    options: tuple[str, ...]
    factory: Callable[[str, SplitResult, dict[str, list[str]]], Transport]


# parse_target checks the scheme itself, to name the whole target in its error
_TRANSPORTS: Registry[TransportKind] = Registry(
    lambda scheme, names: TargetError(f"unknown transport scheme {scheme!r}; registered ones are {', '.join(names)}"))


def register_transport(scheme: str, options: tuple[str, ...],
                       factory: Callable[[str, SplitResult, dict[str, list[str]]], Transport]) -> TransportKind:
    """Make ``scheme://...`` targets build a transport with ``factory`` (re-registering replaces it)."""
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        raise ValueError(f"a transport scheme is lower-case letters, digits, '+', '.' or '-', but got {scheme!r}")
    return _TRANSPORTS.register(scheme, TransportKind(scheme, tuple(options), factory))


def transports() -> list[str]:
    """The registered transport schemes, in registration order."""
    return _TRANSPORTS.names()


def parse_target(target: str) -> Transport:
    """``local`` | ``ssh://[user@]host[:port][?opts]`` | ``adb://SERIAL[?opts]`` (or a registered scheme) -> a Transport.

    Unknown schemes and unknown query options raise TargetError listing the valid ones.
    """
    if not isinstance(target, str) or not target.strip():
        raise TargetError(f"target must be a non-empty string like 'local', 'ssh://user@host' or 'adb://SERIAL', "
                          f"but got {target!r}")
    target = target.strip()
    if target in ("local", "local://"):
        return LocalTransport(target)
    url = urlsplit(target)
    if url.scheme.lower() not in _TRANSPORTS or "://" not in target:
        raise TargetError(f"unknown target {target!r}: the scheme must be one of {', '.join(transports())} "
                          f"(e.g. 'local', 'ssh://user@host:22', 'adb://SERIAL')")
    kind = _TRANSPORTS.get(url.scheme.lower())
    options = parse_qs(url.query, keep_blank_values=True, strict_parsing=False) if url.query else {}
    _check_options(target, options, kind.options)
    return kind.factory(target, url, options)


def _local(target: str, url: SplitResult, options: dict[str, list[str]]) -> Transport:
    return LocalTransport(target, python=_last(options, "python"))


def _ssh(target: str, url: SplitResult, options: dict[str, list[str]]) -> Transport:
    try:
        port = url.port
    except ValueError:
        raise TargetError(f"{target}: the port must be a number in 1..65535") from None
    if not url.hostname:
        raise TargetError(f"{target}: no host; write ssh://user@host[:port]")
    user = unquote(url.username) if url.username else None
    return SshTransport(target, user, url.hostname, port, options)


def _adb(target: str, url: SplitResult, options: dict[str, list[str]]) -> Transport:
    serial = unquote(url.netloc or url.path.lstrip("/"))
    if not serial:
        raise TargetError(f"{target}: no device serial; write adb://SERIAL (see `adb devices`)")
    return AdbTransport(target, serial, options)


register_transport("local", LOCAL_OPTIONS, _local)
register_transport("ssh", SSH_OPTIONS, _ssh)
register_transport("adb", ADB_OPTIONS, _adb)
SCHEMES = tuple(_TRANSPORTS.names())  # the built-in ones; transports() also lists those registered later


def _check_options(target: str, options: dict[str, list[str]], valid: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TargetError(f"{target}: unknown option(s) {', '.join(map(repr, unknown))}; valid options: "
                          f"{', '.join(valid)}")


def _last(options: dict[str, list[str]], key: str) -> str | None:
    values = options.get(key)
    return values[-1] if values else None


def _positive_number(text: str, key: str, target: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise TargetError(f"{target}: {key} must be a positive number of seconds, but got {text!r}")
    return value


def _tempdir_from(res: Completed, target: str) -> str:
    path = res.stdout.strip().splitlines()[-1].strip() if res.stdout.strip() else ""
    if res.returncode != 0 or not path.startswith("/"):
        raise TargetError(f"{target}: could not make a temporary directory with mktemp -d "
                          f"(exit {res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
    return path
