"""Docker's ``json-file`` log driver: the writer (in the shim) and the reader (for ``logs``).

File format (docker docs, "JSON File logging driver"): one JSON object per line,
``{"log":"text\\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}``, written by the
daemon's copier. What docker does and we do too:

* output is cut at each newline; a line longer than 16 KiB is written as 16 KiB pieces whose
  ``log`` has no trailing newline (a *partial* entry); the reader joins them back;
* at exit, whatever is buffered is written without a newline;
* with a tty there is only ``stdout`` and the pty's ``\\r\\n`` is kept as is;
* ``log`` is escaped the way docker's ``jsonlog`` marshaller does: ``\\"``, ``\\\\``, ``\\n``,
  ``\\r``, other control characters and ``<``, ``>``, ``&`` as ``\\u00XX``, U+2028/U+2029 as
  ``\\u2028``/``\\u2029``, and each byte of invalid UTF-8 as ``\\ufffd``;
* ``time`` is Go's RFC3339Nano in UTC (trailing zeros of the fraction trimmed).

Times are handled as integer nanoseconds since the Unix epoch throughout.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass

from berth.timeutil import parse_rfc3339_ns, rfc3339_nano

PIECE_SIZE = 16 * 1024
"""Longest ``log`` value written at once, newline included (docker's copier buffer, 16 KiB)."""

STREAMS = ("stdout", "stderr")

# Invalid UTF-8 bytes arrive as lone surrogates U+DC80..U+DCFF (one per byte, as Go's
# utf8.DecodeRune gives one RuneError per byte) and are written as the escape \ufffd.
_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\udc80-\udcff]')
# One str.translate pass instead of a Python call per escaped character: output full of control
# bytes (binary, NULs) is common and was the log writer's bottleneck.
_ESCAPE_TABLE: dict[int, str] = {code: f"\\u{code:04x}" for code in range(0x20)}
_ESCAPE_TABLE.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r",
                      ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                      0x2028: "\\u2028", 0x2029: "\\u2029"})
_ESCAPE_TABLE.update({code: "\\ufffd" for code in range(0xDC80, 0xDD00)})


def json_string(data: bytes) -> str:
    """``data`` as a JSON string literal (with quotes), escaped exactly as docker's json-file does."""
    # Most pieces are one line of plain text: its newline alone must not send it down the slow path.
    newline = data.endswith(b"\n")
    text = (data[:-1] if newline else data).decode("utf-8", errors="surrogateescape")
    if _NEEDS_ESCAPE.search(text) is not None:
        text = text.translate(_ESCAPE_TABLE)
    return '"' + text + ('\\n"' if newline else '"')


def encode_entry(data: bytes, stream: str, time_ns: int) -> bytes:
    """One log line (newline-terminated) for ``data`` read from ``stream`` at ``time_ns``."""
    return f'{{"log":{json_string(data)},"stream":"{stream}","time":"{rfc3339_nano(time_ns)}"}}\n'.encode()


def split_output(buffer: bytearray) -> list[bytes]:
    """Cut the complete pieces off the front of ``buffer`` (modified in place).

    A piece is a line up to and including its newline when that fits in :data:`PIECE_SIZE`, or
    the first :data:`PIECE_SIZE` bytes of a longer line. What remains is a line still being written.
    """
    pieces = []
    start, size = 0, len(buffer)
    while start < size:
        newline = buffer.find(b"\n", start, start + PIECE_SIZE)
        if newline >= 0:
            end = newline + 1
        elif size - start >= PIECE_SIZE:
            end = start + PIECE_SIZE
        else:
            break
        pieces.append(bytes(buffer[start:end]))
        start = end
    del buffer[:start]
    return pieces


class JsonLogWriter:
    """Appends a container's output to its json-file log, buffered per stream.

    ``path`` is created with mode 0640 if missing and always appended to (a restarted container
    keeps its log). ``clock`` returns the current time in nanoseconds (injectable for tests).
    OSError from the file system propagates.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], int] = time.time_ns) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._clock = clock
        self._pending: dict[str, bytearray] = {}

    def write(self, stream: str, data: bytes) -> None:
        """Log ``data`` just read from ``stream`` ("stdout" or "stderr"); complete pieces are written now."""
        buffer = self._pending.setdefault(stream, bytearray())
        buffer += data
        pieces = split_output(buffer)
        if pieces:
            self._append(stream, pieces, self._clock())

    def flush(self) -> None:
        """Write whatever is buffered as partial entries (no trailing newline): used at exit."""
        now = self._clock()
        for stream, buffer in self._pending.items():
            if buffer:
                self._append(stream, [bytes(buffer)], now)
                buffer.clear()

    def close(self) -> None:
        """Flush and close the file. Idempotent."""
        if self._fd >= 0:
            self.flush()
            os.close(self._fd)
            self._fd = -1

    def _append(self, stream: str, pieces: list[bytes], now: int) -> None:
        tail = f',"stream":"{stream}","time":"{rfc3339_nano(now)}"}}\n'.encode()
        block = b"".join([b'{"log":' + json_string(piece).encode() + tail for piece in pieces])
        view = memoryview(block)
        while view:
            view = view[os.write(self._fd, view):]


@dataclass(frozen=True)
class LogEntry:
    """One logical log message: ``stream`` "stdout"/"stderr", raw ``data`` (partial pieces joined,
    trailing newline kept when there was one) and ``time`` in nanoseconds since the epoch (of the
    first piece)."""

    stream: str
    data: bytes
    time: int


def decode_line(line: bytes) -> tuple[str, bytes, int]:
    """Parse one log line into ``(stream, data, time_ns)``. Raises ValueError on a malformed line."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("log line is not a JSON object")
    return (str(record.get("stream", "stdout")), str(record.get("log", "")).encode("utf-8"),
            parse_rfc3339_ns(str(record["time"])))


