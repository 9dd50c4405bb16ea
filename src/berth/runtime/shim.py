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
answer waiters, give clients a moment to read, exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import fcntl
import importlib
import logging
import os
import signal
import struct
import sys
import termios
import time
from pathlib import Path
from typing import Any, NoReturn

from berth.errors import BerthError, Conflict, InvalidParameter
from berth.runtime import cgroups
from berth.runtime.jsonlog import JsonLogWriter
from berth.runtime.process import Created, RuntimeBackend, RuntimeFailure, Stdio
from berth.runtime.runc import RuncBackend
from berth.runtime.shimproto import (
    PID_FILE,
    STREAM_CONTROL,
    STREAM_STDERR,
    STREAM_STDOUT,
    ExitStatus,
    ShimConfig,
    ShimState,
    decode_message,
    encode_frame,
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
READ_SIZE = 65536
CLIENT_BACKLOG_LIMIT = 8 << 20
"""Bytes of unsent output after which an attached client that does not read is dropped."""
STDIN_BACKLOG_LIMIT = 1 << 20
"""Bytes of stdin queued for a process that does not read before attach stops reading."""
STREAM_NAMES = {STREAM_STDOUT: "stdout", STREAM_STDERR: "stderr"}


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
    cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = cfg.state_dir / f".{PID_FILE}.tmp"
    temp.write_text(str(os.getpid()))
    os.replace(temp, cfg.state_dir / PID_FILE)


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


class Attached:
    """One attached client: the ``streams`` it gets; ``gone`` is set once it is closed."""

    def __init__(self, writer: asyncio.StreamWriter, streams: frozenset[int]) -> None:
        self.writer = writer
        self.streams = streams
        self.gone = asyncio.Event()

    def send(self, frame: bytes) -> bool:
        """Queue ``frame``; False (and the client closed) when it is gone or does not keep up."""
        transport = self.writer.transport
        if self.writer.is_closing() or transport.get_write_buffer_size() > CLIENT_BACKLOG_LIMIT:
            self.close()
            return False
        self.writer.write(frame)
        return True

    async def finish(self, status: ExitStatus, timeout: float) -> None:
        """Send the exit status as the last frame, let the client read it, close."""
        if self.send(encode_frame(STREAM_CONTROL, encode_message(status.to_dict()))):
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(self.writer.drain(), timeout)
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self.writer.close()
        self.gone.set()


class ProcessIO:
    """The process's stdio on the shim's side: output fan-out to the log and attached clients,
    stdin from clients, the pty. Pipes are non-blocking and watched by the running event loop."""

    def __init__(self, terminal: bool, open_stdin: bool, log_writer: JsonLogWriter | None) -> None:
        self.terminal = terminal
        self.open_stdin = open_stdin
        self.log_writer = log_writer
        self.clients: set[Attached] = set()
        self._loop = asyncio.get_running_loop()
        self._outputs: dict[int, int] = {}
        self._child_fds: list[int] = []
        self._stdin: int | None = None
        self._stdin_buffer = bytearray()
        self._stdin_closing = False
        self.stdin_room = asyncio.Event()
        """Set while queued stdin is under :data:`STDIN_BACKLOG_LIMIT` (attach stops reading otherwise)."""
        self.stdin_room.set()
        self._pty: int | None = None
        self._outputs_closed = asyncio.Event()
        self._started = False

    def child_stdio(self) -> Stdio:
        """Make the pipes (or /dev/null placeholders with a terminal) and return the child's ends."""
        if self.terminal:
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            self._child_fds = [null]
            return Stdio(None, null, null)
        stdin = None
        if self.open_stdin:
            stdin, self._stdin = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self._outputs = {out_r: STREAM_STDOUT, err_r: STREAM_STDERR}
        for fd in (out_r, err_r, self._stdin):
            if fd is not None:
                os.set_blocking(fd, False)
        self._child_fds = [fd for fd in (stdin, out_w, err_w) if fd is not None]
        return Stdio(stdin, out_w, err_w)

    def process_started(self, pty_master: int | None) -> None:
        """The process exists: drop the child's ends, start copying its output."""
        self._close_child_fds()
        if pty_master is not None:
            self._pty = pty_master
            self._outputs = {pty_master: STREAM_STDOUT}
            if self.open_stdin:
                self._stdin = os.dup(pty_master)
        for fd in self._outputs:
            os.set_blocking(fd, False)
            self._loop.add_reader(fd, self._on_output, fd)
        if self._stdin is not None:
            os.set_blocking(self._stdin, False)
            if self._stdin_buffer or self._stdin_closing:
                self._flush_stdin()
        self._started = True
        if not self._outputs:
            self._outputs_closed.set()

    def attach(self, writer: asyncio.StreamWriter, stdout: bool, stderr: bool) -> Attached:
        """Register a client for stdout and/or stderr frames (with a tty all output is stdout)."""
        streams = {STREAM_STDOUT} if stdout else set()
        if stderr and not self.terminal:
            streams.add(STREAM_STDERR)
        client = Attached(writer, frozenset(streams))
        self.clients.add(client)
        return client

    def _on_output(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO on a pty master once the slave side is gone
            data = b""
        if not data:
            self._close_output(fd)
            return
        stream = self._outputs[fd]
        if self.log_writer is not None:
            try:
                self.log_writer.write(STREAM_NAMES[stream], data)
            except OSError:
                log.exception("writing the container log")
        frame = encode_frame(stream, data)
        for client in list(self.clients):
            if stream in client.streams and not client.send(frame):
                self.clients.discard(client)

    def _close_output(self, fd: int) -> None:
        self._loop.remove_reader(fd)
        del self._outputs[fd]
        if fd != self._pty:
            os.close(fd)
        if not self._outputs:
            self._outputs_closed.set()

    async def drain_outputs(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until every output reached EOF, then stop reading."""
        if not self._started:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._outputs_closed.wait(), timeout)
        for fd in list(self._outputs):
            self._on_output(fd)
            if fd in self._outputs:
                self._close_output(fd)

    def write_stdin(self, data: bytes) -> None:
        """Queue ``data`` for the process's stdin; kept until the process exists (exec mode),
        dropped when there is no stdin (``open_stdin`` false) or it was closed."""
        if not self.open_stdin or self._stdin_closing:
            return
        self._stdin_buffer += data
        if self._stdin is not None:
            self._flush_stdin()
        if len(self._stdin_buffer) > STDIN_BACKLOG_LIMIT:
            self.stdin_room.clear()

    def close_stdin(self) -> None:
        """EOF on stdin once the queue is written (pipes only: a pty has no EOF of its own)."""
        if self.open_stdin and not self.terminal and not self._stdin_closing:
            self._stdin_closing = True
            if self._stdin is not None:
                self._flush_stdin()

    def _flush_stdin(self) -> None:
        fd = self._stdin
        if fd is None:
            return
        try:
            while self._stdin_buffer:
                del self._stdin_buffer[:os.write(fd, self._stdin_buffer)]
        except BlockingIOError:
            self._loop.add_writer(fd, self._flush_stdin)
            return
        except OSError:  # the process closed its stdin or is gone
            self._stdin_buffer.clear()
            self._stdin_closing = True
        finally:
            if len(self._stdin_buffer) <= STDIN_BACKLOG_LIMIT:
                self.stdin_room.set()
        self._loop.remove_writer(fd)
        if self._stdin_closing:
            os.close(fd)
            self._stdin = None

    def resize(self, height: int, width: int) -> None:
        """Set the pty's window size (TIOCSWINSZ). InvalidParameter without a terminal."""
        if self._pty is None:
            raise InvalidParameter("the process has no terminal")
        fcntl.ioctl(self._pty, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def close_clients(self, status: ExitStatus | None, timeout: float) -> None:
        """Send ``status`` to every attached client and close them (waiting at most ``timeout`` s)."""
        clients, self.clients = self.clients, set()
        if status is not None and clients:
            await asyncio.gather(*(client.finish(status, timeout) for client in clients))
        for client in clients:
            client.close()

    def close(self) -> None:
        """Stop watching and close every fd; flush and close the log. Idempotent."""
        for fd in list(self._outputs):
            self._close_output(fd)
        if self._stdin is not None:
            self._loop.remove_writer(self._stdin)
            os.close(self._stdin)
            self._stdin = None
        self._stdin_buffer.clear()
        self.stdin_room.set()
        if self._pty is not None:
            os.close(self._pty)
            self._pty = None
        self._close_child_fds()
        if self.log_writer is not None:
            try:
                self.log_writer.close()
            except OSError:
                log.exception("closing the container log")

    def _close_child_fds(self) -> None:
        for fd in self._child_fds:
            os.close(fd)
        self._child_fds = []


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
