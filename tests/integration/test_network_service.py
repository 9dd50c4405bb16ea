"""The network service driven as the container lifecycle drives it, with stand-in containers.

A stand-in is a Container record plus a network namespace made by ``netns.create_netns``; the
test calls validate/prepare/attach/release/forget like the container service does and talks to
the namespaces with nsenter + busybox. Each test has its own bridges (``bt<hex>`` default bridge,
``br-<id>`` user bridges on a random 10.x pool), iptables chains (``B-bt<hex>``) and namespaces;
only loopback, those bridges and namespaces carry traffic. The ``lab`` fixture fails the test
when anything is left behind and removes it.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from berth.containers.model import Container, new_container_id
from berth.daemon.config import DaemonConfig
from berth.daemon.events import Event, EventBus
from berth.errors import Forbidden, InvalidParameter, NotFound, SystemError_
from berth.network import bridge, netns
from berth.network.dns import RCODE_NXDOMAIN, Message, build_query
from berth.network.firewall import Firewall
from berth.network.portproxy import allocate_ephemeral_port
from berth.network.service import NetworkService, firewall_prefix
from berth.store.db import Database
from berth.timeutil import rfc3339_nano

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "nsenter", "busybox"], capture_output=True).returncode != 0,
    reason="needs nsenter and busybox",
)


class RecordingBus(EventBus):
    """An EventBus that also keeps every event in ``seen``."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Event] = []

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> Event:
        event = super().publish(type_, action, actor_id, attributes)
        self.seen.append(event)
        return event


class Lab:
    """One NetworkService on a temporary data root plus its stand-in containers."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.tag = tmp, secrets.token_hex(3)
        self.config = DaemonConfig(
            data_root=tmp / "data", exec_root=tmp / "exec", bridge_name=f"bt{self.tag}",
            default_address_pools=(f"base=10.{random.randint(100, 199)}.0.0/16,size=24",))
        self.config.data_root.mkdir()
        self.db = Database(self.config.data_root / "berth.db")
        self.events = RecordingBus()
        self.containers: dict[str, Container] = {}
        self.namespaces: dict[str, str] = {}
        self.saved: list[str] = []
        self.bridges: set[str] = {self.config.bridge_name}
        self.veths: set[str] = set()
        self.service = self.new_service()

    def new_service(self) -> NetworkService:
        """A service object on this lab's config and database (a second one simulates a restart)."""
        service = NetworkService(self.config, self.db, self.events)
        service.bind_containers(self.resolve, self.save, self.netns_path)
        self.service = service
        return service

    # ---- what the container service would provide

    def resolve(self, ref: str) -> Container:
        for c in self.containers.values():
            if ref in (c.id, c.name) or c.id.startswith(ref):
                return c
        raise NotFound(f"No such container: {ref}")

    def save(self, container: Container) -> None:
        self.saved.append(container.id)

    def netns_path(self, container: Container) -> str | None:
        return self.namespaces.get(container.id) if container.state.running else None

    # ---- stand-ins

    async def create(self, name: str, network: str = "default", endpoints: dict[str, Any] | None = None,
                     **host_config: Any) -> Container:
        cid = new_container_id()
        hostname = cid[:12] if network.startswith("container:") else f"host-{name}"  # docker's rule: no --hostname
        c = Container(cid, name, rfc3339_nano(), "busybox", "", {"Hostname": hostname},
                      {"NetworkMode": network, **host_config}, {"EndpointsConfig": endpoints or {}})
        self.containers[cid] = c
        await self.service.validate(c)
        return c

    async def start(self, c: Container) -> str:
        path = str(self.tmp / f"ns-{c.name}")
        await asyncio.to_thread(netns.create_netns, path)
        self.namespaces[c.id] = path
        try:
            await self.service.prepare(c)
            await self.service.attach(c, path)
        finally:
            for net in self.service.registry.holding(c.id):
                self.veths.add(net.endpoints[c.id].host_ifname)
        c.state.status = "running"
        return path

    async def stop(self, c: Container) -> None:
        await self.service.release(c)
        c.state.status = "exited"
        await asyncio.to_thread(netns.remove_netns, self.namespaces.pop(c.id))

    def ip(self, c: Container, network: str) -> str:
        return str(c.network_settings["Networks"][network]["IPAddress"])

    def gateway(self, network: str) -> str:
        net = self.service.registry.find(network)
        assert net.ipam is not None
        return str(net.ipam.gateway)

    async def create_network(self, name: str, **body: Any) -> str:
        answer = await self.service.create({"Name": name, **body})
        self.bridges.add(self.service.registry.find(answer["Id"]).bridge)
        return answer["Id"]

    # ---- running and cleaning up

    def run(self, scenario: Callable[[], Awaitable[None]]) -> None:
        async def main() -> None:
            await self.service.start()
            try:
                await scenario()
            finally:
                await self.teardown()

        asyncio.run(main())

    async def teardown(self) -> None:
        service = self.service
        for c in self.containers.values():
            if c.state.running:
                await self.stop(c)
            await service.forget(c)
        for net in service.registry.all():
            if not net.predefined:
                await service.remove(net.id)
        await service.shutdown()

    def leftovers(self) -> list[str]:
        """What is still there (and is removed now): links, namespaces, iptables chains."""
        found: list[str] = []
        links = set(bridge.link_names())
        for name in sorted(self.veths | self.bridges):
            if name in links:
                found.append(f"link {name}")
                bridge.delete_bridge(name)
        for path in self.namespaces.values():
            if Path(path).exists():
                found.append(f"netns {path}")
                netns.remove_netns(path)
        firewall = Firewall(prefix=firewall_prefix(self.config.bridge_name))
        chains = firewall.chains_present()
        if chains:
            found.extend(chains)
            firewall.teardown_all()
        self.db.close()
        return found


