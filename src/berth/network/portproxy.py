"""Published ports: a userland proxy per ``-p host_ip:host_port:container_port/proto``.

docker's "Published ports" / "Port publishing and mapping" pages describe the contract: the port
is bound on the host address the user gives (0.0.0.0 and :: by default), and connections or
datagrams are relayed to the container's address. berth relays everything in userland (DESIGN
decision 5), like docker with ``--userland-proxy`` and no DNAT rules:

* TCP: one upstream connection per client connection, bytes copied both ways in kernel space
  (``splice(2)`` through a pipe, one thread per direction, like docker-proxy's two copy loops); an
  EOF in one direction is passed on as a half-close (``shutdown(SHUT_WR)``), the pair closes when
  both ends are done;
* UDP: one upstream socket per client address (a "flow"), closed after ``udp_idle_timeout``
  seconds without traffic (docker's proxy uses 90 s).

A port already in use fails with docker's wording (``driver failed programming external
connectivity on endpoint NAME: Error starting userland proxy: listen tcp4 0.0.0.0:8000: bind:
address already in use``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import random
import socket
import threading
from ipaddress import ip_address
from typing import Any, cast

from berth.errors import InvalidParameter, SystemError_

PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
DEFAULT_PORT_RANGE = (49153, 60999)  # docker's fallback when the kernel range cannot be read
UDP_IDLE_TIMEOUT = 90.0
_CHUNK = 65536
_SPLICE_CHUNK = 1 << 20
# No SPLICE_F_MORE: like MSG_MORE it corks small writes (request/response latency).
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1)


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
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._pairs: set[SplicedPair] = set()
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
            sock.listen(128)
            sock.setblocking(False)
            self._listener = sock
            self._accepting = loop.create_task(self._accept_loop(sock))
        else:
            transport, _ = await loop.create_datagram_endpoint(lambda: _UDPListener(self), sock=sock)
            self._udp = transport  # type: ignore[assignment]

    def close(self) -> None:
        """Stop listening and drop every relayed connection and flow. Safe to call twice."""
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for pair in list(self._pairs):
            pair.abort()
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

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(listener)
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    await asyncio.sleep(0.1)
                    continue
                return
            task = loop.create_task(self._relay(client))
            self._relays.add(task)
            task.add_done_callback(self._relays.discard)

    async def _relay(self, client: socket.socket) -> None:
        """Connect to the target, then copy both ways in kernel space (splice) until both sides
        are done; a client whose target cannot be reached is closed."""
        loop = asyncio.get_running_loop()
        target = socket.socket(_family(self.target[0]), socket.SOCK_STREAM)
        target.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(target, self.target), self.connect_timeout)
        except (OSError, TimeoutError, asyncio.CancelledError):
            target.close()
            client.close()  # docker-proxy closes the client when the target cannot be reached
            return
        pair = SplicedPair(client, target)
        self._pairs.add(pair)
        try:
            await pair.run()
        except asyncio.CancelledError:
            pair.abort()
        finally:
            self._pairs.discard(pair)

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


class SplicedPair:
    """Two connected TCP sockets copied both ways by two threads with ``splice(2)`` through a
    pipe each (no copy into Python): EOF on one side half-closes the other; an error aborts both.
    The event loop only waits for :meth:`run` to finish."""

    def __init__(self, client: socket.socket, target: socket.socket) -> None:
        self.client, self.target = client, target
        for sock in (client, target):
            sock.setblocking(True)
        self._done = 0
        self._closed = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def one_done() -> None:
            self._done += 1
            if self._done == 2 and not finished.done():
                finished.set_result(None)

        for src, dst in ((self.client, self.target), (self.target, self.client)):
            threading.Thread(target=self._pump, args=(src, dst, loop, one_done), daemon=True,
                             name="berth-proxy").start()
        try:
            await finished
        finally:
            self._close()

    def _pump(self, src: socket.socket, dst: socket.socket, loop: asyncio.AbstractEventLoop,
              done: Any) -> None:
        pipe_r, pipe_w = os.pipe()
        try:
            # A bigger pipe moves more per splice call (the default holds 64 KiB).
            fcntl.fcntl(pipe_w, fcntl.F_SETPIPE_SZ, _SPLICE_CHUNK)
        except OSError:
            pass
        try:
            while True:
                n = os.splice(src.fileno(), pipe_w, _SPLICE_CHUNK, flags=_SPLICE_FLAGS)
                if n == 0:
                    break
                while n:
                    n -= os.splice(pipe_r, dst.fileno(), n, flags=_SPLICE_FLAGS)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            self.abort()
        finally:
            os.close(pipe_r)
            os.close(pipe_w)
            try:
                loop.call_soon_threadsafe(done)
            except RuntimeError:
                pass  # the loop is closed: the daemon is going away

    def abort(self) -> None:
        """Wake both threads (they see EOF or an error) so the pair ends."""
        for sock in (self.client, self.target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self.client.close()
            self.target.close()


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
