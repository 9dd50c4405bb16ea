"""Docker's JSON shapes for networks and container network settings, and the list/prune filters
(pure: records in, dicts out).

Shapes are dockerd 20.10's (Engine API v1.41 "Network", "EndpointSettings", "NetworkSettings"),
including its legacy top-level NetworkSettings fields, which only the default ``bridge`` network
fills ("docker inspect", deprecated fields).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from berth.errors import InvalidParameter
from berth.filters import check_keys, labels_match, prune_labels_match
from berth.network.records import EndpointRecord, NetworkRecord
from berth.timeutil import parse_rfc3339_ns, parse_timestamp_arg

LIST_FILTERS = frozenset({"driver", "id", "label", "name", "scope", "type", "dangling"})
PRUNE_FILTERS = frozenset({"label", "label!", "until"})


def network_view(net: NetworkRecord, containers: bool = True) -> dict[str, Any]:
    """The ``GET /networks/{id}`` object; ``containers=False`` leaves ``Containers`` empty, as
    ``GET /networks`` does since API 1.28."""
    return {
        "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local", "Driver": net.driver,
        "EnableIPv6": False,
        "IPAM": _ipam_view(net),
        "Internal": net.internal, "Attachable": net.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": {cid: endpoint_resource(ep) for cid, ep in sorted(net.endpoints.items())} if containers else {},
        "Options": dict(net.options), "Labels": dict(net.labels),
    }


def _ipam_view(net: NetworkRecord) -> dict[str, Any]:
    """``IPAM`` as dockerd shows it: the predefined networks' has null options and, for the
    default bridge, its subnet and gateway (dockerd 20.10's ``docker network inspect bridge``,
    ``none``, ``host``); other networks echo their creation request."""
    if net.predefined:
        config = [{"Subnet": str(net.ipam.subnet), "Gateway": str(net.ipam.gateway)}] if net.ipam else []
        return {"Driver": net.ipam_driver, "Options": None, "Config": config}
    return {"Driver": net.ipam_driver, "Options": net.ipam_options,
            "Config": [dict(entry) for entry in net.ipam_config]}


def endpoint_resource(ep: EndpointRecord) -> dict[str, str]:
    """One entry of a network's ``Containers`` map (Engine API "EndpointResource")."""
    return {"Name": ep.container_name, "EndpointID": ep.endpoint_id, "MacAddress": ep.mac,
            "IPv4Address": str(ep.address), "IPv6Address": ""}


def endpoint_settings(config: Mapping[str, Any], network_id: str = "", ep: EndpointRecord | None = None,
                      gateway: str = "") -> dict[str, Any]:
    """A ``NetworkSettings.Networks`` entry: the configured part from ``config`` (an
    ``EndpointsConfig`` value: IPAMConfig, Links, Aliases, DriverOpts) and, while connected, the
    endpoint's live fields from ``ep``."""
    return {
        "IPAMConfig": config.get("IPAMConfig"), "Links": config.get("Links") or None,
        "Aliases": config.get("Aliases") or None, "NetworkID": network_id,
        "EndpointID": ep.endpoint_id if ep else "", "Gateway": gateway if ep else "",
        "IPAddress": str(ep.ip) if ep else "", "IPPrefixLen": ep.address.network.prefixlen if ep else 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "MacAddress": ep.mac if ep else "", "DriverOpts": config.get("DriverOpts"),
    }


def network_settings(networks: Mapping[str, dict[str, Any]], ports: dict[str, Any] | None = None,
                     sandbox_key: str = "", sandbox_id: str = "") -> dict[str, Any]:
    """The container's ``NetworkSettings``; the legacy top-level address fields mirror the
    ``bridge`` entry of ``networks`` (empty for every other network, as in dockerd 20.10)."""
    legacy = networks.get("bridge") or {}
    return {
        "Bridge": "", "SandboxID": sandbox_id, "HairpinMode": False, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": ports or {}, "SandboxKey": sandbox_key,
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": legacy.get("EndpointID", ""), "Gateway": legacy.get("Gateway", ""),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": legacy.get("IPAddress", ""),
        "IPPrefixLen": legacy.get("IPPrefixLen", 0), "IPv6Gateway": "", "MacAddress": legacy.get("MacAddress", ""),
        "Networks": {name: networks[name] for name in sorted(networks)},
    }


# ---- filters ("docker network ls --filter", "docker network prune --filter")

def _matches_any(patterns: list[str], value: str) -> bool:
    """dockerd's ``filters.Match``: equal, or the pattern as a regular expression found in ``value``."""
    for pattern in patterns:
        if pattern == value:
            return True
        try:
            if re.search(pattern, value):
                return True
        except re.error:
            continue
    return False


def _dangling(values: list[str]) -> bool:
    wanted = {v.lower() for v in values}
    if wanted - {"true", "1", "false", "0"} or len({v in ("true", "1") for v in wanted}) > 1:
        raise InvalidParameter(
            "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")")
    return bool(wanted & {"true", "1"})


def _types(values: list[str]) -> set[str]:
    for value in values:
        if value not in ("custom", "builtin"):
            raise InvalidParameter(f"invalid filter: 'type'='{value}'")
    return set(values)


def filter_networks(networks: Iterable[NetworkRecord], filters: Mapping[str, list[str]]) -> list[NetworkRecord]:
    """The networks matching ``filters`` (keys ANDed, values of one key ORed), sorted by name.

    Keys: driver, id, label, name, scope, type (custom|builtin), dangling (user networks without
    active endpoints). Raises InvalidParameter for an unknown key or a bad type/dangling value.
    """
    check_keys(filters, LIST_FILTERS)
    types = _types(filters["type"]) if filters.get("type") else None
    dangling = _dangling(filters["dangling"]) if filters.get("dangling") else None
    kept = []
    for net in networks:
        if filters.get("driver") and net.driver not in filters["driver"]:
            continue
        if filters.get("id") and not _matches_any(filters["id"], net.id):
            continue
        if filters.get("name") and not _matches_any(filters["name"], net.name):
            continue
        if filters.get("scope") and "local" not in filters["scope"]:
            continue
        if not labels_match(net.labels, filters.get("label", [])):
            continue
        if types is not None and ("builtin" if net.predefined else "custom") not in types:
            continue
        if dangling is not None and (not net.predefined and not net.endpoints) != dangling:
            continue
        kept.append(net)
    return sorted(kept, key=lambda n: n.name)


def prune_candidates(networks: Iterable[NetworkRecord], filters: Mapping[str, list[str]],
                     now_ns: int | None = None) -> list[NetworkRecord]:
    """User networks ``network prune`` removes: no active endpoint, labels matching ``label``, none
    of the ``label!`` ones, created before ``until``. Raises InvalidParameter for bad filters."""
    check_keys(filters, PRUNE_FILTERS)
    until = None
    if filters.get("until"):
        value = filters["until"][-1]
        try:
            until = parse_timestamp_arg(value, now_ns)
        except ValueError:
            raise InvalidParameter(f"invalid filter 'until={value}'") from None
    kept = []
    for net in networks:
        if net.predefined or net.endpoints or not prune_labels_match(net.labels, filters):
            continue
        if until is not None and parse_rfc3339_ns(net.created) > until:
            continue
        kept.append(net)
    return sorted(kept, key=lambda n: n.created)
