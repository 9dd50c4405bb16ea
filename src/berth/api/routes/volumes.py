"""Volume routes (Engine API v1.41, "Volume" section): list, create, inspect, remove, prune.

``POST /volumes/prune`` follows the request's API version: from 1.42 only anonymous volumes are
pruned unless the ``all`` filter is true; before, every unused volume (docs: "docker volume prune").
"""

from __future__ import annotations

from typing import Any

from berth.api.http import JSONResponse, NoContent, Request, Response
from berth.api.router import Router
from berth.errors import InvalidParameter
from berth.volumes.service import VolumeService


def _string_map(body: dict[str, Any], key: str) -> dict[str, str] | None:
    """``body[key]`` as a string map; None when absent or null (kept apart from ``{}``: dockerd
    shows the volume's ``Labels``/``Options`` as the client sent them)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter(f"json: cannot unmarshal {key} into Go struct field VolumeCreateBody.{key} "
                               "of type map[string]string")
    return dict(value)


def register(router: Router, volumes: VolumeService) -> None:
    """Add the volume routes backed by ``volumes``."""

    async def list_volumes(req: Request) -> Response:
        return JSONResponse(volumes.list_volumes(req.filters()))

    async def create(req: Request) -> Response:
        body = await req.json({})
        if not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: volume create body must be an object")
        name, driver = body.get("Name") or "", body.get("Driver") or ""
        if not isinstance(name, str) or not isinstance(driver, str):
            raise InvalidParameter("json: Name and Driver must be strings")
        created = await volumes.create(name, driver, _string_map(body, "DriverOpts"), _string_map(body, "Labels"))
        return JSONResponse(created, 201)

    async def inspect(req: Request) -> Response:
        return JSONResponse(volumes.inspect(req.params["name"]))

    async def remove(req: Request) -> Response:
        await volumes.remove(req.params["name"], req.flag("force"))
        return NoContent()

    async def prune(req: Request) -> Response:
        return JSONResponse(await volumes.prune(req.filters(), anonymous_only=req.api_at_least("1.42")))

    router.get("/volumes", list_volumes)
    router.post("/volumes/create", create)
    router.post("/volumes/prune", prune)
    router.get("/volumes/{name}", inspect)
    router.delete("/volumes/{name}", remove)
