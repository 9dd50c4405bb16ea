"""Bridges, veths and firewall rules with real namespaces (stand-ins for containers).

Every test builds its own bridges (``bt<hex>N``), namespaces (files under tmp_path) and iptables
chains (prefix ``BT<hex>``), only sends traffic between them, and removes everything afterwards,
checking that nothing is left. Host settings a test changes (ip_forward, FORWARD policy) are
restored even when it fails.
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from berth.errors import NotFound, SystemError_
from berth.network import bridge, netns
from berth.network.firewall import Firewall, set_ip_forward
from berth.network.ipam import NetworkIPAM, choose_subnet, mac_for_ip
from berth.network.model import AddressPool, new_veth_name

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "nsenter", "busybox"], capture_output=True).returncode != 0,
    reason="needs nsenter and busybox",
)


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True)


def in_ns(ns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return sh("nsenter", f"--net={ns}", *argv)


def pings(ns: str, ip: IPv4Address, tries: int = 3) -> bool:
    """True when ``ns`` gets an echo reply from ``ip`` (a few tries: the first may wait for ARP)."""
    return any(in_ns(ns, "busybox", "ping", "-c", "1", "-W", "1", str(ip)).returncode == 0 for _ in range(tries))


@dataclass
class Net:
    bridge: str
    ipam: NetworkIPAM


@dataclass
class Box:
    ns: str
    ip: IPv4Address
    veth: str


class Lab:
    """Bridges, namespaces and iptables chains (prefix ``BT<tag>``) made by one test; ``cleanup``
    removes them all and reports leftovers."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.tag = tmp, secrets.token_hex(3)
        self.firewall = Firewall(prefix=f"BT{self.tag}")
        self.nets: list[Net] = []
        self.boxes: list[Box] = []

    def network(self, rules: bool = True, internal: bool = False) -> Net:
        """A bridge on a free 10.x subnet; with ``rules``, berth's firewall rules for it (as the
        daemon installs them, so a FORWARD policy of DROP set by a running dockerd does not matter)."""
        name = f"bt{self.tag}{len(self.nets)}"
        pool = AddressPool(IPv4Network(f"10.{random.randint(200, 250)}.0.0/16"), 24)
        subnet = choose_subnet(bridge.host_routes(), [n.ipam.subnet for n in self.nets], [pool])
        net = Net(name, NetworkIPAM.create(subnet))
        self.nets.append(net)
        bridge.ensure_bridge(name, f"{net.ipam.gateway}/{subnet.prefixlen}")
        if rules:
            self.firewall.add_network(name, subnet, internal=internal, masquerade=False)
        return net

    def box(self, net: Net) -> Box:
        ip = net.ipam.allocate()
        box = Box(str(self.tmp / f"ns{len(self.boxes)}"), ip, new_veth_name())
        self.boxes.append(box)
        netns.create_netns(box.ns)
        bridge.attach_endpoint(
            net.bridge, box.ns, "eth0", address_cidr=f"{ip}/{net.ipam.subnet.prefixlen}", mac=mac_for_ip(ip),
            gateway=str(net.ipam.gateway), host_ifname=box.veth,
        )
        return box

    def cleanup(self) -> list[str]:
        self.firewall.teardown_all()
        for box in self.boxes:
            bridge.detach_endpoint(box.veth)
            netns.remove_netns(box.ns)
        for net in self.nets:
            bridge.delete_bridge(net.bridge)
        links = set(bridge.link_names())
        names = [b.veth for b in self.boxes] + [n.bridge for n in self.nets]
        leftovers = [n for n in names if n in links] + [b.ns for b in self.boxes if Path(b.ns).exists()]
        return leftovers + self.firewall.chains_present()


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        assert lab.cleanup() == []
        assert f"BT{lab.tag}" not in sh("iptables", "-w", "-S").stdout + sh("iptables", "-w", "-t", "nat", "-S").stdout


@pytest.fixture
def firewall(lab):
    if not lab.firewall.available:
        pytest.skip("iptables is not usable here")
    return lab.firewall


@pytest.fixture
def ip_forward():
    previous = set_ip_forward(True)
    try:
        yield
    finally:
        set_ip_forward(previous)


@pytest.fixture
def forward_policy_drop():
    policy = sh("iptables", "-w", "-S", "FORWARD").stdout.splitlines()[0].split()[-1]
    sh("iptables", "-w", "-P", "FORWARD", "DROP")
    try:
        yield
    finally:
        sh("iptables", "-w", "-P", "FORWARD", policy)


