"""The shim: one small monitor per container init or exec'd process.

It is the process's parent (a child subreaper, so the runtime's forks end up here), holds its
stdio (pipes, or the pty master), writes the json-file log (init), records how it ended
(``exit.json``) and serves the daemon on a unix socket (protocol in :mod:`shimproto`). Shims are
started by the fork server in their own session and outlive the daemon (docker's live-restore);
a restarted daemon reconnects to ``sock``.

Lifecycle: *init* mode creates the container at once and runs it on the first ``start``
request, so the daemon can set up the network namespace and attach before the program runs;
*exec* mode runs the process on ``start`` (after the client attached). When the process ends:
reap it, drain its output to the log and attached clients, write ``exit.json`` atomically,
answer waiters, give clients a moment to read, exit. The stdio side is :mod:`shimio`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import importlib
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from berth.errors import BerthError, Conflict, InvalidParameter
from berth.runtime import cgroups
from berth.runtime.jsonlog import JsonLogWriter
from berth.runtime.process import Created, RuntimeBackend, RuntimeFailure
from berth.runtime.runc import RuncBackend
from berth.runtime.shimio import READ_SIZE, ProcessIO
from berth.runtime.shimproto import (
    PID_FILE,
    ExitStatus,
    ShimConfig,
    ShimState,
    decode_message,
    encode_message,
    error_response,
    start_error_exit_code,
    write_exit,
)
from berth.timeutil import rfc3339_nano

__all__ = ["ShimConfig", "main", "load_backend", "Shim"]

log = logging.getLogger("berth.shim")

PR_SET_CHILD_SUBREAPER = 36
LINGER = 1.0
"""Seconds given to connected clients to read the exit status before the shim exits."""
OUTPUT_DRAIN_TIMEOUT = 2.0
"""Seconds to wait for the output's EOF after the process ended (a child may hold it open)."""


def load_backend(runtime: str, root: Path | None) -> RuntimeBackend:
    """The backend called ``runtime``: ``"runc"`` or ``"berth"`` (imported lazily).

    Raises InvalidParameter for an unknown name.
    """
    if runtime == "runc":
        return RuncBackend(root)
    if runtime == "berth":
        executor = importlib.import_module("berth.runtime.executor")
        return executor.Executor(root)  # type: ignore[no-any-return]
    raise InvalidParameter(f"unknown runtime: {runtime}")


def main(cfg: ShimConfig, ready_fd: int | None = None) -> NoReturn:
    """Run the shim for ``cfg`` until its process has ended, then exit the process.

    ``ready_fd`` (optional) is the write end of a pipe: the shim writes one JSON line there,
    ``{"pid": shim_pid, "init_pid": N}`` once its socket listens or ``{"pid": .., "error": msg}``
    when it could not start, then closes it. Exit status 0, or 1 when the process never ran.
    """
    code = 1
    try:
        _become_shim(cfg)
        code = asyncio.run(Shim(cfg, load_backend(cfg.runtime, cfg.runtime_root)).run(ready_fd))
    except BaseException as exc:  # noqa: BLE001 -- a shim must report, never leak a traceback upward
        log.exception("shim %s failed", cfg.id)
        _report(ready_fd, {"pid": os.getpid(), "error": getattr(exc, "message", str(exc)) or repr(exc)})
    finally:
        logging.shutdown()
        os._exit(code)


def _become_shim(cfg: ShimConfig) -> None:
    with contextlib.suppress(PermissionError):  # already a session leader
        os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    # Dispositions survive fork and an ignored signal survives exec: whatever the daemon or
    # the fork server set must not reach the container (runc's children get SIGPIPE back).
    for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # A shim lives as long as its process: `pkill berthd`, a ^C, a hang-up or a stack-dump request
    # (SIGUSR1) meant for the daemon must not orphan the container. A Python handler (not SIG_IGN)
    # so exec resets it in children.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, _ignore)
    _set_title(f"berth-shim {cfg.mode} {cfg.id[:12]}")
    cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = cfg.state_dir / f".{PID_FILE}.tmp"
    temp.write_text(str(os.getpid()))
    os.replace(temp, cfg.state_dir / PID_FILE)


