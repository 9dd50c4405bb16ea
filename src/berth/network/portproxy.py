"""Published ports: a userland proxy per ``-p host_ip:host_port:container_port/proto``.

docker's "Published ports" / "Port publishing and mapping" pages describe the contract: the port
is bound on the host address the user gives (0.0.0.0 and :: by default), and connections or
datagrams are relayed to the container's address. berth relays everything in userland (DESIGN
decision 5), like docker with ``--userland-proxy`` and no DNAT rules:

* TCP: one upstream connection per client connection, bytes copied both ways; an EOF in one
  direction is passed on as a half-close (``shutdown(SHUT_WR)``), the pair closes when both ends
  are done;
* UDP: one upstream socket per client address (a "flow"), closed after ``udp_idle_timeout``
  seconds without traffic (docker's proxy uses 90 s).

A port already in use fails with docker's wording (``driver failed programming external
connectivity on endpoint NAME: Error starting userland proxy: listen tcp4 0.0.0.0:8000: bind:
address already in use``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from ipaddress import ip_address
from typing import cast

from berth.errors import InvalidParameter, SystemError_

PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
DEFAULT_PORT_RANGE = (49153, 60999)  # docker's fallback when the kernel range cannot be read
UDP_IDLE_TIMEOUT = 90.0
_CHUNK = 65536


def _family(host_ip: str) -> socket.AddressFamily:
    try:
        version = ip_address(host_ip).version
    except ValueError as exc:
        raise InvalidParameter(f"invalid host IP address: {host_ip}") from exc
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def _check_proto(proto: str) -> str:
    if proto not in ("tcp", "udp"):
        raise InvalidParameter(f"invalid proto: {proto}")
    return proto


def bind_socket(proto: str, host_ip: str, port: int) -> socket.socket:
    """A socket of ``proto`` ("tcp"/"udp") bound to ``host_ip:port``; ``::`` is IPv6-only so it
    coexists with a 0.0.0.0 binding of the same port. Raises OSError from bind(2)."""
    family = _family(host_ip)
    sock = socket.socket(family, socket.SOCK_STREAM if _check_proto(proto) == "tcp" else socket.SOCK_DGRAM)
    try:
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host_ip, port))
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def ephemeral_port_range(path: str = PORT_RANGE_FILE) -> tuple[int, int]:
    """The dynamic port range as docker's port allocator reads it: the kernel's
    ``ip_local_port_range``, or 49153-60999 when that file is unreadable or malformed."""
    try:
        with open(path) as handle:
            start, end = (int(word) for word in handle.read().split()[:2])
    except (OSError, ValueError):
        return DEFAULT_PORT_RANGE
    return (start, end) if 0 < start <= end <= 65535 else DEFAULT_PORT_RANGE


def allocate_ephemeral_port(proto: str, host_ip: str = "0.0.0.0", exclude: frozenset[int] = frozenset()) -> int:
    """A port of the dynamic range that ``proto`` can bind on ``host_ip`` right now (``-p
    container_port`` without a host port). ``exclude``: ports already promised elsewhere.

    The search starts at a random point of the range and wraps. Raises SystemError_ with docker's
    port allocator wording ``all ports are allocated`` when every port is taken.
    """
    start, end = ephemeral_port_range()
    span = end - start + 1
    first = random.randrange(span)
    for step in range(span):
        port = start + (first + step) % span
        if port in exclude:
            continue
        try:
            bind_socket(proto, host_ip, port).close()
        except OSError:
            continue
        return port
    raise SystemError_("all ports are allocated")


def _listen_address(proto: str, host_ip: str, port: int) -> str:
    if _family(host_ip) == socket.AF_INET6:
        return f"{proto}6 [{host_ip}]:{port}"
    return f"{proto}4 {host_ip}:{port}"


class PortProxy:
    """Relay ``proto`` traffic from ``host_ip:host_port`` to ``target_ip:target_port``.

    ``endpoint``: the endpoint name quoted in bind errors; ``udp_idle_timeout``: seconds before
    an idle UDP flow is dropped; ``connect_timeout``: seconds allowed to reach the target.
    ``host_port`` 0 binds any free port; the bound port is in ``bound_port`` after ``start``.
    """

    def __init__(
        self,
        proto: str,
        host_ip: str,
        host_port: int,
        target_ip: str,
        target_port: int,
        *,
        endpoint: str = "",
        udp_idle_timeout: float = UDP_IDLE_TIMEOUT,
        connect_timeout: float = 10.0,
    ) -> None:
        self.proto = _check_proto(proto)
        self.host_ip, self.host_port = host_ip, host_port
        self.target = (target_ip, target_port)
        self.endpoint = endpoint
        self.udp_idle_timeout = udp_idle_timeout
        self.connect_timeout = connect_timeout
        self.bound_port = 0
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._relays: set[asyncio.Task[object]] = set()
        self._flows: dict[tuple[str, int], _UDPFlow] = {}

    async def start(self) -> None:
        """Bind and start relaying. Raises SystemError_ (docker's wording) when the bind fails."""
        try:
            sock = bind_socket(self.proto, self.host_ip, self.host_port)
        except OSError as exc:
            reason = os.strerror(exc.errno or 0)
            raise SystemError_(
                f"driver failed programming external connectivity on endpoint {self.endpoint}: "
                f"Error starting userland proxy: listen {_listen_address(self.proto, self.host_ip, self.host_port)}: "
                f"bind: {reason[:1].lower()}{reason[1:]}"
            ) from exc
        self.bound_port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        if self.proto == "tcp":
            self._server = await asyncio.start_server(self._relay_tcp, sock=sock)
        else:
            transport, _ = await loop.create_datagram_endpoint(lambda: _UDPListener(self), sock=sock)
            self._udp = transport  # type: ignore[assignment]

    def close(self) -> None:
        """Stop listening and drop every relayed connection and flow. Safe to call twice."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._relays):
            task.cancel()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for flow in list(self._flows.values()):
            flow.close()

    # ---- TCP

    async def wait_closed(self) -> None:
        """After ``close``: wait until every relayed TCP connection has been torn down."""
        if self._relays:
            await asyncio.wait(list(self._relays))

    async def _relay_tcp(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            await self._relay(client_reader, client_writer)
        except asyncio.CancelledError:
            # close() cancels relays; Python 3.11's start_server logs every cancelled
            # connection task as an error, so the cancellation ends here.
            pass
        finally:
            self._relays.discard(task)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        target_writer: asyncio.StreamWriter | None = None
        try:
            opening = asyncio.open_connection(*self.target)
            target_reader, connected = await asyncio.wait_for(opening, self.connect_timeout)
            target_writer = connected
            await asyncio.gather(_copy(client_reader, connected), _copy(target_reader, client_writer))
        except (OSError, TimeoutError):
            client_writer.transport.abort()
        finally:
            for writer in (client_writer, target_writer):
                if writer is not None:
                    writer.close()

    # ---- UDP

    def _udp_datagram(self, data: bytes, client: tuple[str, int]) -> None:
        flow = self._flows.get(client)
        if flow is None:
            flow = _UDPFlow(self, client)
            self._flows[client] = flow
            flow.open()
        flow.send(data)

    def _udp_reply(self, data: bytes, client: tuple[str, int]) -> None:
        if self._udp is not None and not self._udp.is_closing():
            self._udp.sendto(data, client)

    def _udp_forget(self, flow: _UDPFlow) -> None:
        if self._flows.get(flow.client) is flow:
            del self._flows[flow.client]


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close ``writer``; on a connection error abort it instead."""
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.transport.abort()


class _UDPListener(asyncio.DatagramProtocol):
    def __init__(self, proxy: PortProxy) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.proxy._udp_datagram(data, (addr[0], addr[1]))


class _UDPFlow(asyncio.DatagramProtocol):
    """One client's UDP conversation with the target: a connected socket plus an idle timer."""

    def __init__(self, proxy: PortProxy, client: tuple[str, int]) -> None:
        self.proxy = proxy
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.last_seen = self.loop.time()
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[object] | None = None
        self.closed = False

    def open(self) -> None:
        opening = self.loop.create_datagram_endpoint(lambda: self, remote_addr=self.proxy.target)
        self.task = self.loop.create_task(opening)
        self.task.add_done_callback(self._opened)
        self.timer = self.loop.call_later(self.proxy.udp_idle_timeout, self._check_idle)

    def _opened(self, task: asyncio.Task[object]) -> None:
        if task.cancelled() or task.exception() is not None:
            self.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        if self.closed:
            transport.close()
            return
        for data in self.pending:
            self.transport.sendto(data)
        self.pending.clear()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last_seen = self.loop.time()
        self.proxy._udp_reply(data, self.client)

    def send(self, data: bytes) -> None:
        self.last_seen = self.loop.time()
        if self.transport is not None:
            self.transport.sendto(data)
        else:
            self.pending.append(data)

    def _check_idle(self) -> None:
        idle = self.loop.time() - self.last_seen
        if idle >= self.proxy.udp_idle_timeout:
            self.close()
        else:
            self.timer = self.loop.call_later(self.proxy.udp_idle_timeout - idle, self._check_idle)

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()
        self.proxy._udp_forget(self)
