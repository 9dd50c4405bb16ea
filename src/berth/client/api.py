"""Engine API client over a unix socket or TCP, stdlib only (the CLI's start-up path).

Requests go to ``/v1.41`` paths (the API version berth is modelled on; dockerd 20.10 and newer
serve it). Errors come back as :class:`APIError` with docker's message. ``hijack`` opens the raw
stream used by attach and exec start (Engine API "Hijacking": ``Connection: Upgrade``,
``Upgrade: tcp``).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

from berth.client import wire

API_PREFIX = "/v1.41"
DEFAULT_HOST = "unix:///run/berth/berth.sock"
USER_AGENT = "berth-cli"


class APIError(Exception):
    """The daemon answered with an error status; ``message`` is its ``{"message": ...}`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ConnectionFailed(Exception):
    """The daemon could not be reached (docker: "Cannot connect to the Docker daemon at ...")."""


def resolve_host(flag: str | None, environ: dict[str, str] | None = None) -> str:
    """The daemon address: ``-H``, then ``BERTH_HOST``, then ``DOCKER_HOST``, then the default socket."""
    env = os.environ if environ is None else environ
    return flag or env.get("BERTH_HOST") or env.get("DOCKER_HOST") or DEFAULT_HOST


class Response:
    """A response whose body may be streamed: ``read()``, ``iter_chunks()``, ``iter_lines()``, ``json()``."""

    def __init__(self, raw: wire.Response) -> None:
        self.raw = raw
        self.status = raw.status
        self.headers = dict(raw.headers)
        self._body: bytes | None = None

    def read(self) -> bytes:
        """The whole body (kept, so a buffered response can be read again)."""
        if self._body is None:
            return self.raw.read()
        return self._body

    def json(self) -> Any:
        data = self.read()
        return json.loads(data) if data.strip() else None

    def buffer(self) -> None:
        """Read the whole body now and close the connection."""
        self._body = self.raw.read()
        self.close()

    def iter_chunks(self, size: int = 1 << 16) -> Iterator[bytes]:
        while True:
            chunk = self.raw.read1(size)
            if not chunk:
                return
            yield chunk

    def iter_lines(self) -> Iterator[bytes]:
        while True:
            line = self.raw.readline()
            if not line:
                return
            yield line

    def iter_json(self) -> Iterator[dict[str, Any]]:
        """Decode a JSON-lines stream (progress messages, events, build output)."""
        buffer = b""
        decoder = json.JSONDecoder()
        for chunk in self.iter_chunks():
            buffer += chunk
            text = buffer.decode("utf-8", "replace")
            pos = 0
            while True:
                while pos < len(text) and text[pos] in " \r\n\t":
                    pos += 1
                if pos >= len(text):
                    break
                try:
                    obj, end = decoder.raw_decode(text, pos)
                except ValueError:
                    break
                yield obj
                pos = end
            buffer = text[pos:].encode()

    def close(self) -> None:
        self.raw.close()


class APIClient:
    """A client for one daemon address (``unix:///path``, ``tcp://host:port``, ``http://...``)."""

    def __init__(self, host: str = DEFAULT_HOST, timeout: float | None = None) -> None:
        self.host = host
        self.timeout = timeout

    def _connect(self) -> Any:
        """A socket to the daemon. Raises ConnectionFailed with docker's wording."""
        if not self.host.startswith(("unix://", "tcp://", "http://")):
            raise ConnectionFailed(f"unable to parse docker host `{self.host}`")
        try:
            return wire.connect(self.host, self.timeout)
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            raise ConnectionFailed(self._cannot_connect(exc)) from None
        except OSError as exc:
            raise ConnectionFailed(f"error during connect: {exc}") from None

    @staticmethod
    def url(path: str, params: dict[str, Any] | None = None) -> str:
        """``/v1.41`` + path + query; list values repeat the key, bools become 1/0, None is dropped."""
        query: list[tuple[str, str]] = []
        for key, value in (params or {}).items():
            if value is None:
                continue
            if isinstance(value, bool):
                query.append((key, "1" if value else "0"))
            elif isinstance(value, (list, tuple)):
                query.extend((key, str(v)) for v in value)
            elif isinstance(value, dict):
                query.append((key, json.dumps(value, separators=(",", ":"))))
            else:
                query.append((key, str(value)))
        return API_PREFIX + path + ("?" + urlencode(query) if query else "")

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, *,
                json_body: Any = None, body: bytes | Iterable[bytes] | Any = None,
                headers: dict[str, str] | None = None, stream: bool = False) -> Response:
        """Send a request. Raises :class:`APIError` for a 4xx/5xx status (body read and closed) and
        :class:`ConnectionFailed` when the daemon cannot be reached."""
        hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
        payload: Any = body
        if json_body is not None:
            payload = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        sock = self._connect()
        try:
            wire.send_request(sock, method, self.url(path, params), hdrs, payload)
            raw = wire.Response(sock, method)
        except OSError as exc:
            sock.close()
            raise ConnectionFailed(self._request_failed(method, path, params, exc)) from None
        response = Response(raw)
        if response.status >= 400:
            data = response.read()
            response.close()
            raise APIError(response.status, _error_message(data, response.status))
        if not stream:
            response.buffer()
        return response

    def _request_failed(self, method: str, path: str, params: dict[str, Any] | None, exc: OSError) -> str:
        """docker's text for a request the daemon dropped: Go's ``*url.Error``, e.g.
        ``error during connect: Post "http://%2Frun%2Fberth%2Fberth.sock/v1.41/containers/create": EOF``."""
        if self.host.startswith("unix://"):
            base = "http://" + quote(self.host[len("unix://"):], safe="")
        else:
            base = "http://" + self.host.split("://", 1)[1].rstrip("/")
        gone = isinstance(exc, (wire.ProtocolError, ConnectionResetError, BrokenPipeError))
        return f'error during connect: {method.title()} "{base}{self.url(path, params)}": {"EOF" if gone else exc}'

    def _cannot_connect(self, exc: Exception) -> str:
        if isinstance(exc, PermissionError):
            return (f"Got permission denied while trying to connect to the Docker daemon socket at "
                    f"{self.host}: {exc}")
        return f"Cannot connect to the Docker daemon at {self.host}. Is the docker daemon running?"

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET and decode the JSON body."""
        return self.request("GET", path, params).json()

    def post(self, path: str, params: dict[str, Any] | None = None, json_body: Any = None) -> Any:
        """POST and decode the JSON body (``None`` for empty bodies)."""
        return self.request("POST", path, params, json_body=json_body).json()

    def delete(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, params).json()

    def hijack(self, path: str, params: dict[str, Any] | None = None, json_body: Any = None) -> tuple[socket.socket, bytes]:
        """POST with ``Upgrade: tcp`` and return the raw socket and bytes already read past the head.

        Raises APIError when the daemon answers with an error instead of upgrading.
        """
        body = json.dumps(json_body).encode() if json_body is not None else b""
        sock = self._connect()
        head = (f"POST {self.url(path, params)} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {USER_AGENT}\r\n"
                f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionFailed("the daemon closed the connection")
            data += chunk
        header, rest = data.split(b"\r\n\r\n", 1)
        status_line = header.split(b"\r\n", 1)[0].decode("latin-1")
        status = int(status_line.split()[1])
        if status >= 400:
            headers = _parse_headers(header)
            length = int(headers.get("content-length", "0") or 0)
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            sock.close()
            raise APIError(status, _error_message(rest, status))
        sock.settimeout(None)
        return sock, rest


def _parse_headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        out[name.strip().lower()] = value.strip()
    return out


def _error_message(data: bytes, status: int) -> str:
    try:
        obj = json.loads(data)
        if isinstance(obj, dict) and "message" in obj:
            return str(obj["message"])
    except ValueError:
        pass
    text = data.decode("utf-8", "replace").strip()
    return text or f"HTTP {status}"


def path_quote(name: str) -> str:
    """Quote an object name for a URL path (image names keep their slashes)."""
    return quote(name, safe="/:@")
