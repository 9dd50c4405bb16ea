"""Docker's JSON shapes for volumes and mount points, and the volume list/prune filters.

Engine API v1.41: ``Volume`` (``GET /volumes/{name}``), ``MountPoint`` (``Mounts`` of
``GET /containers/{id}/json``), filters of ``GET /volumes`` (``dangling``, ``name``, ``driver``,
``label``) and ``POST /volumes/prune`` (``label``, ``label!``; ``all`` from API 1.42).
"""

from __future__ import annotations

import re
from typing import Any

from berth.errors import InvalidParameter
from berth.filters import check_keys, labels_match, prune_labels_match
from berth.volumes.local import Volume
from berth.volumes.mountspec import BIND, TMPFS, VOLUME, MountSpec

LIST_FILTERS = ("dangling", "name", "driver", "label")
PRUNE_FILTERS = ("label", "label!", "all")
_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def volume_json(volume: Volume, mountpoint: str) -> dict[str, Any]:
    """The Engine API ``Volume`` object (``Labels``/``Options`` null when the creator gave none,
    ``{}`` when it gave an empty map, as dockerd)."""
    return {
        "CreatedAt": volume.created_at, "Driver": volume.driver, "Labels": _copy(volume.labels),
        "Mountpoint": mountpoint, "Name": volume.name, "Options": _copy(volume.options), "Scope": "local",
    }


def _copy(mapping: dict[str, str] | None) -> dict[str, str] | None:
    return None if mapping is None else dict(mapping)


def mount_point(spec: MountSpec, volume_name: str = "", volume_path: str = "") -> dict[str, Any]:
    """A container's ``MountPoint`` for ``spec`` (``volume_name``/``volume_path`` of the
    volume backing a ``volume`` spec).

    Beside docker's keys (Type, Name, Source, Destination, Driver, Mode, RW, Propagation; Name
    and Driver only for volumes) it carries, like dockerd's persisted mount points, ``Spec``
    (the :class:`MountSpec` record) and ``CopyData``; the container views show docker's keys only.
    """
    out: dict[str, Any] = {"Type": spec.type}
    if spec.type == VOLUME:
        out.update({"Name": volume_name, "Source": volume_path, "Destination": spec.destination,
                    "Driver": "local"})
    elif spec.type == BIND:
        out.update({"Source": spec.source, "Destination": spec.destination})
    else:
        out.update({"Source": "", "Destination": spec.destination})
    out.update({"Mode": spec.mode, "RW": not spec.read_only,
                "Propagation": spec.propagation if spec.type == BIND else ""})
    out["Spec"] = spec.to_record()
    out["CopyData"] = spec.type == VOLUME and spec.copy_data
    return out


def mount_spec(point: dict[str, Any]) -> MountSpec:
    """The :class:`MountSpec` kept in a mount point (rebuilt from docker's keys when absent)."""
    if isinstance(point.get("Spec"), dict):
        return MountSpec.from_record(point["Spec"])
    kind = str(point.get("Type") or VOLUME)
    source = str(point.get("Name") or "") if kind == VOLUME else str(point.get("Source") or "")
    return MountSpec(kind, str(point.get("Destination") or ""), source, not point.get("RW", True),
                     str(point.get("Mode") or ""), str(point.get("Propagation") or ""),
                     copy_data=bool(point.get("CopyData")), create_source=kind == BIND)


def volume_names(points: list[dict[str, Any]]) -> list[str]:
    """Names of the volumes used by a container's mount points."""
    return [str(p["Name"]) for p in points if p.get("Type") == VOLUME and p.get("Name")]


def check_filters(filters: dict[str, list[str]], allowed: tuple[str, ...]) -> None:
    """Refuse unknown filter keys and bad boolean values (``Invalid filter 'x'``, docker's text)."""
    check_keys(filters, allowed)
    for key, values in filters.items():
        if key in ("dangling", "all") and any(v not in _BOOLS for v in values):
            raise InvalidParameter(f"Invalid filter '{key}=[{' '.join(values)}]'")


def _name_matches(name: str, pattern: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern in name


def list_matches(volume: Volume, filters: dict[str, list[str]], in_use: bool) -> bool:
    """``GET /volumes`` filters: values of one key are ORed, keys ANDed. ``name`` is a regular
    expression searched in the name, ``driver`` exact, ``label`` ``key`` or ``key=value``,
    ``dangling`` true for volumes no container references."""
    if filters.get("dangling") and not any(_BOOLS[v] != in_use for v in filters["dangling"]):
        return False
    if filters.get("name") and not any(_name_matches(volume.name, p) for p in filters["name"]):
        return False
    if filters.get("driver") and volume.driver not in filters["driver"]:
        return False
    return labels_match(volume.labels or {}, filters.get("label", []))


def prune_matches(volume: Volume, filters: dict[str, list[str]]) -> bool:
    """``POST /volumes/prune`` label filters (see :func:`berth.filters.prune_labels_match`)."""
    return prune_labels_match(volume.labels or {}, filters)


def prune_all(filters: dict[str, list[str]]) -> bool:
    """The ``all`` prune filter (API 1.42): also prune named volumes."""
    return any(_BOOLS[v] for v in filters.get("all", []))


def is_tmpfs(point: dict[str, Any]) -> bool:
    return point.get("Type") == TMPFS
