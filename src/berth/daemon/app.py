"""Wiring: build the services of one daemon from its config and register their routes.

Each service gets only what it needs (stores, the events bus, small callables for the few
cross-service questions such as "which containers use this image?"), so packages stay independent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.api.router import Router
from berth.daemon.config import DaemonConfig
from berth.daemon.events import EventBus
from berth.images.service import ImageService
from berth.images.store import ImageStore
from berth.store.blobs import ContentStore
from berth.store.db import Database

log = logging.getLogger("berth.daemon")


@dataclass
class Services:
    """The daemon's services (each owns its own state; this only holds them together)."""

    config: DaemonConfig
    db: Database
    events: EventBus
    images: ImageService
    containers: Any = None
    networks: Any = None
    volumes: Any = None
    builder: Any = None
    forkserver: Any = None


def build_services(config: DaemonConfig, forkserver: Any = None) -> Services:
    """Open the data root and construct every service (no network or container I/O yet).

    Services with I/O to set up expose ``async start()`` (called once, in this order: networks,
    volumes, containers) and ``async shutdown()``.
    """
    from berth.snapshots.overlay import Snapshotter

    config.data_root.mkdir(parents=True, exist_ok=True)
    db = Database(config.data_root / "berth.db")
    content = ContentStore(config.data_root / "content")
    content.cleanup()
    snapshotter = Snapshotter(config.data_root / "snapshots")
    # The data root is locked and nothing runs yet: temp dirs of an unpack the last berthd was
    # killed in are garbage, as content.cleanup() treats temp blobs.
    snapshotter.cleanup()
    events = EventBus()
    image_store = ImageStore(db, content, snapshotter)
    images = ImageService(image_store, events.publish)
    services = Services(config, db, events, images, forkserver=forkserver)
    services.networks = _optional("berth.network.service", "NetworkService", config, db, events)
    services.volumes = _optional("berth.volumes.service", "VolumeService", config, db, events)
    containers = _optional("berth.containers.service", "ContainerService", config, db, events, images,
                           services.networks, services.volumes, forkserver)
    if containers is not None:
        services.containers = containers
        images.usage = containers.image_usage
    services.builder = _optional("berth.build.service", "BuildService", config, events, images, containers)
    return services


def _optional(module: str, cls: str, *args: Any) -> Any:
    """Construct ``module.cls(*args)``, or None while that package is not built yet."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise
    return getattr(mod, cls)(*args)


def info(services: Services) -> dict[str, Any]:
    """The ``/info`` document (Engine API "SystemInfo")."""
    import threading

    from berth import __version__
    from berth.api.routes.system import host_info
    from berth.timeutil import rfc3339_nano

    host = host_info()
    containers = services.containers.counts() if services.containers else {"running": 0, "paused": 0, "stopped": 0}
    total = sum(containers.values())
    return {
        "ID": engine_id(services.config.data_root), "Containers": total, "ContainersRunning": containers["running"],
        "ContainersPaused": containers["paused"], "ContainersStopped": containers["stopped"],
        "Images": len(services.images.store.images()), "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": None,
                    "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True,
        "PidsLimit": True, "IPv4Forwarding": True, "Debug": services.config.log_level == "debug",
        "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": _cgroup_version(),
        "NFd": _open_fds(), "NGoroutines": threading.active_count(), "SystemTime": rfc3339_nano(),
        "NEventsListener": services.events.listeners, "KernelVersion": host["KernelVersion"], "OperatingSystem": host["OperatingSystem"],
        "OSVersion": "", "OSType": "linux", "Architecture": host["Architecture"], "IndexServerAddress":
        "https://index.docker.io/v1/", "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"],
                                                          "IndexConfigs": {}, "Mirrors": []},
        "NCPU": host["NCPU"], "MemTotal": host["MemTotal"], "DockerRootDir": str(services.config.data_root),
        "Name": host["Name"], "Labels": [], "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {"berth": {"path": "berth"}, "runc": {"path": "runc"}},
        "DefaultRuntime": services.config.default_runtime, "LiveRestoreEnabled": True, "Isolation": "",
        "InitBinary": "docker-init", "SecurityOptions": ["name=seccomp,profile=default"], "Warnings": None,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
    }


def engine_id(data_root: Path) -> str:
    """This daemon's ``/info`` ID, kept in ``<data-root>/engine-id`` (created on first use, atomically):
    twelve groups of four base32 characters, the shape dockerd's ID has."""
    path = data_root / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    import base64
    import secrets

    from berth.store.blobs import fsync_write

    text = base64.b32encode(secrets.token_bytes(30)).decode()[:48]
    value = ":".join(text[i:i + 4] for i in range(0, 48, 4))
    fsync_write(path, value.encode() + b"\n")
    return value


def _open_fds() -> int:
    import os
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


async def disk_usage(services: Services) -> dict[str, Any]:
    """``GET /system/df`` (Engine API "SystemDataUsage"): images with container counts, containers
    with their sizes, volumes with ``UsageData``; ``LayersSize`` counts each layer once.

    Images are those ``docker images`` lists (dockerd's ``Images(all=false)``): an untagged image
    with children (a build step) is left out, and ``SharedSize`` counts the layers that more than
    one listed image uses."""
    import asyncio

    images = services.images.list_images(False, containers_count=True)
    store = services.images.store
    layer_sizes: dict[str, int] = {}
    users: dict[str, int] = {}
    listed = [(summary, found) for summary in images if (found := store.by_id(summary["Id"])) is not None]
    for _, image in listed:
        for layer in store.layers_of(image):
            layer_sizes[layer.chain_id] = layer.size
            users[layer.chain_id] = users.get(layer.chain_id, 0) + 1
    for summary, image in listed:
        summary["SharedSize"] = sum(layer_sizes[c] for c in image.chain_ids if users.get(c, 0) > 1)
    containers = []
    if services.containers is not None:
        containers = await asyncio.to_thread(services.containers.list, True, -1, True, {})
    volumes = services.volumes.usage() if services.volumes is not None else []
    return {"LayersSize": sum(layer_sizes.values()), "Images": images, "Containers": containers,
            "Volumes": volumes, "BuildCache": []}


def _cgroup_version() -> str:
    import os
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def build_router(services: Services) -> Router:
    """The route table for every service present."""
    from berth.api.routes import images as image_routes
    from berth.api.routes import system

    router = Router()
    system.register(router, services.events, lambda: info(services), lambda: disk_usage(services))
    image_routes.register(router, services.images)
    for name in ("networks", "volumes", "containers", "builder"):
        service = getattr(services, name)
        if service is None:
            continue
        module = {"builder": "build"}.get(name, name)
        import importlib
        importlib.import_module(f"berth.api.routes.{module}").register(router, service)
    return router
