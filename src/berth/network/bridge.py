"""The bridge driver's link work: Linux bridges, veth pairs and in-namespace addressing (pyroute2).

What docker's bridge driver sets up ("Use bridge networks", "Container networking"): one Linux
bridge per network carrying the gateway address, and per container a veth pair whose host end is
a bridge port and whose other end becomes the container's ``eth0`` with its address, MAC and a
default route via the gateway.

Every function here blocks (netlink round trips, milliseconds); from asyncio code call them with
``asyncio.to_thread``. Each runs its pyroute2 socket on a fresh thread (``netns.run_in_netns``),
because pyroute2 0.9's synchronous ``IPRoute`` drives a private event loop that cannot run on a
thread whose own loop is running, and because namespace switches must stay off shared threads.
Errors from the kernel are raised as berth.errors.SystemError_.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from ipaddress import IPv4Interface, IPv4Network
from typing import TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from berth.errors import InvalidParameter, NotFound, SystemError_
from berth.network.model import IFNAMSIZ
from berth.network.netns import run_in_netns

T = TypeVar("T")

_ENOENT_ERRNOS = (19, 2)  # ENODEV, ENOENT: the link is already gone


def _netlink(what: str, action: Callable[[IPRoute], T], netns_path: str | None = None) -> T:
    """Run ``action(ipr)`` with an IPRoute opened on a fresh thread (inside ``netns_path`` if given)."""

    def body() -> T:
        with IPRoute() as ipr:
            return action(ipr)

    try:
        return run_in_netns(netns_path, body)
    except NetlinkError as exc:
        raise SystemError_(f"{what}: {os.strerror(exc.code)}") from exc


def _index(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def _check_ifname(ifname: str) -> None:
    if not 0 < len(ifname) <= IFNAMSIZ or "/" in ifname or any(c.isspace() for c in ifname):
        raise InvalidParameter(f"invalid interface name {ifname!r}: 1 to {IFNAMSIZ} characters, no '/' or spaces")


def bridge_exists(name: str) -> bool:
    """True when a link called ``name`` exists in the host namespace (whatever its kind)."""
    return _netlink(f"failed to look up {name}", lambda ipr: _index(ipr, name) is not None)


def ensure_bridge(name: str, gateway_cidr: str, mtu: int = 1500) -> None:
    """Make sure the bridge ``name`` exists, carries ``gateway_cidr`` (e.g. ``"172.18.0.1/16"``),
    has ``mtu`` and is up. Idempotent: an existing bridge is only completed.

    Raises InvalidParameter for a bad name or CIDR, SystemError_ when ``name`` exists but is not a
    bridge or the kernel refuses a change.
    """
    _check_ifname(name)
    try:
        gateway = IPv4Interface(gateway_cidr)
    except ValueError as exc:
        raise InvalidParameter(f"invalid CIDR address: {gateway_cidr}") from exc

    def apply(ipr: IPRoute) -> None:
        index = _index(ipr, name)
        if index is None:
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            index = _index(ipr, name)
        assert index is not None
        link = ipr.get_links(index)[0]
        kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
        if kind != "bridge":
            raise SystemError_(f"cannot use {name} as a bridge: it is a {kind or 'non-bridge'} link")
        if link.get("IFLA_MTU") != mtu:
            ipr.link("set", index=index, mtu=mtu)
        present = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(family=socket.AF_INET, index=index)}
        if (str(gateway.ip), gateway.network.prefixlen) not in present:
            ipr.addr("add", index=index, address=str(gateway.ip), prefixlen=gateway.network.prefixlen)
        ipr.link("set", index=index, state="up")

    _netlink(f"failed to set up bridge {name}", apply)


def delete_bridge(name: str) -> None:
    """Delete the link ``name``; a missing link is not an error. Ports still enslaved are released
    by the kernel, not deleted (delete endpoints first)."""

    def apply(ipr: IPRoute) -> None:
        index = _index(ipr, name)
        if index is not None:
            _delete_quietly(ipr, index)

    _netlink(f"failed to delete bridge {name}", apply)


def _delete_quietly(ipr: IPRoute, index: int) -> None:
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code not in _ENOENT_ERRNOS:
            raise


def host_routes() -> list[IPv4Network]:
    """IPv4 networks the host already reaches directly: its routes (all tables but local, default
    routes left out) and the networks of its interface addresses. Feed this to
    ``ipam.choose_subnet`` so a new bridge never shadows an existing network."""

    def collect(ipr: IPRoute) -> list[IPv4Network]:
        found: set[IPv4Network] = set()
        for route in ipr.get_routes(family=socket.AF_INET):
            dst, length = route.get("RTA_DST"), route["dst_len"]
            if dst and length > 0 and route.get("RTA_TABLE") != 255:
                found.add(IPv4Network(f"{dst}/{length}", strict=False))
        for addr in ipr.get_addr(family=socket.AF_INET):
            found.add(IPv4Network(f"{addr.get('IFA_ADDRESS')}/{addr['prefixlen']}", strict=False))
        return sorted(found)

    return _netlink("failed to list host routes", collect)


def attach_endpoint(
    bridge: str,
    netns_path: str,
    ifname: str = "eth0",
    *,
    address_cidr: str,
    mac: str,
    gateway: str | None,
    host_ifname: str,
    mtu: int = 1500,
) -> None:
    """Connect the network namespace at ``netns_path`` to ``bridge`` through a new veth pair.

    The host end ``host_ifname`` (docker style ``veth`` + 7 hex, see ``model.new_veth_name``) is
    enslaved to ``bridge`` and brought up; the peer moves into the namespace, is renamed
    ``ifname``, gets ``mac``, ``address_cidr`` (e.g. ``"172.18.0.2/16"``) and ``mtu``, and comes up
    together with ``lo``; a default route via ``gateway`` is added unless it is None.
    On any failure the pair is deleted again and SystemError_ (NotFound for a missing bridge or
    namespace) is raised, so nothing half-made remains.
    """
    _check_ifname(ifname)
    _check_ifname(host_ifname)
    try:
        address = IPv4Interface(address_cidr)
    except ValueError as exc:
        raise InvalidParameter(f"invalid CIDR address: {address_cidr}") from exc
    if not os.path.exists(netns_path):
        raise NotFound(f"network namespace {netns_path} not found")
    peer = "vp" + secrets.token_hex(6)
    _netlink(f"failed to create veth pair {host_ifname}", lambda ipr: _create_pair(ipr, bridge, host_ifname, peer, mtu))
    try:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _netlink(f"failed to move {peer} into {netns_path}", lambda ipr: _move(ipr, peer, fd))
        finally:
            os.close(fd)
        _netlink(
            f"failed to configure {ifname} in {netns_path}",
            lambda ipr: _configure_peer(ipr, peer, ifname, address, mac, gateway, mtu),
            netns_path,
        )
    except BaseException:
        detach_endpoint(host_ifname)
        raise


def _create_pair(ipr: IPRoute, bridge: str, host_ifname: str, peer: str, mtu: int) -> None:
    master = _index(ipr, bridge)
    if master is None:
        raise NotFound(f"bridge {bridge} not found")
    ipr.link("add", ifname=host_ifname, kind="veth", peer={"ifname": peer, "mtu": mtu}, mtu=mtu)
    try:
        index = _index(ipr, host_ifname)
        ipr.link("set", index=index, master=master)
        ipr.link("set", index=index, state="up")
    except BaseException:
        leftover = _index(ipr, host_ifname)
        if leftover is not None:
            _delete_quietly(ipr, leftover)
        raise


def _move(ipr: IPRoute, peer: str, netns_fd: int) -> None:
    ipr.link("set", index=_index(ipr, peer), net_ns_fd=netns_fd)


def _configure_peer(
    ipr: IPRoute, peer: str, ifname: str, address: IPv4Interface, mac: str, gateway: str | None, mtu: int
) -> None:
    index = _index(ipr, peer)
    if index is None:
        raise SystemError_(f"veth peer {peer} vanished before configuration")
    ipr.link("set", index=index, ifname=ifname, address=mac, mtu=mtu)
    ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
    ipr.link("set", index=index, state="up")
    loopback = _index(ipr, "lo")
    if loopback is not None:
        ipr.link("set", index=loopback, state="up")
    if gateway is not None:
        ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=index)


def detach_endpoint(host_ifname: str) -> None:
    """Delete the host end of an endpoint's veth pair (the kernel deletes the peer with it).
    A missing link is not an error."""

    def apply(ipr: IPRoute) -> None:
        index = _index(ipr, host_ifname)
        if index is not None:
            _delete_quietly(ipr, index)

    _netlink(f"failed to delete {host_ifname}", apply)


def link_names() -> list[str]:
    """Names of all links in the host namespace (for callers checking leftovers, e.g. tests)."""
    return _netlink("failed to list links", lambda ipr: [str(link.get("IFLA_IFNAME")) for link in ipr.get_links()])