class EntryJoiner:
    """Joins partial pieces back into whole entries (sans-I/O: feed decoded lines, get entries).

    Pieces of one stream are joined until one ends with a newline; the other stream's entries may
    come in between, as they did when the output was written.
    """

    def __init__(self) -> None:
        self._open: dict[str, LogEntry] = {}

    def feed(self, stream: str, data: bytes, time_ns: int) -> LogEntry | None:
        """Add one piece; return the entry it completes, if any."""
        started = self._open.pop(stream, None)
        entry = LogEntry(stream, started.data + data, started.time) if started else LogEntry(stream, data, time_ns)
        if entry.data.endswith(b"\n"):
            return entry
        self._open[stream] = entry
        return None

    def finish(self) -> list[LogEntry]:
        """Entries left without a newline (output cut at exit), oldest first."""
        left = sorted(self._open.values(), key=lambda entry: entry.time)
        self._open.clear()
        return left


class LogTail:
    """Incremental reader of a json-file log: each :meth:`read_available` returns the entries
    completed by what was appended since the last call. Malformed lines are skipped."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 -- closed by close()
        self._rest = b""
        self._joiner = EntryJoiner()

    def read_available(self) -> list[LogEntry]:
        """Entries completed by the bytes appended since the previous call."""
        data = self._rest + self._file.read()
        lines = data.split(b"\n")
        self._rest = lines.pop()
        entries = []
        for line in lines:
            try:
                entry = self._joiner.feed(*decode_line(line))
            except (ValueError, KeyError):
                continue
            if entry is not None:
                entries.append(entry)
        return entries

    def finish(self) -> list[LogEntry]:
        """Entries cut without a newline at the end of the log."""
        return self.read_available() + self._joiner.finish()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


@dataclass(frozen=True)
class LogFilter:
    """What ``logs`` asks for (Engine API ``GET /containers/{id}/logs``): times in nanoseconds,
    both bounds inclusive, ``tail`` counts entries of both streams from the end (None: all)."""

    since: int | None = None
    until: int | None = None
    tail: int | None = None
    stdout: bool = True
    stderr: bool = True

    def wants(self, entry: LogEntry) -> bool:
        """True when ``entry`` passes the time and stream filters."""
        if self.since is not None and entry.time < self.since:
            return False
        if self.until is not None and entry.time > self.until:
            return False
        return self.stdout if entry.stream == "stdout" else self.stderr

    def apply(self, entries: Iterable[LogEntry]) -> list[LogEntry]:
        """Tail first, then the time and stream filters, as docker's json-file reader does."""
        if self.tail is not None and self.tail >= 0:
            entries = deque(entries, maxlen=self.tail) if self.tail else []
        return [entry for entry in entries if self.wants(entry)]


def read_log(path: str | os.PathLike[str], *, since: int | None = None, until: int | None = None,
             tail: int | None = None, follow: bool = False, stdout: bool = True, stderr: bool = True,
             ended: Callable[[], bool] | None = None, poll_interval: float = 0.1) -> Iterator[LogEntry]:
    """Entries of the json-file log at ``path``, oldest first.

    ``since``/``until`` are nanoseconds since the epoch; ``tail`` keeps the last N entries of
    what is already written. With ``follow``, keep polling the file every ``poll_interval`` seconds
    for new entries until ``ended()`` is true (the container stopped) or an entry is past ``until``.
    A missing file raises FileNotFoundError.
    """
    wanted = LogFilter(since, until, tail, stdout, stderr)
    log = LogTail(path)
    try:
        entries = log.read_available() if follow else log.finish()
        yield from wanted.apply(entries)
        while follow:
            stopping = ended is not None and ended()
            entries = log.finish() if stopping else log.read_available()
            for entry in entries:
                if until is not None and entry.time > until:
                    return
                if wanted.wants(entry):
                    yield entry
            if stopping:
                return
            time.sleep(poll_interval)
    finally:
        log.close()


async def follow_log(path: str | os.PathLike[str], ended: asyncio.Event, *, since: int | None = None,
                     until: int | None = None, tail: int | None = None, stdout: bool = True,
                     stderr: bool = True, poll_interval: float = 0.1) -> AsyncIterator[LogEntry]:
    """asyncio variant of ``read_log(..., follow=True)``: yields what is written until ``ended``
    is set (then drains the rest of the file) or an entry is past ``until``.

    Raises FileNotFoundError when the log does not exist.
    """
    wanted = LogFilter(since, until, tail, stdout, stderr)
    log = LogTail(path)
    try:
        for entry in wanted.apply(log.read_available()):
            yield entry
        while True:
            stopping = ended.is_set()
            for entry in log.finish() if stopping else log.read_available():
                if until is not None and entry.time > until:
                    return
                if wanted.wants(entry):
                    yield entry
            if stopping:
                return
            try:
                await asyncio.wait_for(ended.wait(), poll_interval)
            except TimeoutError:
                pass
    finally:
        log.close()
