"""The Engine API's HTTP server: h11 on asyncio streams (DESIGN decision 7).

Speaks HTTP/1.1 with keep-alive on a unix socket or TCP. Strips an optional ``/vX.Y`` prefix
(accepted from :data:`berth.MIN_API_VERSION` up), maps :class:`berth.errors.BerthError` to docker's
status codes and ``{"message": ...}`` bodies, streams chunked bodies, and hijacks the connection
for attach/exec: ``101 UPGRADED`` when the client asked for ``Upgrade: tcp``, otherwise ``200`` and
raw bytes (Engine API reference, "Hijacking").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from berth import API_VERSION, MIN_API_VERSION, __version__
from berth.api.http import Body, HijackResponse, JSONResponse, Request, Response, StreamResponse
from berth.api.router import VERSION_PREFIX, Router
from berth.errors import BerthError

log = logging.getLogger("berth.api")

SERVER_HEADERS = [
    ("Api-Version", API_VERSION),
    ("Docker-Experimental", "false"),
    ("Ostype", "linux"),
    ("Server", f"Docker/{__version__}-berth (linux)"),
]
READ_SIZE = 1 << 16


def _vt(v: str) -> tuple[int, int]:
    major, minor = v.split(".")
    return int(major), int(minor)


class _Connection:
    """One client connection: a loop of requests until close or hijack."""

    def __init__(self, router: Router, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.router = router
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)

    async def _next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(READ_SIZE)
                self.conn.receive_data(data)
                continue
            return event

    async def _receive_body(self) -> bytes:
        """Next body chunk of the current request, ``b""`` at its end."""
        while True:
            if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.MIGHT_SWITCH_PROTOCOL,
                                         h11.SWITCHED_PROTOCOL):
                return b""
            event = await self._next_event()
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return b""

    async def _send(self, event: Any) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def serve(self) -> None:
        try:
            while True:
                try:
                    event = await self._next_event()
                except h11.RemoteProtocolError as exc:
                    await self._send_error(400, f"bad request: {exc}")
                    return
                if isinstance(event, h11.ConnectionClosed) or event is None:
                    return
                if not isinstance(event, h11.Request):
                    return
                hijacked = await self._handle(event)
                if hijacked or self.conn.our_state is h11.MUST_CLOSE:
                    return
                # Drain whatever the handler left unread, then serve the next request.
                while self.conn.their_state is h11.SEND_BODY:
                    if not await self._receive_body():
                        break
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                else:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, h11.LocalProtocolError):
            return
        finally:
            if not self.writer.is_closing():
                self.writer.close()

    def _build_request(self, event: h11.Request) -> Request:
        target = event.target.decode("latin-1")
        parts = urlsplit(target)
        path = unquote(parts.path)
        version = API_VERSION
        m = VERSION_PREFIX.match(path)
        if m:
            version, path = m.group(1), m.group(2)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        query = parse_qs(parts.query, keep_blank_values=True)
        return Request(event.method.decode(), path, version, query, headers, Body(self._receive_body))

    async def _handle(self, event: h11.Request) -> bool:
        """Dispatch one request; returns True when the connection was hijacked."""
        req = self._build_request(event)
        log.debug("%s %s", req.method, event.target.decode("latin-1"))
        if _vt(req.version) < _vt(MIN_API_VERSION):
            await self._respond(req, JSONResponse(
                {"message": f"client version {req.version} is too old. Minimum supported API version "
                            f"is {MIN_API_VERSION}, please upgrade your client to a newer version"}, 400))
            return False
        handler, params, known = self.router.match(req.method, req.path)
        if handler is None:
            msg = "page not found" if not known else "method not allowed"
            await self._respond(req, JSONResponse({"message": msg}, 405 if known else 404))
            return False
        req.params = params
        try:
            response = await handler(req)
        except BerthError as exc:
            log.debug("%s %s -> %s %s", req.method, req.path, exc.status, exc.message)
            response = JSONResponse({"message": exc.message}, exc.status)
        except h11.RemoteProtocolError as exc:  # the body broke off or is malformed: the client's doing
            log.info("%s %s: bad or cut-off request body: %s", req.method, req.path, exc)
            with contextlib.suppress(Exception):
                await self._send_error(400, f"bad request: {exc}")
            raise ConnectionResetError("request body broken off") from None
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("%s %s: the client went away", req.method, req.path)
            raise
        except Exception as exc:  # a bug: report it like dockerd's 500s, keep serving
            log.exception("%s %s failed", req.method, req.path)
            response = JSONResponse({"message": f"{type(exc).__name__}: {exc}"}, 500)
        if isinstance(response, HijackResponse):
            await self._hijack(req, response)
            return True
        await self._respond(req, response)
        return False

    async def _respond(self, req: Request, response: Any) -> None:
        if isinstance(response, StreamResponse):
            await self._stream(req, response)
            return
        assert isinstance(response, Response)
        headers = list(SERVER_HEADERS)
        if response.content_type:
            headers.append(("Content-Type", response.content_type))
        headers += list(response.headers.items())
        body = response.body if req.method != "HEAD" else b""
        if response.status not in (204, 304):
            headers.append(("Content-Length", str(len(response.body))))
        await self._send(h11.Response(status_code=response.status, headers=headers,
                                      reason=_reason(response.status)))
        if body and response.status not in (204, 304):
            await self._send(h11.Data(data=body))
        await self._send(h11.EndOfMessage())

    async def _stream(self, req: Request, response: StreamResponse) -> None:
        headers = [*SERVER_HEADERS, ("Content-Type", response.content_type), *response.headers.items()]
        if req.headers.get("connection", "").lower() != "close" and event_http11(self.conn):
            headers.append(("Transfer-Encoding", "chunked"))
        await self._send(h11.Response(status_code=response.status, headers=headers,
                                      reason=_reason(response.status)))
        closed = asyncio.ensure_future(self._watch_close())
        chunks = response.chunks.__aiter__()
        step: asyncio.Future[Any] = closed  # replaced by the first read
        try:
            while True:
                step = asyncio.ensure_future(chunks.__anext__())
                await asyncio.wait({step, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():  # the client went away: stop producing
                    step.cancel()
                    break
                try:
                    chunk = step.result()
                except StopAsyncIteration:
                    await self._send(h11.EndOfMessage())
                    break
                if chunk:
                    await self._send(h11.Data(data=chunk))
        finally:
            # At shutdown this task is cancelled while ``step`` still runs the producer: stop it
            # before closing the generator (closing a running one raises RuntimeError).
            for task in (step, closed):
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, StopAsyncIteration, Exception):
                    pass
            aclose = getattr(response.chunks, "aclose", None)
            if aclose:
                try:
                    await aclose()
                except RuntimeError:
                    pass

    async def _watch_close(self) -> None:
        """Finish when the client closes its side during a streamed response (events -f, logs -f)."""
        if self.conn.their_state is h11.SEND_BODY:
            await asyncio.Event().wait()  # the body is being read by the handler
            return
        while True:
            data = await self.reader.read(READ_SIZE)
            if not data:
                return
            self.conn.receive_data(data)

    async def _hijack(self, req: Request, response: HijackResponse) -> None:
        upgrade = "upgrade" in req.headers.get("connection", "").lower()
        if upgrade:
            head = ("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
        else:
            head = "HTTP/1.1 200 OK\r\n"
        head += f"Content-Type: {response.content_type}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in SERVER_HEADERS) + "\r\n"
        self.writer.write(head.encode())
        await self.writer.drain()
        leftover, _ = self.conn.trailing_data
        reader: asyncio.StreamReader | _PrefixedReader = self.reader
        if leftover:
            reader = _PrefixedReader(bytes(leftover), self.reader)
        await response.handler(reader, self.writer)

    async def _send_error(self, status: int, message: str) -> None:
        body = json.dumps({"message": message}).encode() + b"\n"
        self.writer.write(f"HTTP/1.1 {status} Bad Request\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await self.writer.drain()


def _reason(status: int) -> bytes:
    """The standard reason phrase (``404 Not Found``): docker-py puts it in its error text."""
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def event_http11(conn: h11.Connection) -> bool:
    return conn.their_http_version != b"1.0"


class _PrefixedReader:
    """A StreamReader look-alike that first returns bytes h11 had already buffered."""

    def __init__(self, prefix: bytes, reader: asyncio.StreamReader) -> None:
        self._prefix = prefix
        self._reader = reader

    async def read(self, n: int = -1) -> bytes:
        if self._prefix:
            data = self._prefix if n < 0 else self._prefix[:n]
            self._prefix = self._prefix[len(data):]
            return data
        return await self._reader.read(n)

    def at_eof(self) -> bool:
        return not self._prefix and self._reader.at_eof()


class APIServer:
    """Serves ``router`` on each address in ``hosts`` (``unix:///path`` or ``tcp://ip:port``)."""

    def __init__(self, router: Router, hosts: list[str]) -> None:
        self.router = router
        self.hosts = hosts
        self._servers: list[asyncio.base_events.Server] = []
        self._unix_paths: list[Path] = []
        self._connections: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Bind every address. Raises OSError when one is in use."""
        for host in self.hosts:
            if host.startswith("unix://"):
                path = Path(host[len("unix://"):])
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.exists() or path.is_symlink():
                    path.unlink()
                server = await asyncio.start_unix_server(self._client, path=str(path), limit=1 << 20)
                os.chmod(path, 0o660)
                self._unix_paths.append(path)
            elif host.startswith("tcp://"):
                addr = host[len("tcp://"):]
                ip, _, port = addr.rpartition(":")
                server = await asyncio.start_server(self._client, ip.strip("[]") or "127.0.0.1", int(port),
                                                    limit=1 << 20, family=socket.AF_UNSPEC)
            else:
                raise ValueError(f"unsupported host {host!r}: use unix:///path or tcp://ip:port")
            self._servers.append(server)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # asyncio keeps only weak references to tasks: once a client half-closes its side (the
        # docker CLI does after sending an exec or attach request), the loop no longer watches the
        # socket, and a connection task waiting for the container was garbage-collected mid-stream.
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await _Connection(self.router, reader, writer).serve()
        except asyncio.CancelledError:
            # Only ``close`` (or the loop's end) cancels a connection: the daemon is stopping, an
            # expected end and no error. Python 3.11's stream callback logs a cancelled
            # connection task as an ERROR with a traceback, so the task must end normally.
            if not writer.is_closing():
                writer.close()
        finally:
            self._connections.discard(task)  # type: ignore[arg-type]

    async def close(self) -> None:
        """Stop listening, end every open connection (streams included) and remove the unix
        sockets."""
        for server in self._servers:
            server.close()
        connections = list(self._connections)
        for task in connections:
            task.cancel()  # streams (events, logs -f, attach) never end on their own
        if connections:
            await asyncio.wait(connections, timeout=2)
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 2)
            except TimeoutError:
                pass
        for path in self._unix_paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
