"""A small HTTP/1.1 client for the CLI's start-up path (RFC 9112 message syntax).

``http.client`` pulls in the ``email`` package to parse headers, about 20 ms of imports on every
``berth`` command; the Engine API needs far less: a request line, headers, a body with
``Content-Length`` or chunked transfer coding, and a response read the same way. Stdlib ``socket``
only.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable


class ProtocolError(OSError):
    """The daemon's answer is not valid HTTP/1.1."""


def connect(address: str, timeout: float | None = None) -> socket.socket:
    """Connect to ``unix:///path`` or ``tcp://host:port`` (also ``http://``). Raises OSError."""
    if address.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address[len("unix://"):])
        except BaseException:
            sock.close()
            raise
        return sock
    hostport = address.split("://", 1)[1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    sock = socket.create_connection((host.strip("[]") or "127.0.0.1", int(port or 2375)), timeout)
    return sock


def send_request(sock: socket.socket, method: str, target: str, headers: dict[str, str],
                 body: bytes | Iterable[bytes] | None) -> None:
    """Write one request; an iterable body goes out with chunked transfer coding."""
    lines = [f"{method} {target} HTTP/1.1", "Host: docker"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if isinstance(body, (bytes, bytearray)) or body is None:
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        return
    lines.append("Transfer-Encoding: chunked")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    for chunk in body:
        if chunk:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    sock.sendall(b"0\r\n\r\n")


class Response:
    """A response read from ``sock``: ``status``, ``reason``, ``headers`` (lower-case names) and the
    body through ``read``/``read1``/``readline``. Closes the socket on :meth:`close`."""

    def __init__(self, sock: socket.socket, method: str) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        status_line = self._file.readline(65537).decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ProtocolError(f"invalid response line {status_line.strip()!r}")
        self.status = int(parts[1])
        self.reason = parts[2].strip() if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        while True:
            line = self._file.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        no_body = method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self._left: int | None = 0 if no_body else (int(length) if length and not self._chunked else None)
        self._chunk_left = 0
        self._done = no_body or self._left == 0

    def getheaders(self) -> list[tuple[str, str]]:
        return list(self.headers.items())

    def _next_chunk(self) -> bool:
        """Start the next chunk of a chunked body; False at its end."""
        size_line = self._file.readline(65537)
        if not size_line:
            raise ProtocolError("connection closed inside a chunked body")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while self._file.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self._done = True
            return False
        self._chunk_left = size
        return True

    def read1(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes that are available now; ``b""`` at the end of the body."""
        if self._done:
            return b""
        if self._chunked:
            if self._chunk_left == 0 and not self._next_chunk():
                return b""
            data = self._file.read1(min(n, self._chunk_left))
            if not data:
                raise ProtocolError("connection closed inside a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                self._file.readline(3)  # the CRLF after the chunk
            return data
        if self._left is None:
            data = self._file.read1(n)
            if not data:
                self._done = True
            return data
        data = self._file.read1(min(n, self._left))
        if not data:
            raise ProtocolError("connection closed before the end of the body")
        self._left -= len(data)
        if self._left == 0:
            self._done = True
        return data

    def read(self, n: int = -1) -> bytes:
        """The rest of the body (or ``n`` bytes of it)."""
        out = bytearray()
        while n < 0 or len(out) < n:
            data = self.read1(65536 if n < 0 else n - len(out))
            if not data:
                break
            out += data
        return bytes(out)

    def readline(self) -> bytes:
        """One line of the body (with its newline), ``b""`` at the end."""
        out = bytearray()
        while not out.endswith(b"\n") and not self._done:
            if self._chunked:
                if self._chunk_left == 0 and not self._next_chunk():
                    break
                data = self._file.readline(self._chunk_left)
                self._chunk_left -= len(data)
                if self._chunk_left == 0:
                    self._file.readline(3)
            elif self._left is not None:
                data = self._file.readline(self._left)
                self._left -= len(data)
                self._done = self._left == 0
            else:
                data = self._file.readline(65537)
                self._done = not data
            if not data:
                if not self._done:
                    raise ProtocolError("connection closed inside a body")
                break
            out += data
        return bytes(out)

    def close(self) -> None:
        self._file.close()
        self._sock.close()
