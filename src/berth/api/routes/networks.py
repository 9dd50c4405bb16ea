"""Network routes (Engine API v1.41, "Network" section): list, inspect, create, remove, prune,
connect and disconnect. Thin: HTTP in, ``NetworkService`` calls, JSON out."""

from __future__ import annotations

from typing import Any

from berth.api.http import JSONResponse, NoContent, Request, Response
from berth.api.router import Router
from berth.errors import InvalidParameter
from berth.network.service import NetworkService


async def _object(req: Request) -> dict[str, Any]:
    body = await req.json({})
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: expected an object")
    return body


def register(router: Router, networks: NetworkService) -> None:
    """Add the network routes backed by ``networks``."""

    async def list_networks(req: Request) -> Response:
        return JSONResponse(networks.list(req.filters()))

    async def inspect(req: Request) -> Response:
        return JSONResponse(networks.inspect(req.params["id"], req.arg("scope")))

    async def create(req: Request) -> Response:
        return JSONResponse(await networks.create(await _object(req)), 201)

    async def remove(req: Request) -> Response:
        await networks.remove(req.params["id"])
        return NoContent()

    async def prune(req: Request) -> Response:
        return JSONResponse(await networks.prune(req.filters()))

    async def connect(req: Request) -> Response:
        body = await _object(req)
        container = str(body.get("Container") or "")
        if not container:
            raise InvalidParameter("no container specified")
        await networks.connect(req.params["id"], container, body.get("EndpointConfig") or {})
        return Response(b"", 200, "")

    async def disconnect(req: Request) -> Response:
        body = await _object(req)
        container = str(body.get("Container") or "")
        if not container:
            raise InvalidParameter("no container specified")
        await networks.disconnect(req.params["id"], container, bool(body.get("Force")))
        return Response(b"", 200, "")

    router.get("/networks", list_networks)
    router.get("/networks/", list_networks)
    router.post("/networks/create", create)
    router.post("/networks/prune", prune)
    router.get("/networks/{id}", inspect)
    router.delete("/networks/{id}", remove)
    router.post("/networks/{id}/connect", connect)
    router.post("/networks/{id}/disconnect", disconnect)
