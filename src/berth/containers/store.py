"""Container records: in memory for lookups, persisted in SQLite on every change.

Lookup follows docker's ``GetContainer``: full ID, then exact name (with or without ``/``), then
a unique ID prefix; an ambiguous prefix and an unknown name both give docker's messages.
"""

from __future__ import annotations

import re
import threading

from berth.containers.model import Container
from berth.errors import Conflict, InvalidParameter, NotFound
from berth.store.db import Database

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class ContainerStore:
    """All containers of one daemon, keyed by ID, with a name index."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.RLock()
        self._by_id: dict[str, Container] = {}
        for record in db.get_records("containers"):
            container = Container.from_record(record)
            self._by_id[container.id] = container

    def all(self) -> list[Container]:
        """Every container, newest first."""
        with self._lock:
            return sorted(self._by_id.values(), key=lambda c: c.created, reverse=True)

    def get(self, ref: str) -> Container:
        """Resolve an ID, name or unique ID prefix. Raises NotFound (``No such container: x``)."""
        container = self.find(ref)
        if container is None:
            raise NotFound(f"No such container: {ref}")
        return container

    def find(self, ref: str) -> Container | None:
        with self._lock:
            if ref in self._by_id:
                return self._by_id[ref]
            name = ref.lstrip("/")
            for container in self._by_id.values():
                if container.name == name:
                    return container
            if not ref or not re.fullmatch(r"[0-9a-f]+", ref):
                return None
            found = [c for c in self._by_id.values() if c.id.startswith(ref)]
            if len(found) > 1:
                raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
            return found[0] if found else None

    def name_owner(self, name: str) -> Container | None:
        with self._lock:
            for container in self._by_id.values():
                if container.name == name:
                    return container
            return None

    def check_name(self, name: str, owner: str | None = None) -> str:
        """Validate a container name and make sure it is free. Returns it without ``/``.

        Raises InvalidParameter for a bad name and Conflict (docker's text) when in use.
        """
        if not NAME_RE.match(name):
            raise InvalidParameter(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        name = name.lstrip("/")
        other = self.name_owner(name)
        if other is not None and other.id != owner:
            raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                           f'"{other.id}". You have to remove (or rename) that container to be able to '
                           "reuse that name.")
        return name

    def add(self, container: Container) -> None:
        """Insert a new container (the name must have been checked under the same lock)."""
        with self._lock:
            self.check_name(container.name, container.id)
            self._by_id[container.id] = container
            self.save(container)

    def save(self, container: Container) -> None:
        """Persist the container's current record."""
        with self._lock:
            if container.id in self._by_id:
                self.db.put_record("containers", container.id, container.to_record(), name=container.name)

    def remove(self, container: Container) -> None:
        with self._lock:
            self._by_id.pop(container.id, None)
            self.db.delete_record("containers", container.id)
