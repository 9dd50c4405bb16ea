"""The daemon's side of the shim protocol (asyncio): start, kill, resize, state, wait, attach.

A client holds nothing but the shim's state directory, so a restarted daemon builds a new one
and carries on (live-restore). Protocol and files: :mod:`berth.runtime.shimproto`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path
from typing import Any

from berth.errors import Conflict
from berth.runtime.shimproto import (
    FRAME_HEADER,
    SOCKET_NAME,
    STREAM_CONTROL,
    ExitStatus,
    ShimState,
    check_response,
    decode_message,
    encode_message,
    read_exit,
)
from berth.timeutil import rfc3339_nano

__all__ = ["AttachStream", "ShimClient", "ShimGone", "read_exit"]

LOST_SHIM_EXIT_CODE = 137
"""Exit code reported when a shim died without writing ``exit.json`` (128 + SIGKILL, as
containerd reports for a task whose shim is gone)."""


class ShimGone(Conflict):
    """The shim is not running (no socket, or nobody listening): the process is not running."""


class AttachStream:
    """An attached connection: output frames in, raw stdin out.

    :meth:`read` returns ``(stream, data)`` with stream 1 (stdout) or 2 (stderr), and None at
    the end; the exit status sent before the end is then in :attr:`exit_status` (None when the
    shim went away without one).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.exit_status: ExitStatus | None = None

    async def read(self) -> tuple[int, bytes] | None:
        """The next output frame, or None once the shim closed the stream."""
        while True:
            try:
                stream, length = FRAME_HEADER.unpack(await self._reader.readexactly(FRAME_HEADER.size))
                data = await self._reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            if stream != STREAM_CONTROL:
                return stream, data
            self.exit_status = ExitStatus.from_dict(decode_message(data))

    def write(self, data: bytes) -> None:
        """Send ``data`` to the process's stdin (ignored by the shim unless attached with stdin)."""
        self._writer.write(data)

    async def drain(self) -> None:
        """Wait until written stdin has been handed to the socket."""
        await self._writer.drain()

    def close_stdin(self) -> None:
        """Half-close: EOF on stdin (the shim closes the process's stdin if ``stdin_once``)."""
        if self._writer.can_write_eof() and not self._writer.is_closing():
            self._writer.write_eof()

    def close(self) -> None:
        """Detach: close the connection (the process keeps running)."""
        self._writer.close()


class ShimClient:
    """Talks to the shim whose state directory is ``state_dir``.

    Every call opens its own connection. Calls raise :class:`ShimGone` when the shim is not
    running, the shim's own errors as :class:`berth.runtime.process.RuntimeFailure` (runtime
    errors), :class:`berth.errors.Conflict` or :class:`berth.errors.InvalidParameter`.
    """

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.socket_path = self.state_dir / SOCKET_NAME

    async def start(self) -> int:
        """Run the process (``start`` of the created init, or the exec). Returns its host PID.

        Raises RuntimeFailure with the runtime's message (e.g. ``exec: "foo": executable file
        not found in $PATH``); the shim then ends and leaves ``exit.json``.
        """
        return int((await self._call({"op": "start"}))["pid"])

    async def kill(self, sig: int) -> None:
        """Send signal number ``sig`` to the process. Conflict when it is not running."""
        await self._call({"op": "kill", "signal": int(sig)})

    async def resize(self, height: int, width: int) -> None:
        """Resize the process's terminal (rows, columns). InvalidParameter without a tty."""
        await self._call({"op": "resize", "height": int(height), "width": int(width)})

    async def state(self) -> ShimState:
        """PID, status (created/running/stopped) and exit code of the process."""
        response = await self._call({"op": "state"})
        return ShimState(int(response["pid"]), str(response["status"]), response.get("exit_code"))

    async def wait(self) -> ExitStatus:
        """Wait for the process to end; works as well when the shim has already exited.

        Falls back to ``exit.json``; if the shim died without writing one, reports
        :data:`LOST_SHIM_EXIT_CODE` with ``error`` saying so.
        """
        try:
            return ExitStatus.from_dict(await self._call({"op": "wait"}))
        except ShimGone:
            pass
        status = read_exit(self.state_dir)
        if status is not None:
            return status
        return ExitStatus(LOST_SHIM_EXIT_CODE, False, rfc3339_nano(),
                          f"shim {self.state_dir.name} exited without an exit status")

    async def attach(self, stdin: bool, stdout: bool, stderr: bool) -> AttachStream:
        """Attach to the process's streams; output from now on comes as frames.

        If the process has already ended the stream carries just the exit status.
        """
        request = {"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr}
        reader, writer = await self._connect()
        try:
            check_response(await self._exchange(reader, writer, request))
        except BaseException:
            writer.close()
            raise
        return AttachStream(reader, writer)

    def is_alive(self) -> bool:
        """True when the shim accepts connections on its socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.socket_path))
            except OSError:
                return False
        return True

    def read_exit(self) -> ExitStatus | None:
        """The ``exit.json`` the shim left, or None."""
        return read_exit(self.state_dir)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.open_unix_connection(str(self.socket_path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ShimGone(f"shim {self.state_dir.name} is not running") from None

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        reader, writer = await self._connect()
        try:
            return check_response(await self._exchange(reader, writer, request))
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        request: dict[str, Any]) -> dict[str, Any]:
        """Send ``request``, read the response line; ShimGone if the shim closes first (it is exiting)."""
        try:
            writer.write(encode_message(request))
            await writer.drain()
            line = await reader.readline()
        except ConnectionError:
            line = b""
        if not line.endswith(b"\n"):
            raise ShimGone(f"shim {self.state_dir.name} exited before answering")
        return decode_message(line)
