"""Container routes (Engine API v1.41, "Container" section): lifecycle, attach, logs, and the
operations in ``berth.containers.ops`` (exec, top, stats, changes, export, archive, commit) when
that module is present."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from berth.api.gotypes import check_create_body
from berth.api.http import HijackResponse, JSONResponse, NoContent, Request, Response, StreamResponse
from berth.api.router import Router
from berth.containers.attach import AttachSession, log_frames, parse_detach_keys, relay
from berth.errors import BerthError, Conflict, InvalidParameter, NotModified
from berth.timeutil import parse_timestamp_arg

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


def _time_arg(req: Request, name: str) -> int | None:
    value = req.arg(name)
    if not value or value == "0":
        return None
    try:
        return parse_timestamp_arg(value)
    except ValueError:
        raise InvalidParameter(f"invalid value for {name}: {value!r}") from None


def register(router: Router, containers: Any) -> None:
    """Add the container routes backed by a :class:`berth.containers.service.ContainerService`."""

    async def list_(req: Request) -> Response:
        return JSONResponse(containers.list(req.flag("all"), req.int_arg("limit", -1) or -1, req.flag("size"),
                                            req.filters()))

    async def create(req: Request) -> Response:
        body = await req.json({})
        check_create_body(body)
        return JSONResponse(await containers.create(body, req.arg("name")), 201)

    async def inspect(req: Request) -> Response:
        return JSONResponse(containers.inspect(req.params["id"], req.flag("size")))

    async def start(req: Request) -> Response:
        try:
            await containers.start(req.params["id"])
        except NotModified:
            return Response(b"", 304, "")
        return NoContent()

    async def stop(req: Request) -> Response:
        try:
            await containers.stop(req.params["id"], req.int_arg("t"))
        except NotModified:
            return Response(b"", 304, "")
        return NoContent()

    async def restart(req: Request) -> Response:
        await containers.restart(req.params["id"], req.int_arg("t"))
        return NoContent()

    async def kill(req: Request) -> Response:
        await containers.kill(req.params["id"], req.arg("signal") or None)
        return NoContent()

    async def wait(req: Request) -> StreamResponse:
        # dockerd sends the 200 head at once, then the body when the condition is met: the docker
        # CLI waits for that head before it starts the container.
        containers.get(req.params["id"])  # a 404 must come before the head
        condition = req.arg("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidParameter(f"invalid condition: {condition!r}")

        async def body() -> AsyncIterator[bytes]:
            try:
                result = await containers.wait(req.params["id"], condition)
            except BerthError as exc:
                result = {"StatusCode": -1, "Error": {"Message": exc.message}}
            yield json.dumps(result, separators=(",", ":")).encode() + b"\n"

        return StreamResponse(body())

    async def remove(req: Request) -> Response:
        if req.flag("link"):
            raise InvalidParameter("Conflict, cannot remove the default link name of the container")
        await containers.remove(req.params["id"], req.flag("force"), req.flag("v"))
        return NoContent()

    async def rename(req: Request) -> Response:
        await containers.rename(req.params["id"], req.arg("name"))
        return NoContent()

    async def pause(req: Request) -> Response:
        await containers.pause(req.params["id"])
        return NoContent()

    async def unpause(req: Request) -> Response:
        await containers.unpause(req.params["id"])
        return NoContent()

    async def update(req: Request) -> Response:
        return JSONResponse(await containers.update(req.params["id"], await req.json({})))

    async def prune(req: Request) -> Response:
        return JSONResponse(await containers.prune(req.filters()))

    async def resize(req: Request) -> Response:
        c = containers.get(req.params["id"])
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        await containers.shim(c).resize(req.int_arg("h", 0) or 0, req.int_arg("w", 0) or 0)
        return Response(b"", 200, "")

    async def logs(req: Request) -> StreamResponse:
        c = containers.get(req.params["id"])
        stdout, stderr = req.flag("stdout"), req.flag("stderr")
        if not stdout and not stderr:
            raise InvalidParameter("You must choose at least one stream")
        path = containers.runner.log_path(c)
        if path is None:
            raise InvalidParameter('configured logging driver does not support reading')
        tail_arg = req.arg("tail", "all")
        tail = None if tail_arg in ("", "all") else _int(tail_arg, "tail")
        entries = containers_logs(containers, c, path, req.flag("follow"), _time_arg(req, "since"),
                                  _time_arg(req, "until"), tail, stdout, stderr)
        return StreamResponse(log_frames(entries, c.tty, req.flag("timestamps")), 200,
                              RAW_STREAM if c.tty or not req.api_at_least("1.42") else MULTIPLEXED)

    async def attach(req: Request) -> HijackResponse:
        c = containers.get(req.params["id"])
        keys = parse_detach_keys(req.arg("detachKeys"))
        want = {name: req.flag(name) for name in ("stdin", "stdout", "stderr")}
        stream_mode, logs_mode = req.flag("stream"), req.flag("logs")
        content_type = RAW_STREAM if c.tty or not req.api_at_least("1.42") else MULTIPLEXED

        async def handler(reader: Any, writer: asyncio.StreamWriter) -> None:
            try:
                if logs_mode and containers.runner.log_path(c) is not None:
                    entries = containers_logs(containers, c, containers.runner.log_path(c), False, None, None, None,
                                              want["stdout"], want["stderr"])
                    async for chunk in log_frames(entries, c.tty, False):
                        writer.write(chunk)
                    await writer.drain()
                if not stream_mode:
                    return
                session = AttachSession(reader, writer, want["stdin"], want["stdout"], want["stderr"], c.tty,
                                        bool(c.config.get("StdinOnce")), keys)
                containers.events.publish("container", "attach", c.id, {"name": c.name, "image": c.image})
                if c.state.running and c.state.status != "restarting":
                    stream = await containers.shim(c).attach(session.stdin, session.stdout, session.stderr)
                    await relay(session, stream)
                    return
                containers.attach_hub.add_pending(c.id, session)
                try:
                    await session.done
                finally:
                    containers.attach_hub.discard(c.id, session)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                if not writer.is_closing():
                    writer.close()

        return HijackResponse(handler, content_type)

    router.get("/containers/json", list_)
    router.post("/containers/create", create)
    router.post("/containers/prune", prune)
    router.get("/containers/{id}/json", inspect)
    router.post("/containers/{id}/start", start)
    router.post("/containers/{id}/stop", stop)
    router.post("/containers/{id}/restart", restart)
    router.post("/containers/{id}/kill", kill)
    router.post("/containers/{id}/wait", wait)
    router.delete("/containers/{id}", remove)
    router.post("/containers/{id}/rename", rename)
    router.post("/containers/{id}/pause", pause)
    router.post("/containers/{id}/unpause", unpause)
    router.post("/containers/{id}/update", update)
    router.post("/containers/{id}/resize", resize)
    router.get("/containers/{id}/logs", logs)
    router.post("/containers/{id}/attach", attach)
    try:
        from berth.api.routes import container_ops
    except ImportError:
        return
    container_ops.register(router, containers)


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidParameter(f"invalid value for {name}: {value!r}") from None


async def containers_logs(containers: Any, c: Any, path: Any, follow: bool, since: int | None, until: int | None,
                          tail: int | None, stdout: bool, stderr: bool) -> AsyncIterator[Any]:
    """Log entries of ``c``; with ``follow``, until the container stops."""
    from berth.runtime.jsonlog import follow_log, read_log

    if not path.exists():
        return
    if not follow or not c.state.running:
        entries = await asyncio.to_thread(lambda: list(read_log(path, since=since, until=until, tail=tail,
                                                                stdout=stdout, stderr=stderr)))
        for entry in entries:
            yield entry
        return
    ended = asyncio.Event()
    watcher = asyncio.ensure_future(_set_when_stopped(containers, c, ended))
    try:
        async for entry in follow_log(path, ended, since=since, until=until, tail=tail, stdout=stdout,
                                      stderr=stderr):
            yield entry
    finally:
        watcher.cancel()


async def _set_when_stopped(containers: Any, c: Any, ended: asyncio.Event) -> None:
    try:
        await containers.wait(c.id, "not-running")
    finally:
        ended.set()
