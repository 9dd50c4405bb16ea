"""Routes for container operations (Engine API v1.41 "Exec" and "Container" sections): exec,
top, stats, changes, export, archive (``docker cp``) and ``POST /commit``.

Handlers translate HTTP to the services in :mod:`berth.containers.exec`, ``top``, ``stats``,
``fsops``, ``extract`` and ``commit``. Tars are produced by a worker thread and streamed as the body.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO

from berth.api.http import HijackResponse, JSONResponse, Request, Response, StreamResponse
from berth.api.router import Router
from berth.containers import extract, fsops
from berth.containers.attach import DEFAULT_DETACH_KEYS, AttachSession
from berth.containers.commit import commit
from berth.containers.exec import ExecService
from berth.containers.stats import stats_stream
from berth.containers.top import top
from berth.errors import InvalidParameter
from berth.runtime.user import resolve_user

log = logging.getLogger("berth.api")

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
STAT_HEADER = "X-Docker-Container-Path-Stat"
CHUNK = 1 << 16


class _ThreadPipe:
    """A write-only file for a worker thread whose bytes become an async iterator of chunks."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(8)
        self.closed = False
        self._buffer = bytearray()

    def _put(self, item: bytes | BaseException | None) -> None:
        future = asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop)
        while True:
            try:
                future.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                if self.closed:
                    future.cancel()
                    raise BrokenPipeError("client went away") from None

    def write(self, data: bytes) -> int:
        if self.closed:
            raise BrokenPipeError("client went away")
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def finish(self, error: BaseException | None = None) -> None:
        if self._buffer and error is None:
            self._put(bytes(self._buffer))
        self._put(error)


async def stream_from_thread(produce: Callable[[BinaryIO], None]) -> AsyncIterator[bytes]:
    """Run ``produce(out)`` in a worker thread and yield what it writes to ``out``. A failure
    after the first bytes can only end the body early (the status is already sent): it is logged."""
    pipe = _ThreadPipe(asyncio.get_running_loop())

    def run() -> None:
        try:
            produce(pipe)  # type: ignore[arg-type]
        except BrokenPipeError:
            return
        except BaseException as exc:  # noqa: BLE001 -- handed to the event loop side
            with contextlib.suppress(BrokenPipeError):
                pipe.finish(exc)
            return
        with contextlib.suppress(BrokenPipeError):
            pipe.finish()

    worker = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        while (item := await pipe.queue.get()) is not None:
            if isinstance(item, BaseException):
                log.error("streaming a tar failed: %s", item)
                return
            yield item
    finally:
        pipe.closed = True
        while not worker.done():
            with contextlib.suppress(asyncio.QueueEmpty):
                pipe.queue.get_nowait()
            await asyncio.sleep(0.01)


def register(router: Router, containers: Any) -> None:
    """Add the routes; ``containers`` is the :class:`~berth.containers.service.ContainerService`."""
    execs = getattr(containers, "execs", None)
    if execs is None:
        execs = ExecService(containers)
        containers.execs = execs
    leases = fsops.RootfsLeases(containers.runner, getattr(containers, "volumes", None))
    _register_exec(router, containers, execs)
    _register_files(router, containers, leases)

    async def top_(req: Request) -> Response:
        c = containers.get(req.params["id"])
        result = await top(c, req.arg("ps_args"))
        _event(containers, "top", c)
        return JSONResponse(result)

    async def stats(req: Request) -> StreamResponse:
        c = containers.get(req.params["id"])
        chunks = await stats_stream(containers, c, req.flag("stream", True), req.flag("one-shot"))
        return StreamResponse(chunks, 200, "application/json")

    async def commit_(req: Request) -> Response:
        body = await req.json(None)
        if body is not None and not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: expected an object")
        result = await commit(containers, req.arg("container"), body, repo=req.arg("repo"), tag=req.arg("tag"),
                              comment=req.arg("comment"), author=req.arg("author"),
                              changes=req.query_all.get("changes", []), pause=req.flag("pause", True))
        return JSONResponse(result, 201)

    router.get("/containers/{id}/top", top_)
    router.get("/containers/{id}/stats", stats)
    router.post("/commit", commit_)


def _event(containers: Any, action: str, c: Any) -> None:
    attrs = {str(k): str(v) for k, v in (c.config.get("Labels") or {}).items()}
    attrs.update({"image": c.image, "name": c.name})
    containers.events.publish("container", action, c.id, attrs)


