"""Published ports of running containers: host port reservations plus one userland proxy per
binding (DESIGN decision 5; "Published ports" in docker's networking docs).

The publisher remembers which container holds which ``(proto, host address, port)``, so a second
container asking for a port berth already handed out gets dockerd's port-allocator error (``Bind
for 0.0.0.0:8080 failed: port is already allocated``) and a port held by another program gets the
proxy's bind error. A request either binds completely or leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from berth.errors import BerthError, SystemError_
from berth.network.model import PortMapping
from berth.network.portproxy import PortProxy, allocate_ephemeral_port
from berth.network.ports import ALL_IPV4, ALL_IPV6, PortRequest, display_address

log = logging.getLogger(__name__)

EPHEMERAL_ATTEMPTS = 64


def ipv6_available() -> bool:
    """True when this host can bind an IPv6 wildcard socket (dockerd then publishes on ``::`` too)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(("::", 0))
    except OSError:
        return False
    return True


def _unspecified(host_ip: str) -> bool:
    return host_ip in (ALL_IPV4, ALL_IPV6)


def _overlaps(a: str, b: str) -> bool:
    """Two host addresses of one family clash when equal or when either is the wildcard."""
    if (":" in a) != (":" in b):
        return False
    return a == b or _unspecified(a) or _unspecified(b)


@dataclass
class _Binding:
    mapping: PortMapping
    proxy: PortProxy


class PortPublisher:
    """Proxies and host-port reservations per container. ``ipv6``: also bind ``::`` for requests
    without a host address (default: when the host supports IPv6)."""

    def __init__(self, ipv6: bool | None = None) -> None:
        self.ipv6 = ipv6_available() if ipv6 is None else ipv6
        self._bindings: dict[str, list[_Binding]] = {}

    def mappings(self, container_id: str) -> list[PortMapping]:
        """What ``container_id`` has published right now."""
        return [binding.mapping for binding in self._bindings.get(container_id, [])]

    def _holder(self, proto: str, host_ip: str, port: int) -> str | None:
        for container_id, bindings in self._bindings.items():
            for binding in bindings:
                mapping = binding.mapping
                if mapping.proto == proto and mapping.host_port == port and _overlaps(mapping.host_ip, host_ip):
                    return container_id
        return None

    def _used_ports(self, proto: str) -> frozenset[int]:
        return frozenset(b.mapping.host_port for bs in self._bindings.values() for b in bs if b.mapping.proto == proto)

    async def publish(self, container_id: str, endpoint: str, target_ip: str,
                      requests: list[PortRequest]) -> list[PortMapping]:
        """Bind every request of ``container_id`` and relay to ``target_ip``; returns the mappings
        made, in request order (wildcard requests give an IPv4 and an IPv6 mapping).

        ``endpoint`` names the endpoint in errors (``name (endpoint-id)``). Raises SystemError_
        with dockerd's wording when a port is taken; then nothing of this call stays bound.
        """
        # Bindings join the container's list as they are made, so a later request of the same
        # container sees them as taken (dockerd answers "port is already allocated" there too).
        held = self._bindings.setdefault(container_id, [])
        start = len(held)
        try:
            for request in requests:
                held.extend(await self._bind(endpoint, target_ip, request))
        except BaseException:
            made = held[start:]
            del held[start:]
            if not held:
                self._bindings.pop(container_id, None)
            await _close(made)
            raise
        return [binding.mapping for binding in held[start:]]

    async def _bind(self, endpoint: str, target_ip: str, request: PortRequest) -> list[_Binding]:
        if request.host_ip:
            host_ips = [request.host_ip]
        else:
            host_ips = [ALL_IPV4, ALL_IPV6] if self.ipv6 else [ALL_IPV4]
        if request.ephemeral:
            return await self._bind_ephemeral(endpoint, target_ip, request, host_ips)
        first, last = request.host_ports
        error: BerthError | None = None
        for port in range(first, last + 1):
            try:
                self._check_free(endpoint, request.proto, host_ips, port)
                return await _start_all(endpoint, target_ip, request, host_ips, port)
            except SystemError_ as exc:
                error = exc
        assert error is not None
        raise error

    async def _bind_ephemeral(self, endpoint: str, target_ip: str, request: PortRequest,
                              host_ips: list[str]) -> list[_Binding]:
        tried: set[int] = set()
        for _ in range(EPHEMERAL_ATTEMPTS):
            exclude = self._used_ports(request.proto) | frozenset(tried)
            port = await asyncio.to_thread(allocate_ephemeral_port, request.proto, host_ips[0], exclude)
            try:
                return await _start_all(endpoint, target_ip, request, host_ips, port)
            except SystemError_:
                tried.add(port)
        raise SystemError_("all ports are allocated")

    def _check_free(self, endpoint: str, proto: str, host_ips: list[str], port: int) -> None:
        for host_ip in host_ips:
            if self._holder(proto, host_ip, port) is not None:
                raise SystemError_(f"driver failed programming external connectivity on endpoint {endpoint}: "
                                   f"Bind for {display_address(host_ip, port)} failed: port is already allocated")

    async def restore(self, container_id: str, endpoint: str, target_ip: str, mappings: list[PortMapping]) -> None:
        """Re-bind ``mappings`` recorded before a daemon restart (``restore``); a mapping that can
        no longer be bound is logged and skipped, the others still work."""
        for mapping in mappings:
            request = PortRequest(mapping.proto, mapping.container_port, mapping.host_ip,
                                  (mapping.host_port, mapping.host_port))
            try:
                self._check_free(endpoint, mapping.proto, [mapping.host_ip], mapping.host_port)
                made = await _start_all(endpoint, target_ip, request, [mapping.host_ip], mapping.host_port)
            except BerthError as exc:
                log.warning("cannot re-publish %s for %s: %s", mapping, container_id[:12], exc)
                continue
            self._bindings.setdefault(container_id, []).extend(made)

    async def unpublish(self, container_id: str) -> None:
        """Close the proxies of ``container_id`` and free its host ports (idempotent)."""
        await _close(self._bindings.pop(container_id, []))

    async def close_all(self) -> None:
        """Close every proxy (daemon shutdown: proxies live in berthd and stop with it)."""
        for container_id in list(self._bindings):
            await self.unpublish(container_id)


async def _start_all(endpoint: str, target_ip: str, request: PortRequest, host_ips: list[str],
                     port: int) -> list[_Binding]:
    """Start one proxy per host address, all on ``port``; on a failure close those started."""
    made: list[_Binding] = []
    try:
        for host_ip in host_ips:
            proxy = PortProxy(request.proto, host_ip, port, target_ip, request.container_port, endpoint=endpoint)
            await proxy.start()
            made.append(_Binding(PortMapping(request.proto, host_ip, proxy.bound_port, request.container_port),
                                 proxy))
    except BaseException:
        await _close(made)
        raise
    return made


async def _close(bindings: list[_Binding]) -> None:
    for binding in bindings:
        binding.proxy.close()
    for binding in bindings:
        await binding.proxy.wait_closed()
