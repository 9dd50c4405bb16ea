"""A network's host-side plumbing: its Linux bridge, its iptables rules and, for user networks,
its DNS server on the gateway address ("Bridge network driver"; DESIGN decision 5).

Bridges and rules stay while containers use them, also across daemon restarts (live restore);
DNS servers live in berthd and are started again by each daemon.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from berth.errors import BerthError, SystemError_
from berth.network import bridge
from berth.network.dns import DNSServer
from berth.network.firewall import Firewall
from berth.network.ipam import NetworkIPAM, choose_subnet, usable_routes
from berth.network.model import AddressPool
from berth.network.names import NetworkNames, Peers
from berth.network.netns import run_in_netns
from berth.network.records import DRIVER_BRIDGE, NetworkRecord

log = logging.getLogger(__name__)

HOST_LOCK = "/run/berth-networks.lock"
"""Host-wide lock held while a subnet is chosen and its bridge made, so daemons starting at the same
time (tests run several) never pick the same free subnet."""

DNS_PORT = 53


@contextmanager
def host_lock(path: str = HOST_LOCK) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (blocking: call from a worker thread)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def make_bridge(net: NetworkRecord, make_ipam: Callable[[list[IPv4Network]], NetworkIPAM]) -> NetworkIPAM:
    """Blocking: under the host lock, build the IPAM state with ``make_ipam(host_routes)`` (which
    picks the subnet) and create the bridge carrying its gateway. Returns the IPAM state."""
    with host_lock():
        ipam = make_ipam(bridge.host_routes())
        bridge.ensure_bridge(net.bridge, f"{ipam.gateway}/{ipam.subnet.prefixlen}", net.mtu)
        pin_bridge_mac(net.bridge)
    return ipam


def revive_bridge(net: NetworkRecord, in_use: list[IPv4Network], pools: tuple[AddressPool, ...],
                  movable: bool) -> bool:
    """Blocking: re-create ``net``'s missing bridge at daemon start, under the host lock.

    Idle bridges go away with the daemon (``NetworkService.shutdown``), so meanwhile another engine
    may have taken the subnet. Then, when ``movable`` (berth chose the subnet and no container
    uses the network), a new subnet is chosen from ``pools`` avoiding the host routes and
    ``in_use`` (other berth networks); otherwise the conflict is logged and the bridge made as
    recorded. Returns True when ``net.ipam``/``net.ipam_config`` changed (the caller saves).
    """
    if net.ipam is None:
        return False
    with host_lock():
        if bridge.bridge_exists(net.bridge):
            return False
        routes = bridge.host_routes()
        changed = False
        if any(net.ipam.subnet.overlaps(route) for route in usable_routes(routes)):
            if movable:
                net.ipam = NetworkIPAM.create(choose_subnet(routes, in_use, pools), network_name=net.name,
                                              network_id=net.id)
                net.ipam_config = [{"Subnet": str(net.ipam.subnet)}] if net.predefined else \
                    [{"Subnet": str(net.ipam.subnet), "Gateway": str(net.ipam.gateway)}]
                changed = True
            else:
                log.error("network %s: subnet %s overlaps a host route now", net.name, net.ipam.subnet)
        bridge.ensure_bridge(net.bridge, f"{net.ipam.gateway}/{net.ipam.subnet.prefixlen}", net.mtu)
        pin_bridge_mac(net.bridge)
    return changed


def pin_bridge_mac(name: str) -> None:
    """Give the bridge ``name`` a fixed random MAC (``02:42:xx:xx:xx:xx``, as dockerd does) unless
    one was set already. Blocking.

    A Linux bridge without a set address takes the lowest MAC of its ports, so it changes when a
    container leaves, and the other containers' ARP entries for the gateway go stale: DNS and
    routed traffic stop until they expire. ``/sys/class/net/NAME/addr_assign_type`` is 3
    (NET_ADDR_SET) once an address was set.
    """
    try:
        with open(f"/sys/class/net/{name}/addr_assign_type") as handle:
            if handle.read().strip() == "3":
                return
    except OSError:
        return
    mac = "02:42:" + ":".join(f"{byte:02x}" for byte in secrets.token_bytes(4))

    def body() -> None:
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=name)
            if index:
                ipr.link("set", index=index[0], address=mac)

    try:
        run_in_netns(None, body)
    except NetlinkError as exc:
        raise SystemError_(f"failed to set the MAC address of {name}: {os.strerror(exc.code)}") from exc


class Datapath:
    """Bridges, firewall rules and DNS servers of the daemon's networks.

    ``firewall``: berth's iptables chains; ``upstreams``: where DNS servers send names they do not
    know (empty: NXDOMAIN, no forwarding); ``lookup``: network ID -> current record; ``peers``:
    container ID -> the networks it is connected to (its DNS answers names of all of them).
    """

    def __init__(self, firewall: Firewall, upstreams: list[tuple[str, int]],
                 lookup: Callable[[str], NetworkRecord | None], peers: Peers | None = None) -> None:
        self.firewall = firewall
        self.upstreams = upstreams
        self._lookup = lookup
        self._peers = peers
        self._dns: dict[str, DNSServer] = {}

    async def up(self, net: NetworkRecord) -> None:
        """Make sure ``net``'s bridge and rules exist and its DNS server runs (idempotent).

        Raises SystemError_ when the bridge or the rules cannot be set up; a DNS server that
        cannot bind port 53 is logged, the network works without names.
        """
        if net.driver != DRIVER_BRIDGE or net.ipam is None:
            return
        ipam = net.ipam
        await asyncio.to_thread(bridge.ensure_bridge, net.bridge, f"{ipam.gateway}/{ipam.subnet.prefixlen}", net.mtu)
        await asyncio.to_thread(pin_bridge_mac, net.bridge)
        await asyncio.to_thread(self.firewall.add_network, net.bridge, ipam.subnet, net.internal, net.masquerade)
        if net.user_defined and net.id not in self._dns:
            await self._start_dns(net)

    async def _start_dns(self, net: NetworkRecord) -> None:
        assert net.ipam is not None
        server = DNSServer(NetworkNames(lambda: self._lookup(net.id), self._peers), self.upstreams)
        try:
            await server.start(str(net.ipam.gateway), DNS_PORT)
        except BerthError as exc:
            log.warning("network %s has no name resolution: %s", net.name, exc)
            return
        self._dns[net.id] = server

    async def down(self, net: NetworkRecord) -> None:
        """Stop ``net``'s DNS server, delete its rules and its bridge (a missing one is fine)."""
        await self.stop_dns(net.id)
        if net.driver != DRIVER_BRIDGE:
            return
        await asyncio.to_thread(self.firewall.remove_network, net.bridge)
        await asyncio.to_thread(bridge.delete_bridge, net.bridge)

    async def stop_dns(self, network_id: str) -> None:
        """Stop the DNS server of network ``network_id`` (none running is fine)."""
        server = self._dns.pop(network_id, None)
        if server is not None:
            server.close()
            await server.wait_closed()

    async def stop_all_dns(self) -> None:
        """Stop every DNS server (daemon shutdown)."""
        for network_id in list(self._dns):
            await self.stop_dns(network_id)

    def dns_running(self, network_id: str) -> bool:
        """True while network ``network_id`` has a DNS server listening."""
        return network_id in self._dns