def _ignore(signum: int, frame: Any) -> None:
    """Handler for the termination signals a shim does not act on."""


def _set_title(title: str) -> None:
    """Name the process in ps (and for ``pkill -f``): forks of berthd otherwise show its command line."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(title)


def _report(ready_fd: int | None, message: dict[str, Any]) -> None:
    if ready_fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(ready_fd, encode_message(message))
    with contextlib.suppress(OSError):
        os.close(ready_fd)


class Shim:
    """The monitor of one process; :meth:`run` returns the shim's exit status."""

    def __init__(self, cfg: ShimConfig, backend: RuntimeBackend) -> None:
        self.cfg = cfg
        self.backend = backend
        self.pid = 0
        self.status = "created"
        self.exit_status: ExitStatus | None = None
        self._start_error: str | None = None
        self._exit_raw: int | None = None
        self._finished_ns = 0
        self._oom_before = 0
        self._cgroup: str | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._finishing: asyncio.Task[None] | None = None

    async def run(self, ready_fd: int | None) -> int:
        """Create (init mode), serve the socket, monitor the process; returns 0, or 1 if create failed."""
        self.finished = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        log_writer = JsonLogWriter(self.cfg.log_path) if self.cfg.log_path is not None else None
        self.io = ProcessIO(self.cfg.terminal, self.cfg.open_stdin, log_writer)
        if self.cfg.mode == "init":
            try:
                self._adopt(self.backend.create(self.cfg.container_id, self.cfg.bundle or Path(),
                                                self.io.child_stdio(), self.cfg.terminal))
            except RuntimeFailure as exc:
                self.io.close()
                self._write_exit(ExitStatus(start_error_exit_code(exc.message), False, rfc3339_nano(),
                                            exc.message))
                _report(ready_fd, {"pid": os.getpid(), "error": exc.message})
                return 1
        self.loop.add_signal_handler(signal.SIGCHLD, self._reap)
        self._reap()
        server = await asyncio.start_unix_server(self._serve_connection, path=str(self.cfg.socket_path))
        _report(ready_fd, {"pid": os.getpid(), "init_pid": self.pid})
        try:
            await self.finished.wait()
            await self.io.close_clients(self.exit_status, LINGER)
            if self._connections:
                await asyncio.wait(self._connections, timeout=LINGER)
        finally:
            server.close()
            with contextlib.suppress(FileNotFoundError):
                self.cfg.socket_path.unlink()
        return 0

    def _adopt(self, created: Created) -> None:
        """Take charge of a process the backend created or exec'd."""
        self.pid = created.pid
        self.io.process_started(created.pty_master)
        if self.cfg.mode == "init":
            self._cgroup = cgroup_path(created.pid)
            self._oom_before = oom_kills(self._cgroup)

    def _reap(self) -> None:
        """SIGCHLD: reap every exited child (the process, and zombies reparented from the container)."""
        while True:
            try:
                pid, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid and self._exit_raw is None:
                self._exit_raw = raw
                self._finished_ns = time.time_ns()
                self.status = "stopped"
                self._finishing = self.loop.create_task(self._finish(_exit_code(raw)))

    async def _finish(self, exit_code: int) -> None:
        await self.io.drain_outputs(OUTPUT_DRAIN_TIMEOUT)
        self.io.close()
        oom = oom_kills(self._cgroup) > self._oom_before
        if self.cfg.mode == "init":
            try:
                self.backend.delete(self.cfg.container_id)
            except RuntimeFailure as exc:
                log.error("deleting %s: %s", self.cfg.container_id, exc.message)
        if self._start_error is not None:
            exit_code = start_error_exit_code(self._start_error)
        self._write_exit(ExitStatus(exit_code, oom, rfc3339_nano(self._finished_ns or time.time_ns()),
                                    self._start_error))

    def _write_exit(self, status: ExitStatus) -> None:
        try:
            write_exit(self.cfg.state_dir, status)
        except OSError:
            log.exception("writing exit status")
        self.exit_status = status
        self.status = "stopped"
        self.finished.set()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            line = await reader.readline()
            if not line:
                return
            try:
                request = decode_message(line)
                if request.get("op") == "attach":
                    await self._attach(request, reader, writer)
                    return
                response = {"ok": True, **await self._dispatch(request)}
            except (BerthError, RuntimeFailure, ValueError, KeyError) as exc:
                response = error_response(exc)
            writer.write(encode_message(response))
            await writer.drain()
        except ConnectionError as exc:
            log.debug("connection dropped: %s", exc)
        finally:
            writer.close()
            self._connections.discard(task)

    async def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "start":
            self._start()
            return {"pid": self.pid}
        if op == "kill":
            self._kill(int(request["signal"]))
            return {}
        if op == "resize":
            self.io.resize(int(request["height"]), int(request["width"]))
            return {}
        if op == "state":
            code = self.exit_status.exit_code if self.exit_status else None
            return dataclasses.asdict(ShimState(self.pid, self.status, code))
        if op == "wait":
            await self.finished.wait()
            assert self.exit_status is not None
            return self.exit_status.to_dict()
        raise InvalidParameter(f"unknown shim request: {op!r}")

    def _start(self) -> None:
        """Run the process: ``start`` the created init, or exec the process (exec mode)."""
        if self.status != "created" or self.exit_status is not None:
            raise Conflict(f"cannot start {self.cfg.id}: process is {self.status}")
        try:
            if self.cfg.mode == "init":
                self.backend.start(self.cfg.container_id)
            else:
                self._adopt(self.backend.exec(self.cfg.container_id, self.cfg.init_pid or 0,
                                              self.cfg.process or {}, self.io.child_stdio(), self.cfg.terminal))
        except RuntimeFailure as exc:
            self._start_error = exc.message
            self._abandon()
            raise
        self.status = "running"
        self._reap()

    def _abandon(self) -> None:
        """After a failed start: end the process we hold (if any) so the shim can exit."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            return
        self.status = "stopped"
        self._finishing = self.loop.create_task(self._finish(start_error_exit_code(self._start_error or "")))

    def _kill(self, sig: int) -> None:
        if not 0 < sig < signal.NSIG:
            raise InvalidParameter(f"invalid signal: {sig}")
        if not self.pid or self._exit_raw is not None:
            raise Conflict(f"process {self.cfg.id} is not running")
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            raise Conflict(f"process {self.cfg.id} is not running") from None

    async def _attach(self, request: dict[str, Any], reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        writer.write(encode_message({"ok": True}))
        client = self.io.attach(writer, bool(request.get("stdout")), bool(request.get("stderr")))
        if self.exit_status is not None:
            await self.io.close_clients(self.exit_status, LINGER)
            return
        want_stdin = bool(request.get("stdin"))
        try:
            while data := await reader.read(READ_SIZE):
                if want_stdin:
                    self.io.write_stdin(data)
                    await self.io.stdin_room.wait()
        except ConnectionError:
            pass
        if want_stdin and self.cfg.stdin_once:
            self.io.close_stdin()
        await client.gone.wait()


def cgroup_path(pid: int) -> str | None:
    """The cgroup path of ``pid`` (its ``memory`` hierarchy group on v1, its unified group on
    v2), from ``/proc/<pid>/cgroup`` (proc(5)); None when unknown."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    groups = {controllers: path for _, controllers, path in (line.split(":", 2) for line in lines)}
    memory = [path for controllers, path in groups.items() if "memory" in controllers.split(",")]
    return memory[0] if memory else groups.get("")


def oom_kills(path: str | None) -> int:
    """OOM kills so far in cgroup ``path`` (berth.runtime.cgroups); 0 when unknown."""
    if path is None:
        return 0
    try:
        return cgroups.oom_kills(path)
    except (OSError, ValueError, KeyError):
        return 0


def _exit_code(raw: int) -> int:
    """Docker's exit code: the status, or 128 + N when killed by signal N."""
    if os.WIFSIGNALED(raw):
        return 128 + os.WTERMSIG(raw)
    return os.waitstatus_to_exitcode(raw)


if __name__ == "__main__":  # for debugging: python -m berth.runtime.shim '<ShimConfig JSON>'
    logging.basicConfig(level=logging.INFO)
    main(ShimConfig.from_json(sys.argv[1]))
