"""The volume service: docker's volumes (Engine API v1.41 "Volume" section) and the mounts of
containers (:class:`berth.containers.interfaces.VolumeMounter`).

Volumes live under ``<data-root>/volumes/<name>/_data`` (:mod:`berth.volumes.local`), their
metadata in the ``volumes`` table. A volume is *in use* while a container (any state)
references it in its ``mounts``; the container service tells us about containers through
:meth:`VolumeService.bind_containers`. Events: volume ``create``, ``mount``, ``unmount``,
``destroy`` with docker's attributes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from berth.containers.model import Container
from berth.errors import Conflict, InvalidParameter, NotFound, SystemError_
from berth.runtime.spec import Mount
from berth.snapshots.fsutil import secure_join
from berth.volumes import local, views
from berth.volumes.copyup import copy_up
from berth.volumes.local import DRIVER, LocalDriver, Volume
from berth.volumes.mountspec import (
    ANONYMOUS_LABEL,
    BIND,
    FROM_IMAGE,
    TMPFS,
    VOLUME,
    MountSpec,
    from_mount_point,
    parse_bind,
    parse_mount,
    parse_tmpfs_map,
    parse_volumes_from,
    plan_mounts,
    tmpfs_mount_options,
    volume_name_error,
)

log = logging.getLogger("berth.volumes")

TABLE = "volumes"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _copy(mapping: dict[str, str] | None) -> dict[str, str] | None:
    return None if mapping is None else dict(mapping)


def new_volume_name() -> str:
    """64 hex characters whose 12-character prefix is not all digits (docker's random ids)."""
    while True:
        name = secrets.token_hex(32)
        if not name[:12].isdigit():
            return name


class VolumeService:
    """Volumes of one daemon. Built by the daemon as ``VolumeService(config, db, events)``
    (``config.data_root``; ``db``: :class:`berth.store.db.Database`; ``events``:
    :class:`berth.daemon.events.EventBus`)."""

    def __init__(self, config: Any, db: Any, events: Any) -> None:
        self.driver = LocalDriver(Path(config.data_root) / "volumes")
        self._db = db
        self._events = events
        self._volumes = {v.name: v for v in (Volume.from_record(r) for r in db.get_records(TABLE))}
        self._list_containers: Callable[[], list[Container]] = self._stored_containers
        self._resolve: Callable[[str], Container] | None = None
        self._pending: dict[str, set[str]] = {}   # container id -> volumes, until the container is removed
        self._active: dict[str, list[str]] = {}   # container id -> volumes acquired by setup
        self._lock = asyncio.Lock()
        self._started = False

    # ----- wiring ------------------------------------------------------------------------
    def bind_containers(self, list_containers: Callable[[], list[Container]],
                        resolve: Callable[[str], Container]) -> None:
        """Give the service the container store: ``list_containers()`` returns every container
        (any state), ``resolve(ref)`` one by id, prefix or name (raising NotFound)."""
        self._list_containers = list_containers
        self._resolve = resolve
        if self._started:
            self._restore_users()

    def _stored_containers(self) -> list[Container]:
        # Until the container service binds itself, read its records: a volume referenced by a
        # stopped container must never look unused (prune would delete its data).
        return [Container.from_record(r) for r in self._db.get_records("containers")]

    async def start(self) -> None:
        """Repair the data root after a crash (half-created or half-removed volumes, mounts
        nobody uses) and re-adopt the volumes of running containers."""
        await asyncio.to_thread(self._repair)
        self._started = True
        self._restore_users()
        for volume in list(self._volumes.values()):
            await asyncio.to_thread(self.driver.unmount_unused, volume)

    async def shutdown(self) -> None:
        """Nothing to stop: mounts of running containers stay (live restore)."""

    def _repair(self) -> None:
        self.driver.sweep()
        for volume in list(self._volumes.values()):
            if volume.removing:
                self.driver.remove(volume.name)
                self._db.delete_record(TABLE, volume.name)
                del self._volumes[volume.name]
            elif not self.driver.data_path(volume.name).is_dir():
                self.driver.create(volume.name)
        for name in self.driver.names_on_disk():
            if name not in self._volumes and volume_name_error(name) is None:
                # A crash between the directory's rename and the record: adopt it, as docker's
                # local driver adopts every directory it finds.
                self._store(Volume(name, _now()))

    def _restore_users(self) -> None:
        for c in self._list_containers():
            if not c.state.running:
                continue
            names = [n for n in views.volume_names(c.mounts) if n in self._volumes]
            for name in names:
                self.driver.adopt(self._volumes[name], c.id)
            self._active[c.id] = names

    # ----- volumes ---------------------------------------------------------------------
    def _store(self, volume: Volume) -> None:
        self._db.put_record(TABLE, volume.name, volume.to_record())
        self._volumes[volume.name] = volume

    def _json(self, volume: Volume) -> dict[str, Any]:
        return views.volume_json(volume, str(self.driver.data_path(volume.name)))

    def get(self, name: str) -> Volume:
        """The volume ``name``. Raises NotFound (``get <name>: no such volume``)."""
        volume = self._volumes.get(name)
        if volume is None or volume.removing:
            raise NotFound(f"get {name}: no such volume")
        return volume

    def inspect(self, name: str) -> dict[str, Any]:
        """``GET /volumes/{name}``: the Engine API ``Volume``. Raises NotFound."""
        return self._json(self.get(name))

    def list_volumes(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """``GET /volumes``: ``{"Volumes": [...], "Warnings": null}`` sorted by name.

        ``filters``: ``dangling`` (true/false/1/0), ``name``, ``driver``, ``label``.
        Raises InvalidParameter for other keys (``Invalid filter 'x'``).
        """
        filters = filters or {}
        views.check_filters(filters, views.LIST_FILTERS)
        used = self._used_names()
        volumes = [self._json(v) for _, v in sorted(self._volumes.items())
                   if not v.removing and views.list_matches(v, filters, v.name in used)]
        return {"Volumes": volumes, "Warnings": None}

    def usage(self) -> list[dict[str, Any]]:
        """Volumes with ``UsageData`` (``Size`` bytes, ``RefCount`` containers), for ``system df``."""
        out = []
        for name, volume in sorted(self._volumes.items()):
            item = self._json(volume)
            item["UsageData"] = {"Size": self.driver.size(name), "RefCount": len(self.users_of(name))}
            out.append(item)
        return out

    async def create(self, name: str = "", driver: str = "", options: dict[str, str] | None = None,
                     labels: dict[str, str] | None = None) -> dict[str, Any]:
        """``POST /volumes/create``: create ``name`` (a random one when empty) or return the
        existing volume unchanged (docker's idempotent create). ``options``/``labels``: None
        when the client sent none (inspect then shows ``null``, ``{}`` for an empty map).

        Raises:
            InvalidParameter: a bad name or driver option (``create <name>: ...``).
            NotFound: a driver other than ``local`` (``error looking up volume plugin``).
        """
        async with self._lock:
            volume, _ = self._create(name or new_volume_name(), driver, options, labels, False)
        return self._json(volume)

    def _create(self, name: str, driver: str, options: dict[str, str] | None, labels: dict[str, str] | None,
                anonymous: bool) -> tuple[Volume, bool]:
        """Create a volume or find it; returns ``(volume, created)``. Publishes ``create``."""
        if driver not in ("", DRIVER):
            raise NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')
        error = volume_name_error(name)
        if error:
            raise InvalidParameter(f"create {name}: {error}")
        volume = self._volumes.get(name)
        created = volume is None or volume.removing
        if created:
            try:
                local.validate_options(options or {})
            except InvalidParameter as exc:
                raise InvalidParameter(f"create {name}: {exc.message}") from None
            volume = Volume(name, _now(), _copy(labels), _copy(options), anonymous)
            self.driver.create(name)
            self._store(volume)
        assert volume is not None
        self._events.publish("volume", "create", name, {"driver": volume.driver})
        return volume, created

    def users_of(self, name: str) -> list[str]:
        """Ids of the containers referencing the volume ``name`` (any state)."""
        ids = [c.id for c in self._list_containers() if name in views.volume_names(c.mounts)]
        ids += [cid for cid, names in self._pending.items() if name in names and cid not in ids]
        return ids

    def _used_names(self) -> set[str]:
        used = {n for c in self._list_containers() for n in views.volume_names(c.mounts)}
        return used.union(*self._pending.values())

    async def remove(self, name: str, force: bool = False) -> None:
        """``DELETE /volumes/{name}``. ``force`` only hides a missing volume (docker keeps
        refusing an in-use one).

        Raises:
            NotFound: ``get <name>: no such volume``.
            Conflict: ``remove <name>: volume is in use - [<id> ...]``.
        """
        async with self._lock:
            volume = self._volumes.get(name)
            if volume is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self.users_of(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{' '.join(users)}]")
            await self._remove(volume)

    async def _remove(self, volume: Volume) -> None:
        volume.removing = True
        self._db.put_record(TABLE, volume.name, volume.to_record())
        await asyncio.to_thread(self.driver.remove, volume.name)
        self._db.delete_record(TABLE, volume.name)
        self._volumes.pop(volume.name, None)
        self._events.publish("volume", "destroy", volume.name, {"driver": volume.driver})

    async def prune(self, filters: dict[str, list[str]] | None = None,
                    anonymous_only: bool = False) -> dict[str, Any]:
        """``POST /volumes/prune``: remove unused volumes matching ``filters`` (``label``,
        ``label!``, ``all``). With ``anonymous_only`` (API >= 1.42) named volumes are kept
        unless ``all=true``. Returns ``{"VolumesDeleted": [...], "SpaceReclaimed": bytes}``."""
        filters = filters or {}
        views.check_filters(filters, views.PRUNE_FILTERS)
        named_too = not anonymous_only or views.prune_all(filters)
        deleted: list[str] = []
        reclaimed = 0
        async with self._lock:
            for name, volume in sorted(self._volumes.items()):
                anonymous = volume.anonymous or ANONYMOUS_LABEL in (volume.labels or {})
                if (not named_too and not anonymous) or not views.prune_matches(volume, filters):
                    continue
                if self.users_of(name):
                    continue
                reclaimed += await asyncio.to_thread(self.driver.size, name)
                await self._remove(volume)
                deleted.append(name)
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    # ----- containers: create ------------------------------------------------------------
    async def validate(self, container: Container, image_config: dict[str, Any]) -> None:
        """At create: parse the container's mounts, create its named and anonymous volumes and
        fill ``container.mounts`` (see :class:`berth.containers.interfaces.VolumeMounter`).

        ``image_config`` is unused: ``container.config["Volumes"]`` already holds the image's
        volumes merged with the user's. Raises InvalidParameter/NotFound (docker's texts); on
        error the volumes created here are removed again.
        """
        async with self._lock:
            specs = self._plan(container)
            created: list[Volume] = []
            try:
                points = [self._mount_point(spec, container.host_config, created) for spec in specs]
            except BaseException:
                for volume in created:
                    await self._remove(volume)
                raise
        container.mounts = points
        self._pending[container.id] = set(views.volume_names(points))

    def _plan(self, container: Container) -> list[MountSpec]:
        hc = container.host_config
        mounts = [parse_mount(m) for m in hc.get("Mounts") or []]
        for spec in mounts:
            if spec.type == BIND and not spec.create_source and not os.path.exists(spec.source):
                raise InvalidParameter(f'invalid mount config for type "bind": bind source path does not exist: '
                                       f"{spec.source}")
        binds = [parse_bind(b) for b in hc.get("Binds") or []]
        tmpfs = {t.destination for t in parse_tmpfs_map(hc.get("Tmpfs"))}
        inherited: list[MountSpec] = []
        for raw in hc.get("VolumesFrom") or []:
            ref, mode = parse_volumes_from(raw)
            other = self._container(ref)
            inherited += [from_mount_point(p, mode) for p in other.mounts]
        image_volumes = list((container.config.get("Volumes") or {}).keys())
        return plan_mounts(inherited, binds, mounts, tmpfs, image_volumes)

    def _container(self, ref: str) -> Container:
        if self._resolve is None:
            raise InvalidParameter(f"No such container: {ref}")
        try:
            return self._resolve(ref)
        except NotFound as exc:
            # dockerd answers 400 here: the bad reference is part of the create request.
            raise InvalidParameter(exc.message) from None

    def _mount_point(self, spec: MountSpec, host_config: dict[str, Any], created: list[Volume]) -> dict[str, Any]:
        if spec.type != VOLUME:
            return views.mount_point(spec)
        if spec.origin == "volumes-from":
            volume = self.get(spec.source)
        else:
            name = spec.source or new_volume_name()
            # An anonymous --mount keeps its volume-label values (dockerd does) beside berth's marker.
            labels = (dict(spec.labels) or None) if spec.source else {**spec.labels, ANONYMOUS_LABEL: ""}
            driver = spec.driver or str(host_config.get("VolumeDriver") or "")
            volume, new = self._create(name, driver, dict(spec.driver_options) or None, labels, not spec.source)
            if new:
                created.append(volume)
        return views.mount_point(spec, volume.name, str(self.driver.data_path(volume.name)))

    # ----- containers: create (copy-up) ---------------------------------------------------
    @staticmethod
    def wants_image_content(container: Container) -> bool:
        """True when :meth:`populate` has work for ``container``: a volume to fill from the image
        or an image volume whose path must be checked (the caller then mounts the rootfs)."""
        return any(p.get("Type") == VOLUME and (p.get("CopyData") or views.mount_spec(p).origin == FROM_IMAGE)
                   for p in container.mounts)

    async def populate(self, container: Container, rootfs: Path) -> None:
        """At create, with the new container's rootfs mounted at ``rootfs``: refuse an image
        volume over a file, and fill each empty volume from the image content at its mount point
        (owner and mode kept) unless ``nocopy``. Each mount point is filled at most once: its
        ``CopyData`` is cleared, so later starts never copy (dockerd's ``populateVolumes``, run
        at create; docs: "Volumes", "Populate a volume using a container").

        Raises:
            SystemError_: ``cannot mount volume over existing file, file exists <path>``, a
                volume that cannot be mounted, or a failed copy.
        """
        shadowed = {t.destination for t in parse_tmpfs_map(container.host_config.get("Tmpfs"))}
        for point in container.mounts:
            spec = views.mount_spec(point)
            if point.get("Type") != VOLUME or spec.destination in shadowed:
                continue
            image_path = _image_path(rootfs, spec)
            if not point.get("CopyData"):
                continue
            point["CopyData"] = False
            if not image_path.exists():
                continue  # nothing to copy: dockerd does not even mount the volume then
            volume = self.get(str(point["Name"]))
            # A volume the driver mounts (tmpfs, bind) is mounted for the copy only, as dockerd does.
            user = f"{container.id}-populate"
            path = await asyncio.to_thread(self.driver.acquire, volume, user)
            try:
                await self._copy_image_content(volume, point, image_path, path)
            finally:
                await asyncio.to_thread(self.driver.release, volume.name, user)

    @staticmethod
    async def _copy_image_content(volume: Volume, point: dict[str, Any], image_path: Path, data: Path) -> None:
        try:
            await asyncio.to_thread(copy_up, image_path, data)
        except OSError as exc:
            raise SystemError_(f"failed to copy image content to volume {volume.name}: {exc}") from None
        point["CopyData"] = False

    # ----- containers: start / stop / remove ---------------------------------------------
    async def setup(self, container: Container, rootfs: Path) -> list[Mount]:
        """At start: mount the container's volumes (local driver options), fill a volume
        :meth:`populate` left unfilled, create missing ``-v`` bind sources, and
        return the OCI mounts: volumes as ``rbind`` of ``_data``; binds ``rbind`` (``bind`` when
        non-recursive), ``ro``, propagation; tmpfs ``noexec,nosuid,nodev,rprivate`` plus the
        user's options. Raises SystemError_/InvalidParameter with docker's texts, leaving nothing
        mounted."""
        await self.teardown(container)
        tmpfs = parse_tmpfs_map(container.host_config.get("Tmpfs"))
        shadowed = {t.destination for t in tmpfs}
        self._active[container.id] = []
        out: list[Mount] = []
        try:
            for point in container.mounts:
                spec = views.mount_spec(point)
                if spec.destination in shadowed:
                    continue  # a --tmpfs at the same place wins, as in dockerd's setupMounts
                if point.get("Type") == VOLUME:
                    out.append(await self._setup_volume(container, point, spec, rootfs))
                elif point.get("Type") == BIND:
                    out.append(await asyncio.to_thread(_bind_mount, spec))
                elif point.get("Type") == TMPFS:
                    out.append(Mount(spec.destination, "tmpfs", "tmpfs", tmpfs_mount_options(spec)))
            out += [Mount(t.destination, "tmpfs", "tmpfs", tmpfs_mount_options(t)) for t in tmpfs]
        except BaseException:
            await self.teardown(container)
            raise
        return out

    async def _setup_volume(self, container: Container, point: dict[str, Any], spec: MountSpec,
                            rootfs: Path) -> Mount:
        volume = self.get(str(point["Name"]))
        image_path = _image_path(rootfs, spec)
        try:
            path = await asyncio.to_thread(self.driver.acquire, volume, container.id)
        except SystemError_ as exc:
            raise SystemError_(f"error while mounting volume '{self.driver.data_path(volume.name)}': "
                               f"{exc.message}") from None
        self._active[container.id].append(volume.name)
        if point.get("CopyData"):
            # Only a container whose create did not populate (made by an older berthd) gets here.
            await self._copy_image_content(volume, point, image_path, path)
        self._events.publish("volume", "mount", volume.name, {
            "container": container.id, "destination": spec.destination, "driver": volume.driver,
            "propagation": "", "read/write": str(not spec.read_only).lower()})
        return Mount(spec.destination, str(path), "bind", ("rbind", "ro") if spec.read_only else ("rbind",))

    async def teardown(self, container: Container) -> None:
        """The container stopped: release its volumes (a local-driver mount is undone when its
        last user stops) and publish ``unmount``. Idempotent."""
        for name in dict.fromkeys(self._active.pop(container.id, [])):
            released = await asyncio.to_thread(self.driver.release, name, container.id)
            if released:
                driver = self._volumes[name].driver if name in self._volumes else DRIVER
                self._events.publish("volume", "unmount", name, {"container": container.id, "driver": driver})

    async def hold_for_files(self, container: Container) -> None:
        """Mount the container's volumes that the local driver mounts (``-o type=...``) for a file
        operation (``cp``) that may find the container stopped, as dockerd mounts them for its
        archive endpoints; a running container's are mounted already (held once more). Undo with
        :meth:`release_for_files`. Raises SystemError_ (``error while mounting volume ...``)."""
        user = f"{container.id}-files"
        for name in dict.fromkeys(views.volume_names(container.mounts)):
            volume = self._volumes.get(name)
            if volume is None or not volume.needs_mount:
                continue
            try:
                await asyncio.to_thread(self.driver.acquire, volume, user)
            except SystemError_ as exc:
                await self.release_for_files(container)
                raise SystemError_(f"error while mounting volume '{self.driver.data_path(name)}': "
                                   f"{exc.message}") from None

    async def release_for_files(self, container: Container) -> None:
        """Undo :meth:`hold_for_files` (unmounting what nobody else uses). Idempotent."""
        for name in dict.fromkeys(views.volume_names(container.mounts)):
            await asyncio.to_thread(self.driver.release, name, f"{container.id}-files")

    async def remove_container(self, container: Container, remove_anonymous: bool) -> None:
        """The container is being removed: forget its references and, with
        ``remove_anonymous`` (``rm -v``, ``--rm``), delete its anonymous volumes that no other
        container uses. Named volumes are never removed here."""
        await self.teardown(container)
        self._pending.pop(container.id, None)
        if not remove_anonymous:
            return
        async with self._lock:
            for name in dict.fromkeys(views.volume_names(container.mounts)):
                volume = self._volumes.get(name)
                if volume is None or not volume.anonymous:
                    continue
                if [cid for cid in self.users_of(name) if cid != container.id]:
                    continue  # docker ignores "in use" here: another container still needs it
                try:
                    await self._remove(volume)
                except SystemError_:
                    log.exception("removing anonymous volume %s failed", name)


def _image_path(rootfs: Path, spec: MountSpec) -> Path:
    """Where ``spec``'s destination is in the image, resolved inside ``rootfs``. Raises
    SystemError_ for an image volume over a file (dockerd's text, checked at create)."""
    image_path = secure_join(rootfs, spec.destination)
    if spec.origin == FROM_IMAGE and image_path.exists() and not image_path.is_dir():
        raise SystemError_(f"cannot mount volume over existing file, file exists {image_path}")
    return image_path


def _bind_mount(spec: MountSpec) -> Mount:
    """The OCI mount of a bind, after creating a missing ``-v`` source and checking propagation."""
    local.ensure_bind_source(spec.source, spec.create_source)
    local.check_propagation(spec.source, spec.propagation)
    options = ["rbind" if spec.recursive else "bind"]
    if spec.read_only:
        options.append("ro")
    if spec.propagation:
        options.append(spec.propagation)
    return Mount(spec.destination, spec.source, "bind", tuple(options))
