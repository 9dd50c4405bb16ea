"""Bridges between asyncio HTTP bodies and blocking file-like code run in worker threads.

Tar work (save, export, archive, load, import) is blocking and runs in a thread; the HTTP side is
asyncio. :class:`SyncBodyReader` lets a thread ``read()`` a request body, and
:func:`iter_from_writer` turns a function that writes to a file object into an async iterator of
chunks, with back-pressure (a bounded queue) so a slow client does not buffer a whole image in memory.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Callable
from typing import Any

from berth.api.http import Body

_DONE = object()


class SyncBodyReader:
    """A blocking ``read(n)`` over an async :class:`Body`, for use from a worker thread."""

    def __init__(self, body: Body, loop: asyncio.AbstractEventLoop) -> None:
        self._body = body
        self._loop = loop
        self._buffer = b""
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            rest = asyncio.run_coroutine_threadsafe(self._body.read(), self._loop).result()
            data, self._buffer = self._buffer + rest, b""
            return data
        while len(self._buffer) < n and not self._eof:
            chunk = asyncio.run_coroutine_threadsafe(self._body.read(1 << 20), self._loop).result()
            if not chunk:
                self._eof = True
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def readable(self) -> bool:
        return True


class _QueueWriter:
    """File-like object whose ``write`` hands chunks to the event loop through a bounded queue."""

    def __init__(self, q: queue.Queue[Any], chunk: int = 1 << 16) -> None:
        self._q = q
        self._buf = bytearray()
        self._chunk = chunk
        self.closed_by_reader = False

    def write(self, data: bytes) -> int:
        if self.closed_by_reader:
            raise BrokenPipeError("client went away")
        self._buf += data
        if len(self._buf) >= self._chunk:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            self._q.put(bytes(self._buf))
            self._buf.clear()

    def tell(self) -> int:  # tarfile asks for it in some modes
        return 0


async def iter_from_writer(produce: Callable[[Any], None], *, maxsize: int = 32) -> AsyncIterator[bytes]:
    """Run ``produce(fileobj)`` in a thread and yield what it writes.

    An exception raised by ``produce`` is re-raised here after the chunks already written.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
    writer = _QueueWriter(q)
    loop = asyncio.get_running_loop()

    def run() -> None:
        try:
            produce(writer)
            writer.flush()
            q.put(_DONE)
        except BaseException as exc:  # handed to the reader side
            q.put(exc)

    task = loop.run_in_executor(None, run)
    try:
        while True:
            item = await loop.run_in_executor(None, q.get)
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        writer.closed_by_reader = True
        while not task.done():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.01)
        await task
