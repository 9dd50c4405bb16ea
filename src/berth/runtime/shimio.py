"""The shim's side of a process's stdio: the pipes (or pty master), output fanned out to the
json-file log and to attached clients as frames (:mod:`shimproto`), stdin queued from clients.

Everything runs on the shim's event loop; the fds are non-blocking and watched by it. Clients
that stop reading are dropped rather than let the process block on a full pipe (docker's
attach does the same with its broadcaster).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import termios

from berth.errors import InvalidParameter
from berth.runtime.jsonlog import JsonLogWriter
from berth.runtime.process import Stdio
from berth.runtime.shimproto import (
    STREAM_CONTROL,
    STREAM_STDERR,
    STREAM_STDOUT,
    ExitStatus,
    encode_frame,
    encode_message,
)

__all__ = ["Attached", "ProcessIO", "READ_SIZE"]

log = logging.getLogger("berth.shim")

READ_SIZE = 65536
CLIENT_BACKLOG_LIMIT = 8 << 20
"""Bytes of unsent output after which an attached client that does not read is dropped."""
STDIN_BACKLOG_LIMIT = 1 << 20
"""Bytes of stdin queued for a process that does not read before attach stops reading."""
STREAM_NAMES = {STREAM_STDOUT: "stdout", STREAM_STDERR: "stderr"}


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
