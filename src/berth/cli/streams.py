"""The client side of attached streams: ``run``/``start -a``/``attach``/``exec`` and ``logs``.

Sources: Engine API v1.41 "Attach to a container" (hijacking, ``application/vnd.docker.raw-stream``,
the 8-byte stream header: type 0 stdin, 1 stdout, 2 stderr, 3 system error, then a big-endian uint32
payload size; no header when the container has a TTY), docker CLI reference "docker attach" (detach
keys: ``ctrl-<value>`` for a-z, @, [, \\, ], ^, _, or a single character, comma separated; default
``ctrl-p,ctrl-q``), and the ``/resize`` endpoints (``h`` and ``w`` in character cells).

Stdlib only; the terminal modes follow ``cfmakeraw`` as the docker CLI's ``term.MakeRaw`` does.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from berth.errors import InvalidParameter

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q
HEADER_SIZE = 8

# the signals `run`/`start -a` forward to a container without a TTY (docker's --sig-proxy)
PROXIED_SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM")

_CONTROL_NAMES = ["@", *"abcdefghijklmnopqrstuvwxyz", "[", "\\", "]", "^", "_"]


class StreamError(Exception):
    """The daemon sent a system-error frame (stream type 3) in a multiplexed stream."""


def parse_detach_keys(spec: str) -> bytes:
    """``ctrl-p,ctrl-q`` -> ``b"\\x10\\x11"``; ``a`` -> ``b"a"``; ``ctrl-@`` -> ``b"\\x00"``; ``DEL`` -> 127.

    Raises InvalidParameter ``Unknown character: 'KEY'`` (docker's ``term.ToBytes``).
    """
    codes = bytearray()
    for key in spec.split(","):
        if len(key) == 1:
            codes += key.encode("latin-1", "replace")[:1]
        elif key.startswith("ctrl-") and key[5:] in _CONTROL_NAMES:
            codes.append(_CONTROL_NAMES.index(key[5:]))
        elif key == "DEL":
            codes.append(127)
        else:
            raise InvalidParameter(f"Unknown character: '{key}'")
    return bytes(codes)


class EscapeFilter:
    """Finds the detach sequence in typed input, holding back a partial match until it is decided
    (the bytes of an abandoned partial match are passed on, as docker's escape proxy does)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Returns (bytes to forward, whether the whole sequence was seen)."""
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    self.matched = 0
                    return bytes(out), True
                continue
            out += self.keys[:self.matched]
            self.matched = 1 if byte == self.keys[0] else 0
            if not self.matched:
                out.append(byte)
        return bytes(out), False


class Demultiplexer:
    """Splits a multiplexed stream into its stdout and stderr payloads; feed it chunks as they come."""

    def __init__(self, stdout: Any, stderr: Any) -> None:
        self.targets = {0: stdout, 1: stdout, 2: stderr}
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        """Write every complete frame in ``data`` (plus what was held back). Raises StreamError."""
        self.buffer += data
        while len(self.buffer) >= HEADER_SIZE:
            kind = self.buffer[0]
            (size,) = struct.unpack(">I", self.buffer[4:HEADER_SIZE])
            if len(self.buffer) < HEADER_SIZE + size:
                return
            payload = self.buffer[HEADER_SIZE:HEADER_SIZE + size]
            self.buffer = self.buffer[HEADER_SIZE + size:]
            if kind == 3:
                raise StreamError(f"error from daemon in stream: {payload.decode('utf-8', 'replace')}")
            target = self.targets.get(kind)
            if target is None:
                raise StreamError(f"Unrecognized input header: {kind}")
            _write(target, payload)


def copy_stream(chunks: Iterable[bytes], *, tty: bool, stdout: Any, stderr: Any) -> None:
    """Copy a response body (``logs``, a finished attach) to the outputs, demultiplexing unless ``tty``."""
    demux = None if tty else Demultiplexer(stdout, stderr)
    for chunk in chunks:
        if demux is None:
            _write(stdout, chunk)
        else:
            demux.feed(chunk)


def _write(target: Any, data: bytes) -> None:
    target.write(data)
    target.flush()


def _read_input(stdin: Any) -> bytes:
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is not None:
        # os.read, not the buffered object: a daemon thread blocked in a buffered read makes
        # interpreter shutdown abort
        return os.read(fd, 32768)
    reader = getattr(stdin, "read1", None) or stdin.read
    return bytes(reader(32768))


def _pump_input(sock: socket.socket, stdin: Any, escape: EscapeFilter | None, close_on_eof: bool,
                detached: threading.Event) -> None:
    try:
        while True:
            data = _read_input(stdin)
            if not data:
                break
            seen = False
            if escape is not None:
                data, seen = escape.feed(data)
            if data:
                sock.sendall(data)
            if seen:
                detached.set()
                sock.shutdown(socket.SHUT_RDWR)
                return
        if close_on_eof:
            sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def stream_hijacked(sock: socket.socket, leftover: bytes, *, tty: bool, stdin: BinaryIO | None, stdout: Any,
                    stderr: Any, detach_keys: bytes | None, close_stdin_on_eof: bool = True) -> str:
    """Run an attached session on a hijacked connection until the output ends or the user detaches.

    ``sock``/``leftover`` come from ``APIClient.hijack``. ``stdin`` (a binary reader, or None when
    stdin is not attached) is copied to the socket by a daemon thread; at its EOF the socket's write
    side is shut down (``close_stdin_on_eof``) while the output keeps flowing. Output goes raw to
    ``stdout`` with a ``tty``, otherwise it is demultiplexed to ``stdout``/``stderr`` (binary writers).
    ``detach_keys`` (see :func:`parse_detach_keys`) are looked for in the input; when seen the
    connection is dropped without sending them. Returns ``"eof"`` or ``"detached"``; raises
    StreamError for a daemon error frame. The socket is closed on return.
    """
    detached = threading.Event()
    if stdin is not None:
        escape = EscapeFilter(detach_keys) if detach_keys else None
        threading.Thread(target=_pump_input, args=(sock, stdin, escape, close_stdin_on_eof, detached),
                         daemon=True, name="berth-stdin").start()
    demux = None if tty else Demultiplexer(stdout, stderr)
    try:
        chunk = leftover
        while True:
            if chunk:
                if demux is None:
                    _write(stdout, chunk)
                else:
                    demux.feed(chunk)
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
    finally:
        sock.close()
    return "detached" if detached.is_set() else "eof"


class RawTerminal:
    """Puts the terminal on ``fd`` (default stdin) in raw mode while the block runs, when it is a
    terminal and ``enabled``; restores the saved mode on exit. ``NORAW`` in the environment turns it off,
    as with docker."""

    def __init__(self, fd: int | None = None, enabled: bool = True) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.enabled = enabled and not os.environ.get("NORAW")
        self._saved: list[Any] | None = None

    def __enter__(self) -> RawTerminal:
        if not self.enabled or not os.isatty(self.fd):
            return self
        import termios
        self._saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        mode[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                     | termios.IGNCR | termios.ICRNL | termios.IXON)
        mode[1] &= ~termios.OPOST
        mode[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        mode[2] = (mode[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSAFLUSH, mode)
        return self

    def restore(self) -> None:
        """Put the saved mode back now (safe to call more than once)."""
        if self._saved is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def __exit__(self, *exc: object) -> None:
        self.restore()


def terminal_size(fd: int) -> tuple[int, int] | None:
    """(rows, columns) of the terminal on ``fd``, or None when it is not a terminal."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


def resize_loop(client: Any, path: str, fd: int | None = None, retries: int = 5) -> Callable[[], None]:
    """Keep a TTY's size in sync: ``POST path?h=ROWS&w=COLS`` now (retried a few times, as the process
    may not be up yet) and on every SIGWINCH. ``fd`` is the local terminal (default stdout). Returns a
    function that stops watching. Resize errors are ignored, as docker does after its retries."""
    from berth.client.api import APIError, ConnectionFailed
    term_fd = sys.stdout.fileno() if fd is None else fd

    def resize() -> bool:
        size = terminal_size(term_fd)
        if size is None or size == (0, 0):
            return True
        try:
            client.request("POST", path, {"h": size[0], "w": size[1]})
        except (APIError, ConnectionFailed):
            return False
        return True

    import time
    for attempt in range(retries + 1):
        if resize():
            break
        time.sleep(0.01 * (attempt + 1))
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGWINCH, lambda *_: threading.Thread(target=resize, daemon=True).start())

    def stop() -> None:
        signal.signal(signal.SIGWINCH, previous)
    return stop


class SignalProxy:
    """Forwards the signals in ``PROXIED_SIGNALS`` that this process receives to a container
    (``POST /containers/{id}/kill?signal=NAME``) while the block runs; docker's ``--sig-proxy``."""

    def __init__(self, client: Any, container_id: str, enabled: bool = True) -> None:
        self.client = client
        self.container_id = container_id
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self._previous: dict[int, Any] = {}

    def _send(self, name: str) -> None:
        from berth.client.api import APIError, ConnectionFailed
        try:
            self.client.request("POST", f"/containers/{self.container_id}/kill", {"signal": name})
        except (APIError, ConnectionFailed):
            pass

    def _handle(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name[3:]
        threading.Thread(target=self._send, args=(name,), daemon=True).start()

    def __enter__(self) -> SignalProxy:
        if self.enabled:
            for name in PROXIED_SIGNALS:
                number = getattr(signal, name)
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()
