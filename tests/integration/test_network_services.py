"""The DNS server and the port proxy against real namespaces on a real bridge.

Namespaces stand in for containers; their servers are sockets created inside the namespace (by a
thread that entered it) or busybox started with nsenter. All traffic stays on loopback and on the
test's own bridge; everything is removed afterwards.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
import subprocess
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from berth.errors import SystemError_
from berth.network import bridge, netns
from berth.network.dns import TYPE_A, DNSServer, Message, Question, ResourceRecord, build_query
from berth.network.ipam import NetworkIPAM, choose_subnet, mac_for_ip
from berth.network.model import AddressPool, new_veth_name
from berth.network.portproxy import PortProxy, allocate_ephemeral_port, bind_socket, ephemeral_port_range

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "nsenter", "busybox"], capture_output=True).returncode != 0,
    reason="needs nsenter and busybox",
)


class Sandbox:
    """One bridge with namespaces attached; ``cleanup`` removes all and returns what was left."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.name = tmp, f"bt{secrets.token_hex(3)}s"
        pool = AddressPool(IPv4Network(f"10.{random.randint(200, 250)}.0.0/16"), 24)
        self.ipam = NetworkIPAM.create(choose_subnet(bridge.host_routes(), [], [pool]))
        self.boxes: list[tuple[str, IPv4Address, str]] = []
        bridge.ensure_bridge(self.name, f"{self.ipam.gateway}/24")

    @property
    def gateway(self) -> str:
        return str(self.ipam.gateway)

    def box(self) -> tuple[str, IPv4Address]:
        ip, veth, ns = self.ipam.allocate(), new_veth_name(), str(self.tmp / f"ns{len(self.boxes)}")
        self.boxes.append((ns, ip, veth))
        netns.create_netns(ns)
        bridge.attach_endpoint(self.name, ns, address_cidr=f"{ip}/24", mac=mac_for_ip(ip), gateway=self.gateway,
                               host_ifname=veth)
        return ns, ip

    def cleanup(self) -> list[str]:
        for ns, _, veth in self.boxes:
            bridge.detach_endpoint(veth)
            netns.remove_netns(ns)
        bridge.delete_bridge(self.name)
        links = set(bridge.link_names())
        return [n for n in [self.name, *(v for _, _, v in self.boxes)] if n in links] + [
            ns for ns, _, _ in self.boxes if Path(ns).exists()
        ]


@pytest.fixture
def sandbox(tmp_path):
    box = Sandbox(tmp_path)
    try:
        yield box
    finally:
        assert box.cleanup() == []


class Names:
    def __init__(self, names: dict[str, list[IPv4Address]], reverse: dict[IPv4Address, str]) -> None:
        self.names, self.reverse_names = names, reverse

    def lookup(self, name: str, client_ip: IPv4Address) -> list[IPv4Address] | None:
        return self.names.get(name)

    def reverse(self, ip: IPv4Address, client_ip: IPv4Address) -> str | None:
        return self.reverse_names.get(ip)


