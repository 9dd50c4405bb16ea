"""The fork server: starting a shim costs a fork, not a Python start-up (DESIGN decision 8).

``berthd`` calls :meth:`ForkServer.start` at boot, before it starts any thread: that forks a
small single-threaded server with the shim and the runtime backends already imported. For each
:meth:`ForkServer.spawn_shim` the server double-forks; the grandchild calls ``setsid``, puts
its stdio on ``/dev/null`` (stderr on ``<state_dir>/shim.log``), closes every other inherited fd
and runs :func:`berth.runtime.shim.main`. Being in its own session and no child of berthd, the
shim outlives the daemon. The server itself dies with the daemon (``PR_SET_PDEATHSIG``) and
exits when the daemon's end of their socketpair closes.

Wire (``SOCK_SEQPACKET``, one message each way per spawn): the daemon sends the
:class:`ShimConfig` JSON; the server answers ``{"ok": true}`` with the read end of the shim's
readiness pipe attached (``SCM_RIGHTS``), or ``{"ok": false, "error": ...}``. The shim writes
one JSON line on that pipe once its socket listens (or why it failed) and closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any, NoReturn

from berth.runtime import shim
from berth.runtime.process import RuntimeFailure
from berth.runtime.shimproto import LOG_FILE, ShimConfig

PR_SET_PDEATHSIG = 1
PRELOAD = ("berth.runtime.executor",)
"""Imported in the server when present (the shim and runc backend are imported with this module)."""
MAX_MESSAGE = 1 << 20
READY_FD = 3
"""The shim's readiness pipe is fd 3 in the shim."""


class ForkServer:
    """Handle on the fork server from the daemon's side. Thread-safe after :meth:`start`."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Fork the server. Call before the daemon starts any thread (fork copies only the caller)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        daemon_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            ours.close()
            _serve(theirs, daemon_pid)
        theirs.close()
        self.pid, self._sock = pid, ours

    def stop(self) -> None:
        """Close the socketpair (the server exits) and reap the server. Shims keep running."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = None

    def spawn_shim(self, cfg: ShimConfig) -> int:
        """Start a detached shim for ``cfg``; return its PID once its socket listens.

        Raises RuntimeFailure with the shim's error when it failed early (e.g. ``runc create``
        failed: the runtime's message), or when the fork server is gone.
        """
        ready = self._request(cfg)
        try:  # up to the newline, not EOF: the runtime's forks may hold the pipe until they exec
            os.set_blocking(ready, True)
            report = b""
            while not report.endswith(b"\n") and (chunk := os.read(ready, 4096)):
                report += chunk
        finally:
            os.close(ready)
        return _shim_pid(report, cfg)

    async def aspawn_shim(self, cfg: ShimConfig) -> int:
        """asyncio form of :meth:`spawn_shim` (the short exchange with the server runs in the
        default executor; the wait for the shim does not block the loop)."""
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, self._request, cfg)
        try:
            data = await _read_report(ready)
        finally:
            os.close(ready)
        return _shim_pid(data, cfg)

    def _request(self, cfg: ShimConfig) -> int:
        """Ask the server to fork a shim; returns the read end of its readiness pipe."""
        with self._lock:
            if self._sock is None:
                raise RuntimeFailure("fork server is not running")
            try:
                self._sock.send(cfg.to_json().encode())
                message, fds, _, _ = socket.recv_fds(self._sock, MAX_MESSAGE, 1)
            except OSError as exc:
                raise RuntimeFailure(f"fork server is not running: {exc}") from None
        reply = json.loads(message) if message else {"error": "fork server exited"}
        if not reply.get("ok") or not fds:
            for fd in fds:
                os.close(fd)
            raise RuntimeFailure(str(reply.get("error", "fork server failed")))
        os.set_inheritable(fds[0], False)
        return fds[0]


async def _read_report(fd: int) -> bytes:
    """Read the shim's report line (up to its newline, or EOF if the shim died first).

    Not up to EOF: the runtime's forks may hold the pipe's write end until they exec.
    """
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    report = b""
    while not report.endswith(b"\n"):
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _wake, readable)
            try:
                await readable
            finally:
                loop.remove_reader(fd)
            continue
        if not chunk:
            break
        report += chunk
    return report


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _shim_pid(report: bytes, cfg: ShimConfig) -> int:
    """The shim's PID from its readiness report; RuntimeFailure with its error otherwise."""
    try:
        message: dict[str, Any] = json.loads(report.splitlines()[0])
    except (IndexError, ValueError):
        raise RuntimeFailure(f"shim for {cfg.id} died before it was ready: {_log_tail(cfg)}") from None
    if "error" in message:
        raise RuntimeFailure(str(message["error"]))
    return int(message["pid"])


def _log_tail(cfg: ShimConfig) -> str:
    try:
        lines = (cfg.state_dir / LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no shim log"
    return lines[-1] if lines else "empty shim log"


def _serve(sock: socket.socket, daemon_pid: int) -> NoReturn:
    """The fork server's loop (in the forked child): one shim per request, until EOF."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != daemon_pid:  # the daemon died before prctl took effect
            os._exit(0)
        # a ^C, a hang-up or a `pkill -USR1 berthd` (stack dump) meant for the daemon is not for us
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)
        with contextlib.suppress(ImportError):
            from setproctitle import setproctitle
            setproctitle("berthd-forkserver")
        for name in PRELOAD:
            # A backend that fails to import must not take the server down: the shim that asks
            # for it reports the error.
            with contextlib.suppress(Exception):
                importlib.import_module(name)
        while message := sock.recv(MAX_MESSAGE):
            try:
                ready = _fork_shim(ShimConfig.from_json(message))
            except Exception as exc:  # noqa: BLE001 -- every failure goes back to the daemon
                sock.send(json.dumps({"ok": False, "error": f"cannot spawn shim: {exc}"}).encode())
                continue
            try:
                socket.send_fds(sock, [json.dumps({"ok": True}).encode()], [ready])
            finally:
                os.close(ready)
    finally:
        os._exit(0)


def _fork_shim(cfg: ShimConfig) -> int:
    """Double-fork a detached shim; return the read end of its readiness pipe."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                _run_shim(cfg, ready_w)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.waitpid(pid, 0)
    return ready_r


def _run_shim(cfg: ShimConfig, ready_w: int) -> NoReturn:
    """In the grandchild: stdio to /dev/null and shim.log, drop inherited fds, become the shim."""
    try:
        cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ready = fcntl.fcntl(ready_w, fcntl.F_DUPFD_CLOEXEC, 10)
        log_fd = os.open(cfg.state_dir / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDWR)
        for target, source in ((0, null), (1, null), (2, log_fd)):
            os.dup2(source, target)
        os.dup2(ready, READY_FD, inheritable=False)
        os.closerange(READY_FD + 1, os.sysconf("SC_OPEN_MAX"))
    except OSError:
        os._exit(1)
    logging.root.handlers = [logging.StreamHandler(sys.stderr)]
    logging.root.setLevel(logging.INFO)
    for handler in logging.root.handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    shim.main(cfg, ready_fd=READY_FD)
