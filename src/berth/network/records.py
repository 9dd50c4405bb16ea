"""What berth persists per network: the network's settings, its IPAM state and its active endpoints.

One JSON record per network in the ``networks`` table (``Database.put_record``). The IPAM state
and the endpoints live in the same record, so handing out an address and recording who holds it
is one write: a crash leaves either both or neither (DESIGN decision 1). Endpoints are recorded
from ``prepare`` (or a live connect) until ``release``; a restarted daemon drops those of
containers that are no longer running (``NetworkService.restore``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from berth.network.ipam import NetworkIPAM

PREDEFINED = ("bridge", "host", "none")
"""Names of the networks every daemon has ("Networking overview", "Default networks")."""

DRIVER_BRIDGE, DRIVER_HOST, DRIVER_NULL = "bridge", "host", "null"


@dataclass
class EndpointRecord:
    """One container's interface on a bridge network.

    ``address`` carries the prefix (172.18.0.2/16); ``host_ifname`` is the host end of the veth
    pair, ``ifname`` the name inside the container; ``routes`` is True for the endpoint that owns
    the container's default route. ``dns_names`` are the names the network's DNS answers with
    this address (container name, aliases, short ID, hostname), ``links`` maps a link alias to the
    linked container's name (``--link`` on a user network).
    """

    endpoint_id: str
    container_id: str
    container_name: str
    address: IPv4Interface
    mac: str
    host_ifname: str
    ifname: str = "eth0"
    routes: bool = True
    dns_names: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)

    @property
    def ip(self) -> IPv4Address:
        """The endpoint's address without the prefix."""
        return self.address.ip

    def to_json(self) -> dict[str, Any]:
        """The stored form (a JSON object; the inverse of :meth:`from_json`)."""
        return {
            "EndpointID": self.endpoint_id, "ContainerID": self.container_id, "Name": self.container_name,
            "Address": str(self.address), "MacAddress": self.mac, "HostIfname": self.host_ifname,
            "Ifname": self.ifname, "Routes": self.routes, "DNSNames": list(self.dns_names),
            "Links": dict(self.links),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointRecord:
        """Rebuild a record saved by :meth:`to_json`; raises KeyError/ValueError on malformed data."""
        return cls(
            endpoint_id=data["EndpointID"], container_id=data["ContainerID"], container_name=data["Name"],
            address=IPv4Interface(data["Address"]), mac=data["MacAddress"], host_ifname=data["HostIfname"],
            ifname=data.get("Ifname", "eth0"), routes=bool(data.get("Routes", True)),
            dns_names=list(data.get("DNSNames", [])), links=dict(data.get("Links", {})),
        )


@dataclass
class NetworkRecord:
    """One network (Engine API "Network" object plus berth's own state).

    ``ipam_config`` is the ``IPAM.Config`` list as ``inspect`` shows it (the user's fields, or
    the chosen Subnet and Gateway); ``ipam`` is the address state (None for host and null);
    ``bridge`` the Linux bridge ('' for host and null); ``user_subnet`` is True when the user
    chose the subnet (``--ip`` needs that, "docker network connect"); ``endpoints`` maps container
    ID to its active endpoint.
    """

    id: str
    name: str
    driver: str
    created: str
    ipam: NetworkIPAM | None = None
    bridge: str = ""
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ipam_driver: str = "default"
    ipam_options: dict[str, str] | None = None
    ipam_config: list[dict[str, str]] = field(default_factory=list)
    mtu: int = 1500
    masquerade: bool = True
    user_subnet: bool = False
    endpoints: dict[str, EndpointRecord] = field(default_factory=dict)

    @property
    def predefined(self) -> bool:
        """``bridge``, ``host`` or ``none``: made by the daemon, never removed."""
        return self.name in PREDEFINED

    @property
    def user_defined(self) -> bool:
        """A bridge network made with ``network create`` (has DNS, aliases, ``--ip``)."""
        return self.driver == DRIVER_BRIDGE and not self.predefined

    def endpoint_by_ip(self, ip: IPv4Address) -> EndpointRecord | None:
        """The active endpoint holding ``ip``, or None."""
        return next((ep for ep in self.endpoints.values() if ep.ip == ip), None)

    def to_json(self) -> dict[str, Any]:
        """The stored form: one JSON object with the IPAM state and the endpoints."""
        return {
            "Id": self.id, "Name": self.name, "Driver": self.driver, "Created": self.created,
            "IPAMState": self.ipam.to_json() if self.ipam else None, "Bridge": self.bridge,
            "Internal": self.internal, "Attachable": self.attachable, "Labels": dict(self.labels),
            "Options": dict(self.options), "IPAMDriver": self.ipam_driver, "IPAMOptions": self.ipam_options,
            "IPAMConfig": [dict(entry) for entry in self.ipam_config], "MTU": self.mtu,
            "Masquerade": self.masquerade, "UserSubnet": self.user_subnet,
            "Endpoints": {cid: ep.to_json() for cid, ep in sorted(self.endpoints.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkRecord:
        """Rebuild a record saved by :meth:`to_json`; raises KeyError/ValueError/InvalidParameter
        on malformed data."""
        state = data.get("IPAMState")
        return cls(
            id=data["Id"], name=data["Name"], driver=data["Driver"], created=data["Created"],
            ipam=NetworkIPAM.from_json(state) if state else None, bridge=data.get("Bridge", ""),
            internal=bool(data.get("Internal")), attachable=bool(data.get("Attachable")),
            labels=dict(data.get("Labels") or {}), options=dict(data.get("Options") or {}),
            ipam_driver=data.get("IPAMDriver", "default"), ipam_options=data.get("IPAMOptions"),
            ipam_config=[dict(entry) for entry in data.get("IPAMConfig", [])], mtu=int(data.get("MTU", 1500)),
            masquerade=bool(data.get("Masquerade", True)), user_subnet=bool(data.get("UserSubnet")),
            endpoints={cid: EndpointRecord.from_json(ep) for cid, ep in (data.get("Endpoints") or {}).items()},
        )