async def nsenter(ns: str, *argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={ns}", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode or 0, out.decode()


def ns_socket(ns: str, kind: int, port: int | None = None) -> socket.socket:
    """A socket created inside ``ns`` (it stays there), bound to ``port`` when given."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, kind)
        if port is not None:
            sock.bind(("0.0.0.0", port))
        sock.setblocking(False)
        return sock

    return netns.run_in_netns(ns, make)


def test_dns_on_the_gateway_answers_a_ptr_and_nxdomain(sandbox):
    ns, ip = sandbox.box()
    other = IPv4Address(int(ip) + 100)
    names = Names({"web": [ip], "db": [ip, other]}, {ip: "web"})

    async def scenario() -> None:
        server = DNSServer(names)
        await server.start(sandbox.gateway, 53)
        try:
            code, out = await nsenter(ns, "busybox", "nslookup", "WEB", sandbox.gateway)
            assert code == 0 and f"Address: {ip}" in out, out
            code, out = await nsenter(ns, "busybox", "nslookup", "db", sandbox.gateway)
            assert code == 0 and f"Address: {ip}" in out and f"Address: {other}" in out, out
            code, out = await nsenter(ns, "busybox", "nslookup", "nothing", sandbox.gateway)
            assert code != 0 and "NXDOMAIN" in out, out
            code, out = await nsenter(ns, "busybox", "nslookup", str(ip), sandbox.gateway)
            assert code == 0 and "name = web" in out, out
            await tcp_query_from(ns, sandbox.gateway, ip)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())


async def tcp_query_from(ns: str, gateway: str, expected: IPv4Address) -> None:
    loop = asyncio.get_running_loop()
    sock = ns_socket(ns, socket.SOCK_STREAM)
    with sock:
        await loop.sock_connect(sock, (gateway, 53))
        query = build_query("web.", TYPE_A, ident=99)
        await loop.sock_sendall(sock, len(query).to_bytes(2, "big") + query)
        reply = b""
        while len(reply) < 2 or len(reply) < 2 + int.from_bytes(reply[:2], "big"):
            chunk = await loop.sock_recv(sock, 4096)
            assert chunk, "connection closed early"
            reply += chunk
    message = Message.decode(reply[2:])
    assert message.id == 99 and [r.address() for r in message.answers] == [expected]


class FakeUpstream(asyncio.DatagramProtocol):
    """An upstream resolver on 127.0.0.1: answers ``ext.example`` with 192.0.2.10 and sets TC
    for ``big.example``, which it answers in full over TCP."""

    def connection_made(self, transport):
        self.transport = transport

    @staticmethod
    def answer(data: bytes, truncate: bool) -> bytes:
        query = Message.decode(data)
        reply = Message(query.id, 0x8180, query.questions)
        reply.answers = [ResourceRecord(query.questions[0].name, TYPE_A, 1, 60, IPv4Address("192.0.2.10").packed)]
        if truncate and query.questions[0].name == "big.example":
            reply.flags |= 0x0200
            reply.answers = []
        return reply.encode()

    def datagram_received(self, data, addr):
        self.transport.sendto(self.answer(data, truncate=True), addr)


async def serve_upstream_tcp(reader, writer):
    size = int.from_bytes(await reader.readexactly(2), "big")
    reply = FakeUpstream.answer(await reader.readexactly(size), truncate=False)
    writer.write(len(reply).to_bytes(2, "big") + reply)
    await writer.drain()
    writer.close()


def test_dns_forwards_unknown_names_to_upstreams():
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(FakeUpstream, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        tcp = await asyncio.start_server(serve_upstream_tcp, "127.0.0.1", port)
        server = DNSServer(Names({"web": [IPv4Address("10.1.2.3")]}, {}), upstreams=[("127.0.0.1", port)])
        await server.start("127.0.0.1", 0)
        try:
            for name, expected in (("web", "10.1.2.3"), ("ext.example", "192.0.2.10"), ("big.example", "192.0.2.10")):
                reply = await server.respond(build_query(name, TYPE_A, ident=5), IPv4Address("127.0.0.1"))
                message = Message.decode(reply or b"")
                assert message.questions == [Question(name, TYPE_A)]
                assert [str(r.address()) for r in message.answers] == [expected]
        finally:
            server.close()
            await server.wait_closed()
            transport.close()
            tcp.close()

    asyncio.run(scenario())


async def echo_upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads to EOF, then answers: only works if the proxy passes the client's half-close on."""
    data = await reader.read()
    writer.write(data.upper())
    await writer.drain()
    writer.close()


def test_tcp_proxy_relays_with_half_close_and_refuses_a_second_bind(sandbox):
    ns, ip = sandbox.box()

    async def scenario() -> None:
        listener = ns_socket(ns, socket.SOCK_STREAM, 7000)
        target = await asyncio.start_server(echo_upper, sock=listener)
        port = allocate_ephemeral_port("tcp", "127.0.0.1")
        proxy = PortProxy("tcp", "127.0.0.1", port, str(ip), 7000, endpoint="web")
        await proxy.start()
        try:
            for payload in (b"hello", b"x" * 300_000):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(payload)
                writer.write_eof()
                assert await asyncio.wait_for(reader.read(), 10) == payload.upper()
                writer.close()
            with pytest.raises(SystemError_) as err:
                await PortProxy("tcp", "127.0.0.1", port, str(ip), 7000, endpoint="web2").start()
            assert err.value.message == (
                "driver failed programming external connectivity on endpoint web2: Error starting userland "
                f"proxy: listen tcp4 127.0.0.1:{port}: bind: address already in use"
            )
        finally:
            proxy.close()
            await proxy.wait_closed()
            target.close()

    asyncio.run(scenario())


def test_tcp_proxy_to_busybox_httpd(sandbox, tmp_path):
    ns, ip = sandbox.box()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("berth says hi\n")
    httpd = subprocess.Popen(["nsenter", f"--net={ns}", "busybox", "httpd", "-f", "-p", "8080", "-h",
                              str(tmp_path / "www")])
    try:
        asyncio.run(fetch_through_proxy(ip))
    finally:
        httpd.kill()
        httpd.wait()


async def fetch_through_proxy(ip: IPv4Address) -> None:
    proxy = PortProxy("tcp", "127.0.0.1", 0, str(ip), 8080, endpoint="web")
    await proxy.start()
    try:
        body = b""
        for _ in range(50):  # httpd needs a moment to listen
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound_port)
            writer.write(b"GET /index.html HTTP/1.0\r\n\r\n")
            try:
                body = await asyncio.wait_for(reader.read(), 10)
            except ConnectionResetError:
                body = b""  # nothing listens yet: the proxy drops the client (docker-proxy: a reset)
            writer.close()
            if body:
                break
            await asyncio.sleep(0.1)
        assert body.startswith(b"HTTP/1.") and body.endswith(b"berth says hi\n"), body
    finally:
        proxy.close()
        await proxy.wait_closed()


