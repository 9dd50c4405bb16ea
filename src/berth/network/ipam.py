"""IPv4 address management for bridge networks (pure: no I/O).

Follows docker's default IPAM driver as documented in "docker network create" (``--subnet``,
``--ip-range``, ``--gateway``, ``--aux-address``), dockerd's ``--default-address-pool`` and
"docker run --ip":

* a network without ``--subnet`` gets the first subnet of the default address pools that overlaps
  neither a host route/address nor another network;
* the gateway defaults to the subnet's first host address;
* container addresses are handed out in order from ``--ip-range`` (or the whole subnet), skipping
  the network and broadcast addresses, the gateway and aux addresses; the search continues after
  the last address handed out and wraps around, so a released address is reused last;
* ``--ip`` requests must lie in the subnet and be free.

``NetworkIPAM`` is a plain object with ``to_json()``/``from_json()`` so the daemon can persist it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any

from berth.errors import Forbidden, InvalidParameter, NotFound, Unavailable
from berth.network.model import DEFAULT_ADDRESS_POOLS, AddressPool

ERR_POOL_OVERLAP = "invalid pool request: Pool overlaps with other one on this address space"
ERR_NO_DEFAULT_POOL = (
    "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
)
ERR_ADDRESS_IN_USE = "Address already in use"


def mac_for_ip(ip: IPv4Address | str) -> str:
    """Docker's MAC for a container address: ``02:42`` followed by the 4 IPv4 bytes.

    ``mac_for_ip("172.17.0.2") == "02:42:ac:11:00:02"`` (docker's ``GenerateMACFromIP``:
    a locally administered unicast address derived from the IP).
    """
    packed = IPv4Address(ip).packed
    return ":".join(f"{byte:02x}" for byte in b"\x02\x42" + packed)


def parse_ipv4_network(text: str) -> IPv4Network:
    """Parse ``--subnet``/``--ip-range`` text such as ``"172.20.0.0/16"`` (host bits are masked off).

    Raises InvalidParameter with Go's wording ``invalid CIDR address: X`` for anything else, IPv6
    included (berth's IPAM is IPv4 only).
    """
    try:
        network = ip_network(text, strict=False)
    except ValueError as exc:
        raise InvalidParameter(f"invalid CIDR address: {text}") from exc
    if "/" not in text or not isinstance(network, IPv4Network):
        raise InvalidParameter(f"invalid CIDR address: {text}")
    return network


def parse_ipv4_address(text: str, what: str = "IP address") -> IPv4Address:
    """Parse a dotted-quad address; raises InvalidParameter ``invalid <what>: X`` otherwise."""
    try:
        address = ip_address(text)
    except ValueError as exc:
        raise InvalidParameter(f"invalid {what}: {text}") from exc
    if not isinstance(address, IPv4Address):
        raise InvalidParameter(f"invalid {what}: {text}")
    return address


def usable_routes(host_routes: Iterable[IPv4Network]) -> list[IPv4Network]:
    """Host routes that can conflict with a bridge subnet: everything but default routes (prefix 0)."""
    return [route for route in host_routes if route.prefixlen > 0]


def check_pool_overlap(subnet: IPv4Network, in_use: Iterable[IPv4Network]) -> None:
    """Raise Forbidden (docker's ``invalid pool request: Pool overlaps ...``) when ``subnet``
    overlaps a subnet of another local network."""
    if any(subnet.overlaps(other) for other in in_use):
        raise Forbidden(ERR_POOL_OVERLAP)


def choose_subnet(
    host_routes: Iterable[IPv4Network],
    in_use: Iterable[IPv4Network],
    pools: Iterable[AddressPool] = DEFAULT_ADDRESS_POOLS,
) -> IPv4Network:
    """Pick the first subnet of ``pools`` (in order) overlapping no host route and no used subnet.

    ``host_routes``: networks of the host's routes and interface addresses (default routes are
    ignored); ``in_use``: subnets of the other berth networks. Raises NotFound with docker's
    ``could not find an available, non-overlapping IPv4 address pool ...`` when none is free.
    """
    taken = usable_routes(host_routes) + list(in_use)
    for pool in pools:
        for candidate in pool.subnets():
            if not any(candidate.overlaps(other) for other in taken):
                return candidate
    raise NotFound(ERR_NO_DEFAULT_POOL)


@dataclass
class NetworkIPAM:
    """Address state of one IPv4 network.

    Offsets are positions inside ``subnet`` (0 is the network address). ``reserved`` holds the
    gateway and aux addresses, ``allocated`` the container addresses, ``cursor`` the offset where
    the next sequential search starts. Build with ``create``; mutate with ``allocate``/``release``.
    """

    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network | None = None
    aux_addresses: dict[str, IPv4Address] = field(default_factory=dict)
    allocated: set[int] = field(default_factory=set)
    cursor: int = 0
    network_name: str = ""
    network_id: str = ""

    @classmethod
    def create(
        cls,
        subnet: IPv4Network,
        gateway: IPv4Address | None = None,
        ip_range: IPv4Network | None = None,
        aux_addresses: Mapping[str, IPv4Address] | None = None,
        network_name: str = "",
        network_id: str = "",
    ) -> NetworkIPAM:
        """Validate a network's IPAM config and return its empty address state.

        ``gateway`` defaults to the first host address of ``subnet``. Raises InvalidParameter when
        the gateway, the range or an aux address lies outside the subnet (wording of the docker CLI's
        ``no matching subnet for ...``), or when the subnet has no room for a gateway.
        """
        if subnet.prefixlen > 30:
            raise InvalidParameter(f"subnet {subnet} is too small: a bridge network needs at least a /30")
        gateway = gateway if gateway is not None else subnet.network_address + 1
        if gateway not in subnet:
            raise InvalidParameter(f"no matching subnet for gateway {gateway}")
        if ip_range is not None and not ip_range.subnet_of(subnet):
            raise InvalidParameter(f"no matching subnet for range {ip_range}")
        aux = dict(aux_addresses or {})
        for name, address in aux.items():
            if address not in subnet:
                raise InvalidParameter(f"no matching subnet for aux-address {name}={address}")
        if gateway in (subnet.network_address, subnet.broadcast_address):
            raise InvalidParameter(f"invalid gateway {gateway}: it is the subnet's network or broadcast address")
        return cls(subnet, gateway, ip_range, aux, network_name=network_name, network_id=network_id)

    # ---- queries

    def _offset(self, address: IPv4Address) -> int:
        return int(address) - int(self.subnet.network_address)

    def _address(self, offset: int) -> IPv4Address:
        return self.subnet.network_address + offset

    def is_reserved(self, address: IPv4Address) -> bool:
        """True for the network/broadcast address, the gateway and the aux addresses."""
        if address in (self.subnet.network_address, self.subnet.broadcast_address):
            return True
        return address == self.gateway or address in self.aux_addresses.values()

    def is_allocated(self, address: IPv4Address) -> bool:
        """True when ``address`` is handed out to an endpoint or reserved."""
        return self.is_reserved(address) or self._offset(address) in self.allocated

    def addresses(self) -> list[IPv4Address]:
        """Addresses handed out to endpoints, ascending."""
        return [self._address(offset) for offset in sorted(self.allocated)]

    # ---- changes

    def allocate(self, requested: IPv4Address | None = None) -> IPv4Address:
        """Hand out ``requested`` (``docker run --ip``) or the next free address of the range.

        Raises InvalidParameter when ``requested`` is outside the subnet, Forbidden
        ``Address already in use`` when it is taken or reserved, Unavailable ``no available IPv4
        addresses on this network's address pools: NAME (ID)`` when the range is full.
        """
        if requested is not None:
            return self._allocate_requested(requested)
        first, last = self._range_offsets()
        span = last - first + 1
        start = self.cursor if first <= self.cursor <= last else first
        for step in range(span):
            offset = first + (start - first + step) % span
            if offset not in self.allocated and not self.is_reserved(self._address(offset)):
                self.allocated.add(offset)
                self.cursor = offset + 1
                return self._address(offset)
        raise Unavailable(
            f"no available IPv4 addresses on this network's address pools: {self.network_name} ({self.network_id})"
        )

    def _allocate_requested(self, requested: IPv4Address) -> IPv4Address:
        if requested not in self.subnet:
            raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {requested}")
        if self.is_allocated(requested):
            raise Forbidden(ERR_ADDRESS_IN_USE)
        self.allocated.add(self._offset(requested))
        return requested

    def _range_offsets(self) -> tuple[int, int]:
        pool = self.ip_range or self.subnet
        return self._offset(pool.network_address), self._offset(pool.broadcast_address)

    def release(self, address: IPv4Address) -> None:
        """Give ``address`` back; releasing a free address is a no-op (idempotent for crash recovery).

        Raises InvalidParameter for an address outside the subnet. The gateway and aux addresses
        stay reserved.
        """
        if address not in self.subnet:
            raise InvalidParameter(f"address {address} does not belong to subnet {self.subnet}")
        self.allocated.discard(self._offset(address))

    # ---- persistence

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the whole state (keys in the Engine API's IPAMConfig spelling)."""
        return {
            "Subnet": str(self.subnet),
            "Gateway": str(self.gateway),
            "IPRange": str(self.ip_range) if self.ip_range else "",
            "AuxiliaryAddresses": {name: str(ip) for name, ip in sorted(self.aux_addresses.items())},
            "Allocated": [str(ip) for ip in self.addresses()],
            "Cursor": self.cursor,
            "NetworkName": self.network_name,
            "NetworkID": self.network_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NetworkIPAM:
        """Rebuild the state saved by ``to_json``. Raises InvalidParameter on malformed data."""
        try:
            subnet = IPv4Network(data["Subnet"])
            ipam = cls(
                subnet=subnet,
                gateway=IPv4Address(data["Gateway"]),
                ip_range=IPv4Network(data["IPRange"]) if data.get("IPRange") else None,
                aux_addresses={k: IPv4Address(v) for k, v in data.get("AuxiliaryAddresses", {}).items()},
                cursor=int(data.get("Cursor", 0)),
                network_name=str(data.get("NetworkName", "")),
                network_id=str(data.get("NetworkID", "")),
            )
            ipam.allocated = {ipam._offset(IPv4Address(ip)) for ip in data.get("Allocated", [])}
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidParameter(f"malformed IPAM state: {exc}") from exc
        return ipam