def test_two_namespaces_on_one_bridge_ping_each_other(lab):
    net = lab.network()
    a, b = lab.box(net), lab.box(net)
    assert pings(a.ns, b.ip) and pings(b.ns, a.ip)
    eth0 = in_ns(a.ns, "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert f"inet {a.ip}/24" in eth0
    assert mac_for_ip(a.ip) in in_ns(a.ns, "ip", "-o", "link", "show", "eth0").stdout
    assert f"default via {net.ipam.gateway} dev eth0" in in_ns(a.ns, "ip", "route").stdout
    assert "UP" in in_ns(a.ns, "ip", "-o", "link", "show", "lo").stdout
    assert f"master {net.bridge}" in sh("ip", "-o", "link", "show", a.veth).stdout


def test_detach_removes_both_ends(lab):
    net = lab.network()
    box = lab.box(net)
    bridge.detach_endpoint(box.veth)
    bridge.detach_endpoint(box.veth)  # idempotent
    assert box.veth not in bridge.link_names()
    assert "eth0" not in in_ns(box.ns, "ip", "-o", "link").stdout


def test_ensure_bridge_is_idempotent_and_its_subnet_becomes_a_host_route(lab):
    net = lab.network(rules=False)
    cidr = f"{net.ipam.gateway}/{net.ipam.subnet.prefixlen}"
    bridge.ensure_bridge(net.bridge, cidr)
    assert sh("ip", "-o", "-4", "addr", "show", net.bridge).stdout.count("inet ") == 1
    assert "UP" in sh("ip", "-o", "link", "show", net.bridge).stdout
    assert bridge.bridge_exists(net.bridge)
    assert net.ipam.subnet in bridge.host_routes()
    pool = AddressPool(net.ipam.subnet, net.ipam.subnet.prefixlen)
    with pytest.raises(NotFound):
        choose_subnet(bridge.host_routes(), [], [pool])


def test_failed_attach_leaves_nothing(lab, tmp_path):
    net = lab.network()
    ns = str(tmp_path / "lonely")
    netns.create_netns(ns)
    try:
        veth = new_veth_name()
        with pytest.raises(NotFound):
            bridge.attach_endpoint(f"bt{lab.tag}zz", ns, address_cidr="10.0.0.2/24", mac="02:42:0a:00:00:02",
                                   gateway=None, host_ifname=veth)
        with pytest.raises(NotFound):
            bridge.attach_endpoint(net.bridge, str(tmp_path / "missing"), address_cidr="10.0.0.2/24",
                                   mac="02:42:0a:00:00:02", gateway=None, host_ifname=veth)
        assert veth not in bridge.link_names()
    finally:
        netns.remove_netns(ns)


def test_bridges_are_isolated_from_each_other(lab, firewall, ip_forward):
    one, two = lab.network(), lab.network()
    a, c, b = lab.box(one), lab.box(one), lab.box(two)
    assert not pings(a.ns, b.ip, tries=1)
    assert not pings(b.ns, a.ip, tries=1)
    assert pings(a.ns, c.ip)
    # without the isolation stage, berth's own FORWARD rules would route between the bridges:
    # so it is isolation, not a missing route or a foreign DROP policy, that stopped the pings
    sh("iptables", "-w", "-F", firewall.isolation_chains[0])
    assert pings(a.ns, b.ip)
    firewall.remove_network(one.bridge)
    assert firewall.network_rules(one.bridge) == []
    assert firewall.network_rules(two.bridge) != []


def test_internal_network_gets_no_traffic_in_or_out(lab, firewall, ip_forward):
    internal, other = lab.network(internal=True), lab.network()
    a, c, b = lab.box(internal), lab.box(internal), lab.box(other)
    assert not pings(a.ns, b.ip, tries=1)
    assert not pings(b.ns, a.ip, tries=1)
    assert pings(a.ns, c.ip)
    rules = firewall.network_rules(internal.bridge)
    assert f"-A {firewall.isolation_chains[0]} -i {internal.bridge} ! -o {internal.bridge} -j DROP" in rules
    assert not any("ACCEPT" in rule and "! -o" in rule for rule in rules)


def test_forward_drop_does_not_block_traffic_within_a_bridge(lab, firewall, forward_policy_drop):
    net = lab.network(rules=False)
    a, b = lab.box(net), lab.box(net)
    if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() == "1":
        assert not pings(a.ns, b.ip, tries=1), "with br_netfilter, DROP must bite before berth's rules"
    firewall.add_network(net.bridge, net.ipam.subnet)
    assert pings(a.ns, b.ip) and pings(b.ns, a.ip)


def test_rules_are_idempotent_and_removable(lab, firewall):
    net = lab.network(rules=False)
    firewall.add_network(net.bridge, net.ipam.subnet)
    rules = firewall.network_rules(net.bridge)
    firewall.add_network(net.bridge, net.ipam.subnet)
    assert firewall.network_rules(net.bridge) == rules
    assert f"nat: -A {firewall.postrouting_chain} -s {net.ipam.subnet} ! -o {net.bridge} -j MASQUERADE" in rules
    assert f"-A {firewall.forward_chain} -i {net.bridge} -o {net.bridge} -j ACCEPT" in rules
    forward = sh("iptables", "-w", "-S", "FORWARD").stdout
    assert forward.count(f"-j {firewall.forward_chain}") == 1
    firewall.remove_network(net.bridge)
    assert firewall.network_rules(net.bridge) == []
    firewall.teardown_all()
    assert firewall.chains_present() == []


def test_run_in_netns_never_moves_the_calling_thread(tmp_path):
    own = os.stat("/proc/thread-self/ns/net").st_ino
    ns = str(tmp_path / "ns")
    netns.create_netns(ns)
    try:
        inside = netns.run_in_netns(ns, lambda: os.stat("/proc/thread-self/ns/net").st_ino)
        assert inside == os.stat(ns).st_ino != own
        with pytest.raises(SystemError_, match="failed to enter network namespace"):
            netns.run_in_netns(str(tmp_path), lambda: None)
        with pytest.raises(NotFound):
            netns.run_in_netns(str(tmp_path / "missing"), lambda: None)
        with pytest.raises(ZeroDivisionError):
            netns.run_in_netns(ns, lambda: 1 // 0)
    finally:
        netns.remove_netns(ns)
    assert not Path(ns).exists()
    assert os.stat("/proc/thread-self/ns/net").st_ino == own
