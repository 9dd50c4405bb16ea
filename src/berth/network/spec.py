"""The body of ``POST /networks/create`` checked and turned into a typed request (pure).

Fields and errors follow the Engine API v1.41 "NetworkCreate" request and dockerd 20.10's answers
("docker network create": ``--driver``, ``--subnet``, ``--ip-range``, ``--gateway``,
``--aux-address``, ``--internal``, ``--attachable``, ``--label``, ``--opt``; bridge driver options
from "Bridge network driver", "Options").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any

from berth.errors import Forbidden, InvalidParameter, NotFound, Unavailable
from berth.network.model import IFNAMSIZ

OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"

ERR_SWARM = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this '
             "node to swarm and try again.")
ERR_NO_IPV6_POOL = ("could not find an available, non-overlapping IPv6 address pool among the defaults to assign "
                    "to the network")


@dataclass(frozen=True)
class NetworkSpec:
    """A validated create request. ``subnet`` None: pick one from the default pools; ``bridge_name``
    None: ``br-<id>``; ``ipam_config`` is the user's ``IPAM.Config`` as inspect echoes it."""

    name: str
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ipam_options: dict[str, str] | None = None
    subnet: IPv4Network | None = None
    gateway: IPv4Address | None = None
    ip_range: IPv4Network | None = None
    aux_addresses: dict[str, IPv4Address] = field(default_factory=dict)
    ipam_config: list[dict[str, Any]] = field(default_factory=list)
    bridge_name: str | None = None
    mtu: int = 1500
    masquerade: bool = True


def check_driver(driver: str) -> None:
    """Accept only the bridge driver, refusing others with dockerd's answers: a second host or
    null network is Forbidden, overlay needs a swarm (Unavailable), unknown drivers are missing
    plugins (NotFound ``plugin "X" not found``)."""
    if driver in ("", "bridge"):
        return
    if driver in ("host", "null"):
        raise Forbidden(f'only one instance of "{driver}" network is allowed')
    if driver == "overlay":
        raise Unavailable(ERR_SWARM)
    if driver in ("macvlan", "ipvlan"):
        raise InvalidParameter(f"network driver {driver} is not supported: berth creates bridge networks only")
    raise NotFound(f'plugin "{driver}" not found')


def _string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidParameter(f"invalid {what}: expected an object of strings")
    return {str(k): str(v) for k, v in value.items()}


def _bool_option(options: Mapping[str, str], key: str, default: bool) -> bool:
    value = options.get(key)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "t", "true"):
        return True
    if value.lower() in ("0", "f", "false"):
        return False
    raise InvalidParameter(f"failed to parse {key} value: invalid syntax: {value!r}")


def _bridge_options(options: Mapping[str, str]) -> tuple[str | None, int, bool]:
    bridge_name = options.get(OPT_BRIDGE_NAME) or None
    if bridge_name is not None and (len(bridge_name) > IFNAMSIZ or "/" in bridge_name or " " in bridge_name):
        raise InvalidParameter(f"invalid bridge name {bridge_name!r}: 1 to {IFNAMSIZ} characters, no '/' or spaces")
    mtu_text = options.get(OPT_MTU) or "1500"
    if not mtu_text.isdigit() or not 68 <= int(mtu_text) <= 65535:
        raise InvalidParameter(f"invalid MTU number: {mtu_text}")
    return bridge_name, int(mtu_text), _bool_option(options, OPT_MASQUERADE, True)


def _parse_subnet(text: str) -> IPv4Network:
    try:
        network = ip_network(text, strict=False)
    except ValueError:
        raise InvalidParameter(f"Invalid subnet {text} : invalid CIDR address: {text}") from None
    if "/" not in text:
        raise InvalidParameter(f"Invalid subnet {text} : invalid CIDR address: {text}")
    if not isinstance(network, IPv4Network):
        raise InvalidParameter(f"IPv6 subnet {text} needs EnableIPv6, and berth networks are IPv4 only")
    return network


def _parse_address(text: str, subnet: IPv4Network, what: str) -> IPv4Address:
    try:
        address = ip_address(text)
    except ValueError:
        raise InvalidParameter(f"failed to allocate {what} ({text}): invalid address") from None
    if not isinstance(address, IPv4Address) or address not in subnet:
        raise InvalidParameter(f"failed to allocate {what} ({text}): Requested address is out of range")
    return address


def _ipam_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    subnet = _parse_subnet(str(entry.get("Subnet") or ""))
    gateway = _parse_address(str(entry["Gateway"]), subnet, "gateway") if entry.get("Gateway") else None
    ip_range = _parse_subnet(str(entry["IPRange"])) if entry.get("IPRange") else None
    if ip_range is not None and not ip_range.subnet_of(subnet):
        raise InvalidParameter(f"no matching subnet for range {ip_range}")
    aux = {str(name): _parse_address(str(ip), subnet, f"aux address {name}")
           for name, ip in _string_map(entry.get("AuxiliaryAddresses"), "AuxiliaryAddresses").items()}
    view: dict[str, Any] = {"Subnet": str(subnet)}
    if ip_range is not None:
        view["IPRange"] = str(ip_range)
    if gateway is not None:
        view["Gateway"] = str(gateway)
    if aux:
        view["AuxiliaryAddresses"] = {name: str(ip) for name, ip in aux.items()}
    return {"subnet": subnet, "gateway": gateway, "ip_range": ip_range, "aux_addresses": aux, "ipam_config": [view]}


def parse_create(body: Mapping[str, Any]) -> NetworkSpec:
    """Check a ``NetworkCreate`` body; returns the NetworkSpec.

    Raises InvalidParameter (bad name, subnet, gateway, options; dockerd's wording where it has
    one), NotFound (unknown driver or IPAM driver, IPv6 asked for), Forbidden or Unavailable
    (see :func:`check_driver`). Does not look at other networks (name clash, overlap).
    """
    if not isinstance(body, Mapping):
        raise InvalidParameter("invalid JSON: expected an object")
    name = str(body.get("Name") or "")
    if not name:
        raise InvalidParameter(f"invalid name: {name}")
    check_driver(str(body.get("Driver") or ""))
    ipam = body.get("IPAM") or {}
    ipam_driver = str(ipam.get("Driver") or "default")
    if ipam_driver != "default":
        raise NotFound(f'plugin "{ipam_driver}" not found')
    if body.get("EnableIPv6"):
        raise NotFound(ERR_NO_IPV6_POOL)
    configs = [entry for entry in ipam.get("Config") or [] if entry]
    if len(configs) > 1:
        raise InvalidParameter("berth networks have one IPv4 subnet: give at most one IPAM config")
    fields = _ipam_fields(configs[0]) if configs else {}
    options = _string_map(body.get("Options"), "Options")
    bridge_name, mtu, masquerade = _bridge_options(options)
    ipam_options = ipam.get("Options")
    return NetworkSpec(
        name=name, internal=bool(body.get("Internal")), attachable=bool(body.get("Attachable")),
        labels=_string_map(body.get("Labels"), "Labels"), options=options,
        ipam_options=_string_map(ipam_options, "IPAM options") if ipam_options is not None else None,
        bridge_name=bridge_name, mtu=mtu, masquerade=masquerade, **fields,
    )
