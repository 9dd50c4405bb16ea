"""``POST /build`` query parameters -> :class:`BuildOptions` (sans-I/O).

Parameters and their meaning follow the Engine API v1.41 "ImageBuild" operation and the
"docker build" reference; validation messages are dockerd 20.10's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidParameter
from berth.images import reference as refs

_MEMORY_FIELDS = {"memory": "Memory", "memswap": "MemorySwap", "cpushares": "CpuShares",
                  "cpuperiod": "CpuPeriod", "cpuquota": "CpuQuota", "shmsize": "ShmSize"}
_STRING_FIELDS = {"cpusetcpus": "CpusetCpus", "cpusetmems": "CpusetMems", "cgroupparent": "CgroupParent"}


@dataclass(frozen=True)
class BuildOptions:
    """What one build was asked to do.

    ``tags`` are normalised references (``docker.io/library/app:latest``); ``build_args`` maps
    a name to its value or None (given without a value: unset); ``network_mode`` is "" for the
    default; ``host_config`` holds the HostConfig fields RUN containers get (resources,
    ``ShmSize``, ``ExtraHosts``, ``SecurityOpt``, ``Ulimits``).
    """

    tags: tuple[str, ...] = ()
    dockerfile: str = "Dockerfile"
    quiet: bool = False
    no_cache: bool = False
    cache_from: tuple[str, ...] = ()
    pull: bool = False
    remove: bool = True
    force_remove: bool = False
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    network_mode: str = ""
    remote: str = ""
    platform: str = ""
    host_config: dict[str, Any] = field(default_factory=dict)


def _values(query: Mapping[str, list[str]], name: str) -> list[str]:
    return list(query.get(name) or [])


def _first(query: Mapping[str, list[str]], name: str, default: str = "") -> str:
    """A single-valued parameter: its first value when repeated, as dockerd's ``r.FormValue``
    (docker-py sends ``dockerfile`` twice for a Dockerfile outside the context: name, then text)."""
    values = _values(query, name)
    return values[0] if values else default


def _flag(query: Mapping[str, list[str]], name: str, default: bool) -> bool:
    """docker's ``httputils.BoolValue``: anything but "", "0", "no", "false", "none" is true."""
    value = _first(query, name).strip().lower()
    if value == "":
        return default
    return value not in ("0", "no", "false", "none")


def _json(query: Mapping[str, list[str]], name: str, kind: type, default: Any) -> Any:
    raw = _first(query, name)
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidParameter(f"invalid {name} value: {raw}") from None
    if value is None:
        return default
    if not isinstance(value, kind):
        raise InvalidParameter(f"invalid {name} value: {raw}")
    return value


def normalise_tag(tag: str) -> str:
    """The stored form of a ``-t`` value (``app`` -> ``docker.io/library/app:latest``).

    Raises InvalidParameter (``invalid reference format``...) as docker does before building.
    """
    ref = refs.parse_normalized_named(tag)
    if ref.digest:
        raise InvalidParameter("refusing to create a tag with a digest reference")
    return str(refs.with_default_tag(ref))


def parse_build_query(query: Mapping[str, list[str]]) -> BuildOptions:
    """Build options from the request's query (every parameter as a list of its values).

    Raises InvalidParameter for a bad tag, bad JSON in ``buildargs``/``labels``/``cachefrom``/
    ``ulimits``, a non-numeric resource value, or ``squash`` (experimental in docker).
    """
    tags = tuple(dict.fromkeys(normalise_tag(t) for t in _values(query, "t") if t))
    if _flag(query, "squash", False):
        raise InvalidParameter("squash is only supported with experimental mode")
    build_args = {str(k): (None if v is None else str(v)) for k, v in _json(query, "buildargs", dict, {}).items()}
    labels = {str(k): str(v) for k, v in _json(query, "labels", dict, {}).items()}
    cache_from = tuple(str(v) for v in _json(query, "cachefrom", list, []))
    return BuildOptions(
        tags=tags,
        dockerfile=_first(query, "dockerfile") or "Dockerfile",
        quiet=_flag(query, "q", False),
        no_cache=_flag(query, "nocache", False),
        cache_from=cache_from,
        pull=_flag(query, "pull", False),
        remove=_flag(query, "rm", True),
        force_remove=_flag(query, "forcerm", False),
        build_args=build_args,
        labels=labels,
        target=_first(query, "target"),
        network_mode=_first(query, "networkmode"),
        remote=_first(query, "remote"),
        platform=_first(query, "platform"),
        host_config=_host_config(query),
    )


def _host_config(query: Mapping[str, list[str]]) -> dict[str, Any]:
    """HostConfig fields of RUN containers (docker's ``hostConfigFromOptions``)."""
    out: dict[str, Any] = {}
    for name, key in _MEMORY_FIELDS.items():
        raw = _first(query, name)
        if raw:
            try:
                out[key] = int(raw)
            except ValueError:
                raise InvalidParameter(f"invalid {name} value: {raw}") from None
    for name, key in _STRING_FIELDS.items():
        if _first(query, name):
            out[key] = _first(query, name)
    hosts = [h for value in _values(query, "extrahosts") for h in value.split(",") if h]
    if hosts:
        out["ExtraHosts"] = hosts
    ulimits = _json(query, "ulimits", list, [])
    if ulimits:
        out["Ulimits"] = ulimits
    return out