class UpperUDP(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data.upper() + f"@{addr[1]}".encode(), addr)


async def udp_exchange(port: int, payload: bytes, sock: socket.socket) -> bytes:
    """Send ``payload`` and return the answer; resent a few times, as any UDP client would: under
    load the first datagram of a new flow can be dropped while the veth's neighbour resolves."""
    loop = asyncio.get_running_loop()
    for _ in range(5):
        await loop.sock_sendto(sock, payload, ("127.0.0.1", port))
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 2048), 2)
        except TimeoutError:
            continue
    raise TimeoutError(f"no UDP answer to {payload!r} through port {port}")


def test_udp_proxy_keeps_one_flow_per_client_and_expires_idle_ones(sandbox):
    ns, ip = sandbox.box()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        target, _ = await loop.create_datagram_endpoint(UpperUDP, sock=ns_socket(ns, socket.SOCK_DGRAM, 7001))
        port = allocate_ephemeral_port("udp", "127.0.0.1")
        proxy = PortProxy("udp", "127.0.0.1", port, str(ip), 7001, endpoint="dns", udp_idle_timeout=0.5)
        await proxy.start()
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            for client in clients:
                client.setblocking(False)
            first = await udp_exchange(port, b"ping", clients[0])
            assert first.startswith(b"PING@")
            assert await udp_exchange(port, b"again", clients[0]) == b"AGAIN@" + first.split(b"@")[1]
            assert (await udp_exchange(port, b"two", clients[1])).startswith(b"TWO@")
            assert len(proxy._flows) == 2
            await asyncio.sleep(1.2)
            assert len(proxy._flows) == 0
            assert (await udp_exchange(port, b"back", clients[0])).startswith(b"BACK@")
            with pytest.raises(SystemError_, match=f"listen udp4 127.0.0.1:{port}: bind: address already in use"):
                await PortProxy("udp", "127.0.0.1", port, str(ip), 7001, endpoint="dns").start()
        finally:
            proxy.close()
            await proxy.wait_closed()
            target.close()
            for client in clients:
                client.close()

    asyncio.run(scenario())


def test_ipv6_any_binds_beside_ipv4_any_and_ephemeral_ports():
    start, end = ephemeral_port_range()
    port = allocate_ephemeral_port("tcp", "0.0.0.0")
    assert start <= port <= end
    # bound but never listening: nothing becomes reachable from outside
    v6 = bind_socket("tcp", "::", port)
    try:
        bind_socket("tcp", "0.0.0.0", port).close()
    finally:
        v6.close()


@pytest.mark.skipif(not Path("/proc/net/if_inet6").exists(), reason="no IPv6")
def test_tcp_proxy_on_ipv6_loopback(sandbox):
    ns, ip = sandbox.box()

    async def scenario() -> None:
        target = await asyncio.start_server(echo_upper, sock=ns_socket(ns, socket.SOCK_STREAM, 7002))
        proxy = PortProxy("tcp", "::1", 0, str(ip), 7002, endpoint="v6")
        await proxy.start()
        try:
            reader, writer = await asyncio.open_connection("::1", proxy.bound_port)
            writer.write(b"over six")
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 10) == b"OVER SIX"
            writer.close()
            with pytest.raises(SystemError_, match=rf"listen tcp6 \[::1\]:{proxy.bound_port}: bind: address already"):
                await PortProxy("tcp", "::1", proxy.bound_port, str(ip), 7002, endpoint="v6b").start()
        finally:
            proxy.close()
            await proxy.wait_closed()
            target.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("content", "expected"),
    [("32768\t60999\n", (32768, 60999)), ("49153 60999", (49153, 60999)), ("garbage", (49153, 60999)),
     ("70000 80000", (49153, 60999))],
)
def test_ephemeral_port_range_file(tmp_path, content, expected):
    path = tmp_path / "range"
    path.write_text(content)
    assert ephemeral_port_range(str(path)) == expected
    assert ephemeral_port_range(str(tmp_path / "missing")) == (49153, 60999)