def _register_exec(router: Router, containers: Any, execs: ExecService) -> None:
    async def create(req: Request) -> Response:
        body = await req.json({})
        if not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: expected an object")
        return JSONResponse(execs.create(req.params["id"], body), 201)

    async def inspect(req: Request) -> Response:
        return JSONResponse(execs.inspect(req.params["id"]))

    async def start(req: Request) -> Response | HijackResponse:
        body = await req.json({}) or {}
        inst = execs.get(req.params["id"])
        if body.get("Detach"):
            await execs.start_detached(inst.id)
            return Response(b"", 200, "")
        tty = bool(body.get("Tty"))
        size = body.get("ConsoleSize")
        console = (int(size[0]), int(size[1])) if isinstance(size, list) and len(size) == 2 else None

        async def handler(reader: Any, writer: asyncio.StreamWriter) -> None:
            session = AttachSession(reader, writer, inst.open_stdin, inst.open_stdout, inst.open_stderr, tty,
                                    True, inst.detach_keys or DEFAULT_DETACH_KEYS)
            try:
                await execs.start_attached(inst.id, session, console)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                if not writer.is_closing():
                    writer.close()

        return HijackResponse(handler, RAW_STREAM if tty or not req.api_at_least("1.42") else MULTIPLEXED)

    async def resize(req: Request) -> Response:
        await execs.resize(req.params["id"], req.int_arg("h", 0) or 0, req.int_arg("w", 0) or 0)
        return Response(b"", 200, "")

    router.post("/containers/{id}/exec", create)
    router.get("/exec/{id}/json", inspect)
    router.post("/exec/{id}/start", start)
    router.post("/exec/{id}/resize", resize)


def _register_files(router: Router, containers: Any, leases: fsops.RootfsLeases) -> None:
    def filesystem(c: Any, rootfs: Path) -> fsops.ContainerFS:
        return fsops.ContainerFS(rootfs, fsops.mount_table(c, containers.runner.bundle(c.id)))

    def archive_path(req: Request) -> str:
        path = req.arg("path")
        if not path:
            raise InvalidParameter("bad parameter: pathcannot be empty")
        return path

    async def changes(req: Request) -> Response:
        c = containers.get(req.params["id"])
        runner = containers.runner
        destinations = [str(m.get("Destination")) for m in c.mounts if m.get("Destination")]
        rows = await asyncio.to_thread(fsops.container_changes, runner.upper(c.id), runner.lowers(c.id),
                                       destinations)
        return JSONResponse(rows)

    async def export(req: Request) -> StreamResponse:
        c = containers.get(req.params["id"])
        rootfs = await leases.acquire(c)
        _event(containers, "export", c)
        return StreamResponse(_leased(leases, c, stream_from_thread(lambda out: fsops.export_rootfs(rootfs, out))),
                              200, "application/octet-stream")

    async def archive_get(req: Request) -> Response | StreamResponse:
        c = containers.get(req.params["id"])
        path = archive_path(req)
        rootfs = await leases.acquire(c)
        try:
            fs = filesystem(c, rootfs)
            info = await asyncio.to_thread(fsops.stat_path, fs, path, req.params["id"])
        except BaseException:
            await leases.release(c)
            raise
        headers = {STAT_HEADER: info.header}
        if req.method == "HEAD":
            await leases.release(c)
            return Response(b"", 200, "", headers)
        _event(containers, "archive-path", c)
        chunks = stream_from_thread(lambda out: fsops.write_archive(fs, info, out))
        return StreamResponse(_leased(leases, c, chunks), 200, "application/x-tar", headers)

    async def archive_put(req: Request) -> Response:
        c = containers.get(req.params["id"])
        path = archive_path(req)
        rootfs = await leases.acquire(c)
        try:
            fs = filesystem(c, rootfs)
            ro = bool(c.host_config.get("ReadonlyRootfs"))
            dest = await asyncio.to_thread(extract.extraction_dir, fs, path, req.params["id"], ro)
            options = extract.ExtractOptions(req.flag("noOverwriteDirNonDir"), await _chown(c, rootfs, req), ro)
            spool = await _spool(req, containers.runner.bundle(c.id))
            try:
                await asyncio.to_thread(extract.extract_archive, fs, dest, spool, options)
            finally:
                spool.unlink(missing_ok=True)
        finally:
            await leases.release(c)
        _event(containers, "extract-to-dir", c)
        return Response(b"", 200, "")

    router.get("/containers/{id}/changes", changes)
    router.get("/containers/{id}/export", export)
    router.head("/containers/{id}/archive", archive_get)
    router.get("/containers/{id}/archive", archive_get)
    router.put("/containers/{id}/archive", archive_put)


async def _leased(leases: fsops.RootfsLeases, c: Any, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        await leases.release(c)


async def _chown(c: Any, rootfs: Path, req: Request) -> tuple[int, int] | None:
    """``copyUIDGID``: every entry owned by the container's user (when it has one), as dockerd does."""
    user = c.config.get("User") or ""
    if not req.flag("copyUIDGID") or not user:
        return None
    found = await asyncio.to_thread(resolve_user, rootfs, user)
    return found.uid, found.gid


async def _spool(req: Request, directory: Path) -> Path:
    """Write the request body to a temporary file in ``directory`` (the archive is checked whole
    before anything is extracted)."""
    fd, name = tempfile.mkstemp(prefix=".archive-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in req.body.chunks():
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)

