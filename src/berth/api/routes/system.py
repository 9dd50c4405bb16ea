"""System routes: ``/_ping``, ``/version``, ``/info``, ``/events``, ``/system/df``.

Engine API v1.41, "System" section. ``/_ping`` reports ``Api-Version`` and ``Builder-Version: 1``
(the classic builder) so clients negotiate the API version and do not try BuildKit.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from berth import API_VERSION, MIN_API_VERSION, __version__
from berth.api.http import JSONResponse, Request, Response, StreamResponse
from berth.api.router import Router
from berth.daemon.events import EventBus
from berth.errors import InvalidParameter
from berth.timeutil import parse_timestamp_arg

PING_HEADERS = {"Builder-Version": "1", "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


def version_info() -> dict[str, Any]:
    """The ``/version`` document."""
    kernel = platform.release()
    py = f"python{sys.version_info.major}.{sys.version_info.minor}"
    details = {"ApiVersion": API_VERSION, "Arch": "amd64", "BuildTime": "", "Experimental": "false",
               "GitCommit": "", "GoVersion": py, "KernelVersion": kernel, "MinAPIVersion": MIN_API_VERSION,
               "Os": "linux"}
    return {
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
        "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "", "GoVersion": py, "Os": "linux", "Arch": "amd64", "KernelVersion": kernel,
        "BuildTime": "",
    }


def register(router: Router, events: EventBus, info: Callable[[], dict[str, Any]],
             disk_usage: Callable[[], Any] | None = None) -> None:
    """Add the system routes. ``info()`` returns the ``/info`` document."""

    async def ping(req: Request) -> Response:
        return Response(b"OK", 200, "text/plain; charset=utf-8", dict(PING_HEADERS))

    async def version(req: Request) -> Response:
        return JSONResponse(version_info())

    async def get_info(req: Request) -> Response:
        return JSONResponse(info())

    async def get_events(req: Request) -> StreamResponse:
        try:
            since = parse_timestamp_arg(req.arg("since")) if req.arg("since") else None
            until = parse_timestamp_arg(req.arg("until")) if req.arg("until") else None
        except ValueError as exc:
            raise InvalidParameter(str(exc)) from None
        if since is not None and until is not None and until < since:
            raise InvalidParameter(f"`since` time ({req.arg('since')}) cannot be after "
                                   f"`until` time ({req.arg('until')})")
        filters = req.filters()

        async def chunks() -> AsyncIterator[bytes]:
            async for event in events.stream(since, until, filters):
                yield json.dumps(event.to_json(), separators=(",", ":")).encode() + b"\n"

        return StreamResponse(chunks())

    async def system_df(req: Request) -> Response:
        if disk_usage is None:
            return JSONResponse({"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []})
        return JSONResponse(await disk_usage())

    router.get("/_ping", ping)
    router.head("/_ping", ping)
    router.get("/version", version)
    router.get("/info", get_info)
    router.get("/events", get_events)
    router.get("/system/df", system_df)


def host_info() -> dict[str, Any]:
    """Facts about the host for ``/info`` (kernel, CPUs, memory)."""
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    os_name = "Linux"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {"KernelVersion": platform.release(), "OperatingSystem": os_name, "OSType": "linux",
            "Architecture": platform.machine(), "NCPU": os.cpu_count() or 1, "MemTotal": mem,
            "Name": platform.node()}
