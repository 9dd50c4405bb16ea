"""The volume service: the daemon's volumes (:class:`berth.volumes.catalog.VolumeCatalog`)
plus the mounts of containers (:class:`berth.containers.interfaces.VolumeMounter`): volumes,
binds and tmpfs planned at create, image content copied into new volumes at create, mounts made
at start and undone at stop, anonymous volumes removed with their container when asked.

Behaviour follows dockerd 20.10 (docs: "Volumes", "Bind mounts", "tmpfs mounts", "docker run"
``-v``/``--mount``/``--tmpfs``/``--volumes-from``). Events: volume ``mount`` and ``unmount``
with docker's attributes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from berth.containers.model import Container
from berth.errors import InvalidParameter, NotFound, SystemError_
from berth.runtime.spec import Mount
from berth.snapshots.fsutil import secure_join
from berth.volumes import local, views
from berth.volumes.catalog import VolumeCatalog, new_volume_name
from berth.volumes.copyup import copy_up
from berth.volumes.local import DRIVER, Volume
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
)

log = logging.getLogger("berth.volumes")


class VolumeService(VolumeCatalog):
    """Volumes and container mounts of one daemon. Built by the daemon as
    ``VolumeService(config, db, events)`` (see :class:`VolumeCatalog`)."""

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
