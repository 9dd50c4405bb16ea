"""What a user network's DNS server knows: the names of the containers connected to it.

Docker's embedded DNS ("Container networking", "DNS services"; "Use bridge networks": automatic
name resolution on user-defined networks) answers, for containers on the same network, their
name, network-scoped aliases, short ID and hostname, also as ``NAME.NETWORK``; a ``--link``
alias resolves only for the container that made the link. Reverse lookups give
``NAME.NETWORK``. Unknown names get NXDOMAIN (or go upstream when forwarding is on).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address

from berth.network.dns import normalize_name
from berth.network.records import NetworkRecord


class NetworkNames:
    """``dns.Resolver`` over one network's endpoints; ``network`` returns its current record
    (None once the network is gone), so answers follow connects and disconnects at once."""

    def __init__(self, network: Callable[[], NetworkRecord | None]) -> None:
        self._network = network

    def lookup(self, name: str, client_ip: IPv4Address) -> list[IPv4Address] | None:
        """Addresses of ``name`` (lower-case, no trailing dot) on this network, or None."""
        net = self._network()
        if net is None:
            return None
        name = normalize_name(name)
        suffix = "." + net.name.lower()
        if name.endswith(suffix):
            name = name[: -len(suffix)]
        found = [ep.ip for ep in net.endpoints.values() if name in (n.lower() for n in ep.dns_names)]
        client = net.endpoint_by_ip(client_ip)
        if client is not None and name in client.links:
            target = client.links[name].lower()
            found += [ep.ip for ep in net.endpoints.values()
                      if ep.container_name.lower() == target and ep.ip not in found]
        return sorted(set(found)) or None

    def reverse(self, ip: IPv4Address, client_ip: IPv4Address) -> str | None:
        """``NAME.NETWORK`` of the container holding ``ip`` on this network, or None."""
        net = self._network()
        if net is None:
            return None
        ep = net.endpoint_by_ip(ip)
        return f"{ep.container_name}.{net.name}" if ep is not None else None
