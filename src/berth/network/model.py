"""Plain values shared by the network building blocks (IPAM, bridge driver, port proxy, hosts files).

Frozen dataclasses in the field's terms; the API edge converts them to the Engine API JSON shapes
(``IPAMConfig``, ``EndpointSettings``, ``PortBinding`` in the Engine API reference, "Network").
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_network

from berth.errors import InvalidParameter

DEFAULT_BRIDGE_NAME = "berth0"
"""Linux name of the default ("bridge") network's bridge; berth never touches ``docker0``."""

USER_BRIDGE_PREFIX = "br-"
VETH_PREFIX = "veth"
IFNAMSIZ = 15  # longest Linux interface name, without the NUL


@dataclass(frozen=True)
class AddressPool:
    """A ``--default-address-pool``: split ``base`` into subnets of prefix length ``size``.

    Docker's defaults are 172.17.0.0/16 ... 172.31.0.0/16 (size 16) then 192.168.0.0/16 (size 20)
    (dockerd(8), "--default-address-pool").
    """

    base: IPv4Network
    size: int

    def subnets(self) -> list[IPv4Network]:
        """Every candidate subnet of this pool, lowest first."""
        if self.size <= self.base.prefixlen:
            return [self.base]
        return list(self.base.subnets(new_prefix=self.size))


DEFAULT_ADDRESS_POOLS: tuple[AddressPool, ...] = tuple(
    AddressPool(IPv4Network(f"172.{second}.0.0/16"), 16) for second in range(17, 32)
) + (AddressPool(IPv4Network("192.168.0.0/16"), 20),)


def parse_address_pool(spec: str) -> AddressPool:
    """Parse a dockerd ``--default-address-pool`` value, e.g. ``"base=10.10.0.0/16,size=24"``.

    Raises InvalidParameter for unknown keys, a bad CIDR, or a size outside [base prefix, 32].
    """
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("base", "size"):
            raise InvalidParameter(f"invalid field {part!r} must be a key=value pair of base or size")
        fields[key.strip()] = value.strip()
    if "base" not in fields or "size" not in fields:
        raise InvalidParameter(f"invalid default address pool {spec!r}: base and size are required")
    try:
        base = ip_network(fields["base"])
        size = int(fields["size"])
    except ValueError as exc:
        raise InvalidParameter(f"invalid default address pool {spec!r}: {exc}") from exc
    if not isinstance(base, IPv4Network):
        raise InvalidParameter(f"invalid default address pool {spec!r}: only IPv4 pools are supported")
    if not base.prefixlen <= size <= 32:
        raise InvalidParameter(f"invalid default address pool {spec!r}: size must be in [{base.prefixlen}, 32]")
    return AddressPool(base, size)


@dataclass(frozen=True)
class Endpoint:
    """One container interface on a bridge network (Engine API ``EndpointSettings``, the parts we wire).

    ``address`` carries the subnet prefix (e.g. 172.18.0.2/16); ``gateway`` is None on networks
    without one (``--internal`` networks still get a gateway address on the bridge, like docker).
    """

    network_id: str
    host_ifname: str
    address: IPv4Interface
    mac: str
    gateway: IPv4Address | None
    ifname: str = "eth0"


@dataclass(frozen=True)
class PortMapping:
    """A published port (``-p host_ip:host_port:container_port/proto``; Engine API ``PortBinding``)."""

    proto: str
    host_ip: str
    host_port: int
    container_port: int


@dataclass(frozen=True)
class HostEntry:
    """One /etc/hosts line: ``ip`` followed by ``names`` (hosts(5))."""

    ip: str
    names: tuple[str, ...] = field(default_factory=tuple)


def bridge_name_for(network_id: str) -> str:
    """Linux bridge name of a user network: ``br-`` + the first 12 hex digits of its ID (docker's scheme)."""
    if len(network_id) < 12:
        raise InvalidParameter(f"network id {network_id!r} is shorter than 12 characters")
    return USER_BRIDGE_PREFIX + network_id[:12]


def new_veth_name() -> str:
    """A fresh host-side veth name like docker's: ``veth`` + 7 random hex digits (e.g. ``veth3f2a9c1``)."""
    return VETH_PREFIX + secrets.token_hex(4)[:7]
