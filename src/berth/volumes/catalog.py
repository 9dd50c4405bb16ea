"""The daemon's volumes: records, create, list, inspect, remove, prune and crash repair
(Engine API v1.41 "Volume" section; docs: "docker volume create" ... "docker volume prune").

Volumes live under ``<data-root>/volumes/<name>/_data`` (:mod:`berth.volumes.local`), their
metadata in the ``volumes`` table. A volume is *in use* while a container (any state)
references it in its ``mounts``; the container service tells us about containers through
:meth:`VolumeCatalog.bind_containers`. Events: volume ``create`` and ``destroy`` with docker's
attributes. :class:`berth.volumes.service.VolumeService` adds the mounts of containers.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from berth.containers.model import Container
from berth.errors import Conflict, InvalidParameter, NotFound
from berth.volumes import local, views
from berth.volumes.local import DRIVER, LocalDriver, Volume
from berth.volumes.mountspec import ANONYMOUS_LABEL, volume_name_error

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


class VolumeCatalog:
    """Volumes of one daemon; the daemon builds its subclass ``VolumeService(config, db, events)``
    (``config.data_root``; ``db``: :class:`berth.store.db.Database`; ``events``:
    :class:`berth.daemon.events.EventBus`), which adds the container mounts."""

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
