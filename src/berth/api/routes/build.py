"""Build routes (Engine API v1.41 "Image" section: ``POST /build``, ``POST /build/prune``,
``POST /build/cancel``).

``POST /build`` takes the context tar as the request body (or ``remote=``) and answers with
docker's JSON message stream; a bad Dockerfile or option is an HTTP error before the stream.
``version=2`` asks for BuildKit, which berth does not have: clients fall back to the classic
builder with ``DOCKER_BUILDKIT=0``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from berth.api.http import JSONResponse, Request, Response, StreamResponse, json_lines
from berth.api.router import Router
from berth.api.streams import SyncBodyReader
from berth.build.options import parse_build_query
from berth.errors import InvalidParameter


def register(router: Router, builder: Any) -> None:
    """Add the build routes backed by ``builder`` (a :class:`berth.build.service.BuildService`)."""

    async def build(req: Request) -> Response | StreamResponse:
        if req.arg("version") == "2":
            raise InvalidParameter("BuildKit is not supported by berth: build with DOCKER_BUILDKIT=0")
        options = parse_build_query(req.query_all)
        body = None if options.remote else SyncBodyReader(req.body, asyncio.get_running_loop())
        job = await builder.prepare(options, body)
        return StreamResponse(json_lines(builder.stream(job)))

    async def prune(req: Request) -> Response:
        # The classic builder's cache is its intermediate images (pruned with the images);
        # there is no separate build cache to reclaim.
        return JSONResponse({"CachesDeleted": None, "SpaceReclaimed": 0})

    async def cancel(req: Request) -> Response:
        return Response(b"", 200, "")

    router.post("/build", build)
    router.post("/build/prune", prune)
    router.post("/build/cancel", cancel)
