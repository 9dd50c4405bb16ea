"""Attach and logs streams: relaying a hijacked client connection to a shim, and log output.

Without a terminal, output uses docker's 8-byte multiplexing header (``[stream, 0, 0, 0,
size (4 bytes big-endian)]``, Engine API "Attach to a container"); with a terminal it is raw.
The detach key sequence (default ctrl-p ctrl-q) is recognised in the client's stdin by the daemon
when the session has a terminal, as dockerd does (its escape proxy wraps stdin only with a TTY:
piped stdin is binary data and passes untouched); the client's half-close ends stdin (and closes
the container's stdin when the container was created with ``StdinOnce``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from berth.aio import spawn
from berth.errors import InvalidParameter

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q
_HEADER = struct.Struct(">BxxxL")


def frame(stream: int, data: bytes) -> bytes:
    """One multiplexed frame (stream 1 stdout, 2 stderr)."""
    return _HEADER.pack(stream, len(data)) + data


def parse_detach_keys(spec: str) -> bytes:
    """docker's ``--detach-keys`` syntax (``ctrl-p,ctrl-q``, ``a``, ``ctrl-@``...) -> bytes.

    Raises InvalidParameter with docker's message for an invalid sequence.
    """
    if not spec:
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in spec.split(","):
        if len(key) == 1:
            out.append(ord(key))
            continue
        lowered = key.lower()
        if lowered.startswith("ctrl-") and len(key) == 6:
            char = lowered[5]
            if "a" <= char <= "z":
                out.append(ord(char) - ord("a") + 1)
                continue
            specials = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if char in specials:
                out.append(specials[char])
                continue
        raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in a byte stream split into arbitrary chunks; empty ``keys``
    (a session without a terminal) pass every byte through."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = b""

    def flush(self) -> bytes:
        """The bytes held as a possible start of the sequence, released (the input ended)."""
        held, self._held = self._held, b""
        return held

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Returns ``(bytes to forward, detached)``; bytes that may start the sequence are held."""
        if not self.keys or (not self._held and self.keys[0] not in data):
            return data, False
        out = bytearray()
        for byte in data:
            candidate = self._held + bytes([byte])
            if self.keys and self.keys.startswith(candidate):
                self._held = candidate
                if candidate == self.keys:
                    self._held = b""
                    return bytes(out), True
                continue
            out += self._held
            self._held = b""
            if self.keys and self.keys[:1] == bytes([byte]):
                self._held = bytes([byte])
            else:
                out.append(byte)
        return bytes(out), False


@dataclass
class AttachSession:
    """One attached client: its raw connection and what it asked for."""

    reader: Any
    writer: asyncio.StreamWriter
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    stdin_once: bool
    detach_keys: bytes = DEFAULT_DETACH_KEYS
    done: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def finish(self, how: str) -> None:
        if not self.done.done():
            self.done.set_result(how)


def _finish_session(session: AttachSession, task: asyncio.Task[str]) -> None:
    """Done callback of a relay task: the session ends as the relay said, or "closed" on error."""
    session.finish(task.result() if not task.cancelled() and task.exception() is None else "closed")


async def relay(session: AttachSession, stream: Any) -> str:
    """Copy shim output to the client and client stdin to the shim until the process ends, the
    client detaches or goes away. Returns ``"exited"``, ``"detached"`` or ``"closed"``."""

    async def pump_out() -> str:
        while True:
            item = await stream.read()
            if item is None:
                return "exited"
            kind, data = item
            if kind not in (1, 2) or not data:
                continue
            session.writer.write(data if session.tty else frame(kind, data))
            try:
                await session.writer.drain()
            except (ConnectionError, RuntimeError):
                return "closed"

    async def pump_in() -> str:
        scanner = DetachScanner(session.detach_keys if session.tty else b"")
        while True:
            try:
                data = await session.reader.read(65536)
            except (ConnectionError, asyncio.IncompleteReadError):
                data = b""
            if not data:
                held = scanner.flush()
                if held:
                    stream.write(held)
                    with contextlib.suppress(ConnectionError):
                        await stream.drain()
                if session.stdin_once:
                    stream.close_stdin()
                return "eof"
            forward, detached = scanner.feed(data)
            if forward:
                stream.write(forward)
                with contextlib.suppress(ConnectionError):
                    await stream.drain()
            if detached:
                return "detached"

    out_task = asyncio.ensure_future(pump_out())
    in_task = asyncio.ensure_future(pump_in()) if session.stdin else None
    try:
        while True:
            waiting = {out_task} | ({in_task} if in_task is not None and not in_task.done() else set())
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if out_task.done():
                return out_task.result()
            if in_task is not None and in_task.done() and in_task.result() == "detached":
                return "detached"
    finally:
        for task in (out_task, in_task):
            if task is not None and not task.done():
                task.cancel()
        stream.close()


class AttachHub:
    """Clients waiting for a container to start (``docker run`` attaches before it starts)."""

    def __init__(self) -> None:
        self._pending: dict[str, list[AttachSession]] = {}

    def add_pending(self, cid: str, session: AttachSession) -> None:
        self._pending.setdefault(cid, []).append(session)

    def discard(self, cid: str, session: AttachSession) -> None:
        sessions = self._pending.get(cid, [])
        if session in sessions:
            sessions.remove(session)

    async def connect_pending(self, container: Any, shim: Any) -> None:
        """Attach every waiting client to the newly created process (before it starts)."""
        for session in self._pending.pop(container.id, []):
            if session.done.done():
                continue
            stream = await shim.attach(session.stdin, session.stdout, session.stderr)
            task = spawn(relay(session, stream), name=f"attach-{container.short_id}")
            task.add_done_callback(functools.partial(_finish_session, session))

    def fail_pending(self, cid: str) -> None:
        """The start failed: release the waiting clients."""
        for session in self._pending.pop(cid, []):
            session.finish("failed")


async def log_frames(entries: AsyncIterator[Any], tty: bool, timestamps: bool) -> AsyncIterator[bytes]:
    """Encode log entries for ``GET /containers/{id}/logs`` (multiplexed unless ``tty``)."""
    async for entry in entries:
        data = entry.data
        if timestamps:
            data = rfc3339_nano_fixed(entry.time).encode() + b" " + data
        yield data if tty else frame(2 if entry.stream == "stderr" else 1, data)


def rfc3339_nano_fixed(ns: int) -> str:
    """docker's ``RFC3339NanoFixed`` (always 9 fraction digits), used by ``logs -t``."""
    import time

    secs, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"
