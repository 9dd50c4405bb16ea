"""The daemon's networks in memory, backed by the ``networks`` table, and docker's ways of naming
one (full ID, name, ID prefix: "docker network inspect")."""

from __future__ import annotations

import logging

from berth.errors import InvalidParameter, NotFound
from berth.network.records import NetworkRecord
from berth.store.db import Database

log = logging.getLogger(__name__)

TABLE = "networks"


class NetworkRegistry:
    """Every network record, loaded once and written through on each change.

    Mutate a record, then call :meth:`save`; the record and its IPAM state and endpoints are one
    row, so each save is atomic.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._networks: dict[str, NetworkRecord] = {}

    def load(self) -> None:
        """Read every record from the database (malformed rows are logged and skipped)."""
        self._networks.clear()
        for data in self.db.get_records(TABLE):
            try:
                net = NetworkRecord.from_json(data)
            except (KeyError, ValueError, TypeError, InvalidParameter) as exc:
                log.error("skipping malformed network record %s: %s", data.get("Id", "?"), exc)
                continue
            self._networks[net.id] = net

    def save(self, net: NetworkRecord) -> None:
        """Persist ``net`` (insert or replace) and keep it in memory."""
        self.db.put_record(TABLE, net.id, net.to_json(), name=net.name)
        self._networks[net.id] = net

    def delete(self, net: NetworkRecord) -> None:
        """Forget ``net`` in the database and in memory."""
        self.db.delete_record(TABLE, net.id)
        self._networks.pop(net.id, None)

    def all(self) -> list[NetworkRecord]:
        """Every network, in no particular order."""
        return list(self._networks.values())

    def by_name(self, name: str) -> NetworkRecord | None:
        """The network called exactly ``name``, or None."""
        return next((net for net in self._networks.values() if net.name == name), None)

    def get(self, ref: str) -> NetworkRecord | None:
        """The network ``ref`` names: full ID, then exact name, then a unique ID prefix; None when
        nothing matches. Raises InvalidParameter when a prefix matches several networks."""
        if not ref:
            return None
        if ref in self._networks:
            return self._networks[ref]
        named = self.by_name(ref)
        if named is not None:
            return named
        matches = [net for net in self._networks.values() if net.id.startswith(ref)]
        if len(matches) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(matches)} matches found based on ID prefix)")
        return matches[0] if matches else None

    def find(self, ref: str) -> NetworkRecord:
        """Like :meth:`get`, but raises NotFound ``network X not found`` (dockerd's wording)."""
        net = self.get(ref)
        if net is None:
            raise NotFound(f"network {ref} not found")
        return net

    def holding(self, container_id: str) -> list[NetworkRecord]:
        """Networks with an active endpoint of ``container_id``, in interface order (eth0 first)."""
        nets = [net for net in self._networks.values() if container_id in net.endpoints]
        return sorted(nets, key=lambda net: _ifindex(net.endpoints[container_id].ifname))


def _ifindex(ifname: str) -> int:
    digits = ifname.removeprefix("eth")
    return int(digits) if digits.isdigit() else 1 << 16
