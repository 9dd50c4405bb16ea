"""Container operations that neither start nor stop a process: create (record, rootfs, volumes),
rename, pause and unpause (freezing the cgroup), update (resources and restart policy) and prune.

Behaviour and messages as dockerd 20.10 (daemon/create.go, rename.go, pause.go, update.go,
prune.go; Engine API "Container" section). The service holds the state; these functions change it
through it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from berth.containers import views
from berth.containers.create import build_container, merge_update, update_resources
from berth.containers.model import Container, random_name
from berth.errors import BerthError, Conflict, InvalidParameter, NotFound, SystemError_
from berth.filters import check_keys
from berth.runtime import cgroups

if TYPE_CHECKING:
    from berth.containers.service import ContainerService


async def create(svc: ContainerService, body: dict[str, Any], name: str = "") -> dict[str, Any]:
    """``POST /containers/create``. Raises NotFound (image), Conflict (name), InvalidParameter."""
    image_ref = body.get("Image") or ""
    if not image_ref:
        raise InvalidParameter("Config cannot be empty in order to create a container")
    image = _image_for_create(svc, image_ref)
    if name:
        name = svc.store.check_name(name)
    else:
        name = random_name()
        retry = 0
        while svc.store.name_owner(name) is not None:
            retry += 1
            name = random_name(retry)
    c = build_container(body, name, image_ref, image.id, image.container_config, svc.config.default_runtime)
    if not c.host_config.get("CgroupnsMode"):
        c.host_config["CgroupnsMode"] = svc.runner.cgroupns_default
    warnings = list(await svc.networks.validate(c) or []) if svc.networks is not None else []
    created_volumes = False
    try:
        if svc.volumes is not None:
            await svc.volumes.validate(c, image.container_config)
            created_volumes = True
        svc.runner.create_rootfs(c.id, image.top_layer)
        if svc.volumes is not None and svc.volumes.wants_image_content(c):
            await _populate_volumes(svc, c)
        svc.store.add(c)
    except BaseException:
        if created_volumes:
            await svc.volumes.remove_container(c, True)
        svc.runner.remove_rootfs(c.id)
        raise
    svc._event("create", c)
    return {"Id": c.id, "Warnings": warnings}


async def _populate_volumes(svc: ContainerService, c: Container) -> None:
    # dockerd copies image content into new volumes at create, not start: `cp` into a created
    # container's volume, or another container sharing it, sees that content before any start.
    rootfs = svc.runner.mount_rootfs(c.id)
    try:
        await svc.volumes.populate(c, rootfs)
    finally:
        svc.runner.unmount_rootfs(c.id)


def _image_for_create(svc: ContainerService, ref: str) -> Any:
    try:
        return svc.images.get(ref)
    except NotFound:
        from berth.images import reference as refs
        shown = ref
        try:
            parsed = refs.parse_normalized_named(ref)
            if not parsed.digest:
                shown = refs.with_default_tag(parsed).familiar()
        except InvalidParameter:
            pass
        raise NotFound(f"No such image: {shown}") from None


async def rename(svc: ContainerService, ref: str, new_name: str) -> None:
    """``POST /containers/{id}/rename``. Raises NotFound, InvalidParameter (empty, same or bad
    name) and Conflict (name in use), the last two prefixed ``Error when allocating new name:``
    and naming the new name with its ``/``, as dockerd's daemon/rename.go does."""
    if not ref or not new_name:
        raise InvalidParameter("Neither old nor new names may be empty")
    c = svc.get(ref)
    wanted = new_name if new_name.startswith("/") else f"/{new_name}"
    if wanted == f"/{c.name}":
        raise InvalidParameter("Renaming a container with the same name as its current name")
    try:
        name = svc.store.check_name(wanted, c.id)
    except (InvalidParameter, Conflict) as exc:
        raise type(exc)(f"Error when allocating new name: {exc.message}") from None
    old = c.name
    c.name = name
    svc.store.save(c)
    svc._event("rename", c, oldName=f"/{old}")


async def pause(svc: ContainerService, ref: str, by_commit: bool = False) -> None:
    """``POST /containers/{id}/pause``: freeze the container's cgroup. ``by_commit`` marks the
    pause as a commit's (recorded before freezing, so a daemon killed mid-commit leaves a
    record that restore thaws; a user's pause survives restarts). Raises NotFound, Conflict."""
    c = svc.get(ref)
    if not c.state.running:
        raise Conflict(f"Container {c.id} is not running")
    if c.state.status == "paused":
        raise Conflict(f"Container {c.id} is already paused")
    if c.state.commit_paused != by_commit:
        c.state.commit_paused = by_commit
        svc.store.save(c)
    try:
        await asyncio.to_thread(cgroups.freeze, c.cgroup_path)
    except BaseException:
        if c.state.commit_paused:
            c.state.commit_paused = False
            svc.store.save(c)
        raise
    c.state.status = "paused"
    svc.health.stop(c)
    svc.store.save(c)
    svc._event("pause", c)


async def thaw(svc: ContainerService, c: Container) -> None:
    """Thaw ``c``'s cgroup and record it running again (a user's or a commit's pause)."""
    await asyncio.to_thread(cgroups.thaw, c.cgroup_path)
    if c.state.status == "paused" or c.state.commit_paused:
        c.state.status = "running" if c.state.status == "paused" else c.state.status
        c.state.commit_paused = False
        svc.store.save(c)


async def unpause(svc: ContainerService, ref: str) -> None:
    """``POST /containers/{id}/unpause``. Raises NotFound, Conflict (not paused)."""
    c = svc.get(ref)
    if c.state.status != "paused":
        raise Conflict(f"Container {c.id} is not paused")
    await thaw(svc, c)
    svc.health.resume(c)
    svc._event("unpause", c)


async def update(svc: ContainerService, ref: str, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /containers/{id}/update``: resources and restart policy (live when running)."""
    c = svc.get(ref)
    merged = merge_update(c.host_config, body, c.id)
    if c.state.running:
        try:
            await asyncio.to_thread(cgroups.update, c.cgroup_path, update_resources(merged))
        except OSError as exc:
            raise SystemError_(f"Cannot update container {c.id}: {exc.strerror or exc}") from exc
    c.host_config = merged
    svc.store.save(c)
    svc._event("update", c)
    return {"Warnings": []}


async def prune(svc: ContainerService, filters: dict[str, list[str]]) -> dict[str, Any]:
    """``POST /containers/prune``: remove stopped containers (filters: until, label)."""
    check_keys(filters, {"until", "label", "label!"})
    deleted, reclaimed = [], 0
    for c in svc.store.all():
        if c.state.running or not views.prune_match(c, filters):
            continue
        try:
            reclaimed += svc.size_rw(c)
            await svc.remove(c.id, volumes=False)
            deleted.append(c.id)
        except BerthError:
            continue
    svc.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
    return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}