@pytest.fixture
def lab(tmp_path):
    box = Lab(tmp_path)
    try:
        yield box
    finally:
        assert box.leftovers() == []


# ---- talking to the namespaces

async def in_ns(ns: str, *argv: str, timeout: float = 20) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec("nsenter", f"--net={ns}", *argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


async def pings(ns: str, ip: str, tries: int = 3) -> bool:
    for _ in range(tries):
        code, _ = await in_ns(ns, "busybox", "ping", "-c", "1", "-W", "1", ip)
        if code == 0:
            return True
    return False


async def nslookup(ns: str, name: str, server: str) -> tuple[int, str]:
    return await in_ns(ns, "busybox", "nslookup", name, server)


async def ask_dns(ns: str, server: str, name: str, timeout: float = 1.5) -> Message | None:
    """One A query from inside ``ns``; None when nothing answers."""

    def ask() -> Message | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(build_query(name), (server, 53))
            try:
                return Message.decode(sock.recvfrom(4096)[0])
            except OSError:
                return None

    return await asyncio.to_thread(netns.run_in_netns, ns, ask)


async def http_get(port: int, tries: int = 50) -> bytes:
    for _ in range(tries):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /index.html HTTP/1.0\r\n\r\n")
            body = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            if b"200 OK" in body:
                return body
        except OSError:
            pass
        await asyncio.sleep(0.1)
    return b""


# ---- tests

def test_user_network_resolves_names_and_aliases_and_connects(lab):
    async def scenario() -> None:
        net_id = await lab.create_network("app")
        db = await lab.create("db", "app", {"app": {"Aliases": ["store"]}})
        web = await lab.create("web", "app")
        db_ns, web_ns = await lab.start(db), await lab.start(web)
        gateway, db_ip, web_ip = lab.gateway("app"), lab.ip(db, "app"), lab.ip(web, "app")
        for name in ("db", "store", db.short_id, "host-db", "DB.app"):
            code, out = await nslookup(web_ns, name, gateway)
            assert code == 0 and f"Address: {db_ip}" in out, (name, out)
        code, out = await nslookup(db_ns, "web", gateway)
        assert code == 0 and f"Address: {web_ip}" in out, out
        reply = await ask_dns(web_ns, gateway, "nothing-here")
        assert reply is not None and reply.rcode == RCODE_NXDOMAIN
        assert await pings(web_ns, db_ip) and await pings(db_ns, web_ip)
        code, out = await in_ns(web_ns, "busybox", "ip", "route")
        assert f"default via {gateway} dev eth0" in out, out

        assert lab.service.resolv_conf(web) == f"nameserver {gateway}\noptions ndots:0\n"
        assert lab.service.hosts_file(web).endswith(f"\n{web_ip}\thost-web\n")
        settings = db.network_settings
        assert settings["IPAddress"] == "" and settings["SandboxKey"] == db_ns
        entry = settings["Networks"]["app"]
        assert (entry["NetworkID"], entry["Gateway"], entry["Aliases"]) == (net_id, gateway, ["store", db.short_id])
        assert entry["MacAddress"] == "02:42:" + ":".join(f"{int(b):02x}" for b in db_ip.split("."))
        containers = lab.service.inspect("app")["Containers"]
        assert {c["Name"]: c["IPv4Address"] for c in containers.values()} == {
            "db": f"{db_ip}/24", "web": f"{web_ip}/24"}
        connects = [(e.action, e.attributes.get("container")) for e in lab.events.seen if e.type == "network"]
        assert ("connect", db.id) in connects and ("connect", web.id) in connects

        veth = lab.service.registry.find("app").endpoints[db.id].host_ifname
        await lab.stop(db)
        assert veth not in bridge.link_names()
        reply = await ask_dns(web_ns, gateway, "db")
        assert reply is not None and reply.rcode == RCODE_NXDOMAIN
        assert list(lab.service.inspect("app")["Containers"]) == [web.id]
        assert db.network_settings["Networks"]["app"]["IPAddress"] == ""
        assert db.network_settings["Networks"]["app"]["NetworkID"] == net_id
        ipam = lab.service.registry.find("app").ipam
        assert ipam is not None and [str(a) for a in ipam.addresses()] == [web_ip]
        assert ("disconnect", db.id) in [(e.action, e.attributes.get("container")) for e in lab.events.seen
                                         if e.type == "network"]

    lab.run(scenario)


def test_default_bridge_reaches_by_ip_without_names(lab):
    async def scenario() -> None:
        one = await lab.create("one")
        one_ns = await lab.start(one)
        two = await lab.create("two", Links=["one:db"])
        two_ns = await lab.start(two)
        one_ip, two_ip = lab.ip(one, "bridge"), lab.ip(two, "bridge")
        gateway = lab.gateway("bridge")
        assert await pings(two_ns, one_ip) and await pings(one_ns, two_ip)
        assert await ask_dns(two_ns, gateway, "one") is None
        assert two.network_settings["IPAddress"] == two_ip and two.network_settings["Gateway"] == gateway
        assert f"nameserver {gateway}" not in lab.service.resolv_conf(two)
        assert lab.service.hosts_file(two).splitlines()[-2:] == [f"{one_ip}\tdb host-one one", f"{two_ip}\thost-two"]
        net = lab.service.registry.find("bridge")
        assert net.bridge == lab.config.bridge_name and not lab.service.datapath.dns_running(net.id)

    lab.run(scenario)


def test_two_user_networks_are_isolated(lab):
    async def scenario() -> None:
        await lab.create_network("left")
        await lab.create_network("right")
        a, b = await lab.create("a", "left"), await lab.create("b", "right")
        a_ns, b_ns = await lab.start(a), await lab.start(b)
        assert lab.service.registry.find("left").ipam.subnet != lab.service.registry.find("right").ipam.subnet
        assert not await pings(a_ns, lab.ip(b, "right"), tries=1)
        assert not await pings(b_ns, lab.ip(a, "left"), tries=1)
        reply = await ask_dns(a_ns, lab.gateway("left"), "b")
        assert reply is not None and reply.rcode == RCODE_NXDOMAIN
        firewall = lab.service.firewall
        if firewall.available:
            rules = firewall.network_rules(lab.service.registry.find("right").bridge)
            assert any("ISOLATION-2" in rule and "DROP" in rule for rule in rules), rules

    lab.run(scenario)


def test_connect_a_running_container_to_a_second_network_and_disconnect(lab):
    async def scenario() -> None:
        await lab.create_network("front")
        await lab.create_network("back")
        web = await lab.create("web", "front")
        db = await lab.create("db", "back")
        web_ns, db_ns = await lab.start(web), await lab.start(db)
        db_ip = lab.ip(db, "back")
        assert not await pings(web_ns, db_ip, tries=1)

        await lab.service.connect("back", "web", {"Aliases": ["late"]})
        assert lab.saved[-1] == web.id
        web_back_ip = lab.ip(web, "back")
        code, out = await in_ns(web_ns, "busybox", "ip", "-o", "-4", "addr", "show", "eth1")
        assert f"{web_back_ip}/24" in out, out
        code, out = await in_ns(web_ns, "busybox", "ip", "route")
        assert out.count("default") == 1 and f"default via {lab.gateway('front')}" in out, out
        assert await pings(web_ns, db_ip)
        code, out = await nslookup(db_ns, "late", lab.gateway("back"))
        assert code == 0 and f"Address: {web_back_ip}" in out, out
        assert sorted(web.network_settings["Networks"]) == ["back", "front"]
        for net in lab.service.registry.holding(web.id):
            lab.veths.add(net.endpoints[web.id].host_ifname)

        with pytest.raises(Forbidden) as err:
            await lab.service.connect("back", "web")
        assert err.value.message == "endpoint with name web already exists in network back"
        with pytest.raises(InvalidParameter) as bad:
            await lab.service.connect("host", "web")
        assert bad.value.message == "container cannot be disconnected from host network or connected to host network"
        with pytest.raises(NotFound, match="No such container: ghost"):
            await lab.service.connect("back", "ghost")

        await lab.service.disconnect("back", web.id[:12])
        code, out = await in_ns(web_ns, "busybox", "ip", "-o", "addr", "show", "eth1")
        assert code != 0, out
        assert not await pings(web_ns, db_ip, tries=1)
        assert list(web.network_settings["Networks"]) == ["front"]
        assert list(lab.service.inspect("back")["Containers"]) == [db.id]
        with pytest.raises(SystemError_) as err2:
            await lab.service.disconnect("back", "web")
        assert err2.value.message == f"container {web.id} is not connected to network back"

    lab.run(scenario)


def test_published_port_and_a_second_container_asking_for_it(lab, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("berth says hi\n")
    port = allocate_ephemeral_port("tcp")
    procs: list[subprocess.Popen[bytes]] = []

    async def scenario() -> None:
        await lab.create_network("pub")
        one = await lab.create("one", "pub", PortBindings={"80/tcp": [{"HostIp": "", "HostPort": str(port)}]})
        one_ns = await lab.start(one)
        procs.append(subprocess.Popen(["nsenter", f"--net={one_ns}", "busybox", "httpd", "-f", "-p", "80",
                                       "-h", str(www)]))
        assert b"berth says hi" in await http_get(port)
        ports = one.network_settings["Ports"]["80/tcp"]
        assert ports[0] == {"HostIp": "0.0.0.0", "HostPort": str(port)}
        assert all(entry["HostPort"] == str(port) for entry in ports)

        net = lab.service.registry.find("pub")
        before = list(net.ipam.addresses())
        two = await lab.create("two", "pub", PortBindings={"80/tcp": [{"HostPort": str(port)}]})
        with pytest.raises(SystemError_) as err:
            await lab.start(two)
        assert err.value.message.startswith("driver failed programming external connectivity on endpoint two (")
        assert err.value.message.endswith(f"): Bind for 0.0.0.0:{port} failed: port is already allocated")
        assert list(net.ipam.addresses()) == before and two.id not in net.endpoints
        assert lab.service.publisher.mappings(two.id) == []
        await asyncio.to_thread(netns.remove_netns, lab.namespaces.pop(two.id))

        with socket.socket() as squatter:  # a port some other program holds
            squatter.bind(("0.0.0.0", 0))
            squatter.listen()
            taken = squatter.getsockname()[1]
            three = await lab.create("three", "pub", PortBindings={
                "81/tcp": [{"HostPort": ""}], "82/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(taken)}]})
            with pytest.raises(SystemError_) as err:
                await lab.start(three)
        assert err.value.message.endswith(
            f"Error starting userland proxy: listen tcp4 0.0.0.0:{taken}: bind: address already in use")
        assert lab.service.publisher.mappings(three.id) == [] and three.id not in net.endpoints
        await asyncio.to_thread(netns.remove_netns, lab.namespaces.pop(three.id))

        assert b"berth says hi" in await http_get(port)
        await lab.stop(one)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        assert one.network_settings["Ports"] == {}

    try:
        lab.run(scenario)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_restore_after_a_daemon_restart_recreates_dns_and_proxies(lab, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("still here\n")
    port = allocate_ephemeral_port("tcp")
    procs: list[subprocess.Popen[bytes]] = []

    async def scenario() -> None:
        await lab.create_network("keep")
        web = await lab.create("web", "keep", PortBindings={"80/tcp": [{"HostIp": "127.0.0.1",
                                                                         "HostPort": str(port)}]})
        client, gone = await lab.create("client", "keep"), await lab.create("gone", "keep")
        web_ns, client_ns = await lab.start(web), await lab.start(client)
        await lab.start(gone)
        gone_veth = lab.service.registry.find("keep").endpoints[gone.id].host_ifname
        procs.append(subprocess.Popen(["nsenter", f"--net={web_ns}", "busybox", "httpd", "-f", "-p", "80",
                                       "-h", str(www)]))
        assert b"still here" in await http_get(port)
        gateway = lab.gateway("keep")

        await lab.service.shutdown()  # berthd stops; the containers keep running
        assert await ask_dns(client_ns, gateway, "web") is None
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        assert lab.service.registry.find("keep").bridge in bridge.link_names()
        gone.state.status = "exited"  # died while the daemon was away
        await asyncio.to_thread(netns.remove_netns, lab.namespaces.pop(gone.id))

        service = lab.new_service()
        await service.start()
        await service.restore([web, client])
        reply = await ask_dns(client_ns, gateway, "web")
        assert reply is not None and [str(r.address()) for r in reply.answers] == [lab.ip(web, "keep")]
        assert b"still here" in await http_get(port)
        net = service.registry.find("keep")
        assert sorted(net.endpoints) == sorted([web.id, client.id])
        assert [str(a) for a in net.ipam.addresses()] == sorted([lab.ip(web, "keep"), lab.ip(client, "keep")])
        assert gone_veth not in bridge.link_names()

    try:
        lab.run(scenario)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_none_and_host_modes(lab):
    async def scenario() -> None:
        quiet = await lab.create("quiet", "none", ExtraHosts=["gw:host-gateway"])
        ns = await lab.start(quiet)
        code, out = await in_ns(ns, "busybox", "ip", "-o", "link")
        assert "lo:" in out and "UP" in out and "eth0" not in out, out
        hosts = lab.service.hosts_file(quiet)
        assert hosts.startswith("127.0.0.1\tlocalhost\n") and f"{lab.gateway('bridge')}\tgw\n" in hosts
        assert "host-quiet" not in hosts
        assert quiet.network_settings["Networks"]["none"]["NetworkID"] == lab.service.registry.find("none").id
        shared = await lab.create("shared", "host", Dns=["192.0.2.53"])
        with open("/etc/hosts") as handle:
            assert lab.service.hosts_file(shared) == handle.read().rstrip("\n") + "\n"
        assert lab.service.resolv_conf(shared).startswith("nameserver 192.0.2.53\n")
        assert list(shared.network_settings["Networks"]) == ["host"]

    lab.run(scenario)


CREATE_ERRORS = [
    ({"network": "bridge", "endpoints": {"bridge": {"Aliases": ["x"]}}}, InvalidParameter,
     "network-scoped alias is supported only for containers in user defined networks"),
    ({"network": "bridge", "endpoints": {"bridge": {"IPAMConfig": {"IPv4Address": "10.0.0.9"}}}}, InvalidParameter,
     "user specified IP address is supported on user defined networks only"),
    ({"network": "auto", "endpoints": {"auto": {"IPAMConfig": {"IPv4Address": "10.0.0.9"}}}}, InvalidParameter,
     "user specified IP address is supported only when connecting to networks with user configured subnets"),
    ({"network": "fixed", "endpoints": {"fixed": {"IPAMConfig": {"IPv4Address": "10.0.0.9"}}}}, InvalidParameter,
     "Invalid address 10.0.0.9: It does not belong to any of this network's subnets"),
    ({"network": "fixed", "endpoints": {"fixed": {"MacAddress": "zz"}}}, InvalidParameter,
     "address zz: invalid MAC address"),
    ({"network": "none", "endpoints": {"auto": {}}}, InvalidParameter,
     "container cannot be connected to multiple networks with one of the networks in private (none) mode"),
    ({"network": "bridge", "Links": ["ghost:db"]}, InvalidParameter,
     "could not get container for ghost: No such container: ghost"),
    ({"network": "bridge", "PortBindings": {"abc/tcp": []}}, InvalidParameter, 'invalid port specification: "abc"'),
    ({"network": "bridge", "ExtraHosts": ["bad"]}, InvalidParameter, 'bad format for add-host: "bad"'),
    ({"network": "container:ghost"}, NotFound, "No such container: ghost"),
]


def test_create_time_errors(lab):
    async def scenario() -> None:
        await lab.create_network("auto")
        subnet = f"10.{random.randint(100, 199)}.{random.randint(0, 255)}.0/24"
        await lab.create_network("fixed", IPAM={"Config": [{"Subnet": subnet}]})
        for case, error, message in CREATE_ERRORS:
            case = dict(case)
            with pytest.raises(error) as err:
                await lab.create(f"c{secrets.token_hex(2)}", case.pop("network"), case.pop("endpoints", None), **case)
            assert err.value.message == message, case
        # dockerd creates a container on a missing network and fails its start (404)
        ghost = await lab.create("cghost", "nowhere")
        with pytest.raises(NotFound) as missing:
            await lab.service.prepare(ghost)
        assert missing.value.message == "network nowhere not found"
        ok = await lab.create("fine", "fixed", {"fixed": {"IPAMConfig": {"IPv4Address": subnet[:-4] + "9"}}})
        ns = await lab.start(ok)
        code, out = await in_ns(ns, "busybox", "ip", "-o", "-4", "addr", "show", "eth0")
        assert f"{subnet[:-4]}9/24" in out, out

    lab.run(scenario)
