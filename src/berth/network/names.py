"""What a user network's DNS server knows: the names of the containers connected to it.

Docker's embedded DNS ("Container networking", "DNS services"; "Use bridge networks": automatic
name resolution on user-defined networks) answers, for containers on the same network, their
name, network-scoped aliases, short ID and hostname, also as ``NAME.NETWORK``; a ``--link``
alias resolves only for the container that made the link. Reverse lookups give
``NAME.NETWORK``. Unknown names get NXDOMAIN (or go upstream when forwarding is on).

Docker's server lives inside each container and knows every user network that container is on.
berth's listens on one network's gateway, so it finds the asking container by its source address
and searches that container's user networks, the server's own first. A source that is not on the
network (a container elsewhere reaching the gateway through the host) learns nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address

from berth.network.dns import normalize_name
from berth.network.records import EndpointRecord, NetworkRecord

Peers = Callable[[str], list[NetworkRecord]]
"""container ID -> the networks that container has an active endpoint on."""


class NetworkNames:
    """``dns.Resolver`` over one network's endpoints; ``network`` returns its current record
    (None once the network is gone), so answers follow connects and disconnects at once;
    ``peers`` gives the other networks of the asking container (default: none)."""

    def __init__(self, network: Callable[[], NetworkRecord | None], peers: Peers | None = None) -> None:
        self._network = network
        self._peers = peers

    def _searched(self, client_ip: IPv4Address) -> tuple[list[NetworkRecord], EndpointRecord | None]:
        """The networks to search for ``client_ip`` (own first) and its endpoint on this network;
        no networks for a client that is neither on the network nor its gateway (the host)."""
        net = self._network()
        if net is None:
            return [], None
        client = net.endpoint_by_ip(client_ip)
        if client is None:
            at_gateway = net.ipam is not None and net.ipam.gateway == client_ip
            return ([net] if at_gateway else []), None
        others = self._peers(client.container_id) if self._peers is not None else []
        return [net, *(o for o in others if o.id != net.id and o.user_defined)], client

    def lookup(self, name: str, client_ip: IPv4Address) -> list[IPv4Address] | None:
        """Addresses of ``name`` (lower-case, no trailing dot) on the first of the client's
        networks that knows it (``NAME.NETWORK`` picks the network), or None."""
        networks, client = self._searched(client_ip)
        name = normalize_name(name)
        for net in networks:
            suffix = "." + net.name.lower()
            scoped = name.endswith(suffix)
            found = _addresses(net, name[: -len(suffix)] if scoped else name, client)
            if found:
                return found
        return None

    def reverse(self, ip: IPv4Address, client_ip: IPv4Address) -> str | None:
        """``NAME.NETWORK`` of the container holding ``ip`` on one of the client's networks, or None."""
        networks, _ = self._searched(client_ip)
        for net in networks:
            ep = net.endpoint_by_ip(ip)
            if ep is not None:
                return f"{ep.container_name}.{net.name}"
        return None


def _addresses(net: NetworkRecord, name: str, client: EndpointRecord | None) -> list[IPv4Address]:
    """Addresses ``name`` has on ``net``: endpoints answering to it, and for the asking
    container its ``--link`` alias on that network."""
    found = {ep.ip for ep in net.endpoints.values() if name in (n.lower() for n in ep.dns_names)}
    mine = net.endpoints.get(client.container_id) if client is not None else None
    if mine is not None and name in mine.links:
        target = mine.links[name].lower()
        found |= {ep.ip for ep in net.endpoints.values() if ep.container_name.lower() == target}
    return sorted(found)
