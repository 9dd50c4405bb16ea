"""Request and response types shared by the API server and its route handlers.

Handlers are ``async def handler(req: Request) -> Response``. A response is one of:
:class:`JSONResponse`/:class:`Response` (a whole body), :class:`StreamResponse` (chunked body from
an async iterator: events, logs, pull/build progress) or :class:`HijackResponse` (the connection is
taken over for raw bytes both ways: attach and exec start, per the Engine API "Hijacking" section).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidParameter


class Body:
    """The request body, read incrementally from the connection (see ``api.server``)."""

    def __init__(self, receive: Callable[[], Awaitable[bytes]]) -> None:
        self._receive = receive
        self._buffer = b""
        self._eof = False

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all remaining with ``n < 0``); ``b""`` at the end of the body."""
        if n < 0:
            chunks = [self._buffer]
            self._buffer = b""
            while not self._eof:
                chunk = await self._receive()
                if not chunk:
                    self._eof = True
                chunks.append(chunk)
            return b"".join(chunks)
        while not self._buffer and not self._eof:
            chunk = await self._receive()
            if not chunk:
                self._eof = True
            self._buffer = chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    async def chunks(self) -> AsyncIterator[bytes]:
        """Iterate over the body in the chunks the client sent."""
        while True:
            chunk = await self.read(1 << 20)
            if not chunk:
                return
            yield chunk


@dataclass
class Request:
    """One API request. ``query`` maps each parameter to its first value (``query_all`` to all)."""

    method: str
    path: str
    version: str                        # API version from the /vX.Y prefix, or the server's own
    query_all: dict[str, list[str]]
    headers: dict[str, str]             # lower-case names
    body: Body
    params: dict[str, str] = field(default_factory=dict)  # path parameters

    @property
    def query(self) -> dict[str, str]:
        """Each query parameter's first value (Go's ``url.Values.Get``, ``r.FormValue``)."""
        return {k: v[0] for k, v in self.query_all.items()}

    def arg(self, name: str, default: str = "") -> str:
        """A query parameter as a string: its first value when it is repeated, as dockerd reads it
        (docker-py sends ``dockerfile`` twice for a Dockerfile outside the context)."""
        values = self.query_all.get(name)
        return values[0] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter: ``1``/``true``/``True`` are true (docker's ``BoolValue``)."""
        value = self.arg(name, "")
        if value == "":
            return default
        return value.lower() not in ("0", "false", "no", "off")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """An integer query parameter; raises InvalidParameter when it is not one."""
        value = self.arg(name, "")
        if value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidParameter(f"invalid value for {name}: {value!r}") from None

    def filters(self) -> dict[str, list[str]]:
        """Decode the ``filters`` parameter (Engine API: JSON ``{"key": ["v"]}`` or the older
        ``{"key": {"v": true}}`` form). Raises InvalidParameter for bad JSON."""
        raw = self.arg("filters", "")
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise InvalidParameter("invalid filter") from None
        if not isinstance(data, dict):
            raise InvalidParameter("invalid filter")
        out: dict[str, list[str]] = {}
        for key, value in data.items():
            if isinstance(value, dict):
                out[key] = [k for k, on in value.items() if on]
            elif isinstance(value, list):
                out[key] = [str(v) for v in value]
            else:
                out[key] = [str(value)]
        return out

    async def json(self, default: Any = None) -> Any:
        """The body parsed as JSON (``default`` when empty). Raises InvalidParameter."""
        data = await self.body.read()
        if not data.strip():
            return default
        try:
            return json.loads(data)
        except ValueError as exc:
            raise InvalidParameter(f"invalid JSON: {exc}") from None

    def api_at_least(self, version: str) -> bool:
        """True when the request's API version is >= ``version``."""
        return _vtuple(self.version) >= _vtuple(version)


def _vtuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


@dataclass
class Response:
    """A whole response body."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def JSONResponse(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON body the way Go's encoder writes it (compact, newline-terminated)."""
    body = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
    return Response(body, status, "application/json", headers or {})


def NoContent() -> Response:
    """``204 No Content``."""
    return Response(b"", 204, "")


@dataclass
class StreamResponse:
    """A chunked body produced by ``chunks`` (closed when the client goes away)."""

    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class HijackResponse:
    """Take the connection over: ``handler(reader, writer)`` runs once the head is sent.

    ``content_type`` is ``application/vnd.docker.raw-stream`` (tty) or
    ``application/vnd.docker.multiplexed-stream`` (8-byte frame headers).
    """

    handler: Callable[[Any, Any], Awaitable[None]]
    content_type: str = "application/vnd.docker.raw-stream"


def json_lines(items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Encode a stream of JSON messages one per line (progress, events, build output)."""

    async def encode() -> AsyncIterator[bytes]:
        async for item in items:
            yield json.dumps(item, separators=(",", ":")).encode() + b"\r\n"

    return encode()
