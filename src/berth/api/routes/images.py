"""Image routes (Engine API v1.41, "Image" section): list, inspect, history, tag, delete, prune,
import (``/images/create?fromSrc=``), pull and push (refused: no registry is reachable), save and load."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from berth.api.http import JSONResponse, Request, Response, StreamResponse
from berth.api.router import Router
from berth.api.streams import SyncBodyReader, iter_from_writer
from berth.errors import BerthError, InvalidParameter, NotFound
from berth.images import reference as refs
from berth.images.service import ImageService


def _message_stream(messages: list[dict[str, Any]]) -> StreamResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for message in messages:
            yield json.dumps(message, separators=(",", ":")).encode() + b"\r\n"

    return StreamResponse(chunks())


def register(router: Router, images: ImageService) -> None:
    """Add the image routes backed by ``images``."""

    async def list_images(req: Request) -> Response:
        filters = req.filters()
        if req.arg("filter"):  # API < 1.41 "filter" parameter: a reference pattern
            filters.setdefault("reference", []).append(req.arg("filter"))
        return JSONResponse(images.list_images(req.flag("all"), filters))

    async def inspect(req: Request) -> Response:
        return JSONResponse(images.inspect(req.params["name"]))

    async def history(req: Request) -> Response:
        return JSONResponse(images.history(req.params["name"]))

    async def tag(req: Request) -> Response:
        repo = req.arg("repo")
        if not repo:
            raise InvalidParameter("repository name must have at least one component")
        images.tag(req.params["name"], repo, req.arg("tag"))
        return Response(b"", 201, "")

    async def delete(req: Request) -> Response:
        records = images.delete(req.params["name"], req.flag("force"), not req.flag("noprune"))
        return JSONResponse(records)

    async def prune(req: Request) -> Response:
        return JSONResponse(images.prune(req.filters()))

    async def create(req: Request) -> Response | StreamResponse:
        source = req.arg("fromSrc")
        if not source:
            return await pull(req)
        changes = req.query_all.get("changes", [])
        loop = asyncio.get_running_loop()
        if source == "-":
            stream: Any = SyncBodyReader(req.body, loop)
            image = await loop.run_in_executor(
                None, lambda: images.import_image(stream, req.arg("repo"), req.arg("tag"), req.arg("message"),
                                                  changes, source))
            return _message_stream([{"status": image.id}])
        stream = await loop.run_in_executor(None, _open_url, source)
        # dockerd has already streamed "Downloading from" when the import fails: report in-stream
        messages: list[dict[str, Any]] = [{"status": f"Downloading from {source}", "progressDetail": {}}]
        try:
            image = await loop.run_in_executor(
                None, lambda: images.import_image(stream, req.arg("repo"), req.arg("tag"), req.arg("message"),
                                                  changes, source))
            messages.append({"status": image.id})
        except BerthError as exc:
            messages.append({"errorDetail": {"message": str(exc)}, "error": str(exc)})
        finally:
            stream.close()
        return _message_stream(messages)

    async def pull(req: Request) -> Response | StreamResponse:
        name = req.arg("fromImage")
        if not name:
            raise InvalidParameter("fromImage or fromSrc is required")
        tag = req.arg("tag")
        ref = name + (":" + tag if tag and "@" not in name else "")
        raise NotFound(f"pull access denied for {name}, repository does not exist or may require "
                       f"'docker login': berth has no registry to pull {ref} from (offline)")

    async def save(req: Request) -> StreamResponse:
        names = [req.params["name"]] if "name" in req.params else req.query_all.get("names", [])
        if not names:
            raise InvalidParameter("no image names given")
        items = images.save_items(names)
        return StreamResponse(iter_from_writer(lambda out: images.save(items, out)), 200, "application/x-tar")

    async def load(req: Request) -> Response | StreamResponse:
        loop = asyncio.get_running_loop()
        reader: Any = SyncBodyReader(req.body, loop)
        try:
            messages = await loop.run_in_executor(None, images.load, reader)
        except BerthError as exc:
            # dockerd answers 200 and reports a failed load inside the message stream
            return _message_stream([{"errorDetail": {"message": str(exc)}, "error": str(exc)}])
        return _message_stream([{"stream": m + "\n"} for m in messages])

    async def search(req: Request) -> Response:
        return JSONResponse([])

    async def push(req: Request) -> StreamResponse:
        # dockerd names the repository, then fails in-stream (status 200): with no local tag in
        # that repository, or when the registry cannot be reached, which offline is always.
        ref = refs.parse_normalized_named(req.params["name"])
        tag = req.arg("tag")
        pattern = ref.familiar_name + (f":{tag}" if tag else "")
        messages: list[dict[str, Any]] = [{"status": f"The push refers to repository [{ref.name}]"}]
        if not images.list_images(False, {"reference": [pattern]}):
            error = f"An image does not exist locally with the tag: {ref.familiar_name}"
        else:
            error = f"berth has no registry to push {pattern} to (offline)"
        messages.append({"errorDetail": {"message": error}, "error": error})
        return _message_stream(messages)

    router.get("/images/json", list_images)
    router.post("/images/create", create)
    router.post("/images/prune", prune)
    router.post("/images/load", load)
    router.get("/images/get", save)
    router.get("/images/search", search)
    router.get("/images/{name:path}/json", inspect)
    router.get("/images/{name:path}/history", history)
    router.get("/images/{name:path}/get", save)
    router.post("/images/{name:path}/tag", tag)
    router.post("/images/{name:path}/push", push)
    router.delete("/images/{name:path}", delete)


def _open_url(url: str) -> Any:
    """Open an http(s) URL given as ``fromSrc`` (docker downloads it on the daemon side)."""
    if not url.startswith(("http://", "https://")):
        raise InvalidParameter(f"invalid import source {url!r}: must be '-' or an http(s) URL")
    try:
        return urllib.request.urlopen(url, timeout=30)  # noqa: S310 - the user asked for this URL
    except urllib.error.HTTPError as exc:
        body = exc.read().strip().decode(errors="replace")
        raise InvalidParameter(f"failed to GET {url} with status {exc.code} {exc.reason}: {body}") from None
    except OSError as exc:
        raise InvalidParameter(f"error downloading {url}: {exc}") from None
