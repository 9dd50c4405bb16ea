"""Issue #5's other network options through a real berthd and the berth CLI: ``--network
host|none|container:ID``, ``--dns``, ``--dns-search``, ``--dns-option``, ``--add-host``,
``--link``, ``--mac-address``, ``--hostname``, ``--ip`` on user networks, ``--internal``
networks, network events, and bridges that keep working under a FORWARD policy of DROP (what a
running dockerd sets). Expected values are dockerd 20.10's.

Traffic stays on this machine: containers only talk to containers on the test's bridges.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.integration.netlab import SERVE_HOSTNAME, Lab, build_web_image, default_gateway, fetch, uniq


@pytest.fixture(scope="module")
def web(shared_daemon, tmp_path_factory):
    tag = uniq("web")
    build_web_image(shared_daemon, tmp_path_factory.mktemp("webctx"), tag)
    yield tag
    shared_daemon.cli("rmi", "-f", tag)


@pytest.fixture
def lab(shared_daemon):
    made = Lab(shared_daemon)
    try:
        yield made
    finally:
        made.cleanup()


def run_rm(lab: Lab, *args: str) -> str:
    """``berth run --rm ARGS`` output (asserting success)."""
    return lab.d.ok("run", "--rm", *args)


def test_network_host_shares_the_host_stack_and_name(lab):
    out = run_rm(lab, "--network", "host", "busybox", "sh", "-c", "hostname; ip -o link; cat /etc/hosts")
    hostname, rest = out.split("\n", 1)
    assert hostname == os.uname().nodename
    assert f": bt{lab.d.tag[:6]}:" in rest  # the daemon's own bridge is visible: the host's namespace
    with open("/etc/hosts") as hosts:
        assert hosts.read().strip() in rest
    name = uniq("h")
    lab.containers.append(name)
    created = lab.d.cli("run", "-d", "--name", name, "--network", "host", "-p", "18099:80", "busybox", "true")
    assert created.returncode == 0
    assert "WARNING: Published ports are discarded when using host network mode" in created.stderr
    assert set(lab.inspect(name)["NetworkSettings"]["Networks"]) == {"host"}


def test_network_none_has_only_loopback(lab):
    assert run_rm(lab, "--network", "none", "busybox", "sh", "-c", "ip -o link | cut -d: -f2").split() == ["lo"]
    name = lab.client("--network", "none")
    settings = lab.inspect(name)["NetworkSettings"]
    assert set(settings["Networks"]) == {"none"} and settings["IPAddress"] == "" and settings["Ports"] == {}


def test_network_container_joins_another_containers_stack(lab, web):
    net = lab.network()
    target = lab.serve(web, "--network", net, "--add-host", "extra.test:10.0.0.9")
    out = run_rm(lab, "--network", f"container:{target}", "busybox", "sh", "-c",
                 "hostname; ip -4 -o addr show eth0; cat /etc/hosts /etc/resolv.conf; "
                 "timeout 5 wget -qO- http://127.0.0.1/hostname")
    lines = out.splitlines()
    assert lines[0] == target and lines[-1] == target
    assert f"inet {lab.ip(target, net)}/" in lines[1]
    assert "10.0.0.9\textra.test" in out and f"nameserver {lab.gateway(net)}" in out
    for args, message in ((["--hostname", "x"], "conflicting options: hostname and the network mode"),
                          (["-p", "80"], "conflicting options: port publishing and the container type network mode"),
                          (["--dns", "10.0.0.1"], "conflicting options: dns and the network mode")):
        failed = lab.d.cli("create", "--network", f"container:{target}", *args, "busybox")
        assert (failed.returncode, failed.stderr) == (1, f"Error response from daemon: {message}\n")


def test_dns_dns_search_and_dns_option_on_the_default_bridge(lab):
    out = run_rm(lab, "--dns", "10.0.0.53", "--dns", "10.0.0.54", "--dns-search", "example.test",
                 "--dns-option", "ndots:2", "busybox", "cat", "/etc/resolv.conf")
    assert out.splitlines() == ["search example.test", "nameserver 10.0.0.53", "nameserver 10.0.0.54",
                                "options ndots:2"]


def test_dns_search_on_a_user_network_keeps_berths_resolver(lab, web):
    net = lab.network()
    site = lab.serve(web, "--network", net)
    client = lab.client("--network", net, "--dns-search", "example.test")
    resolv = lab.sh(client, "cat /etc/resolv.conf").stdout
    assert "search example.test" in resolv and f"nameserver {lab.gateway(net)}" in resolv
    assert lab.wget(client, f"http://{site}/hostname") == f"{site}\n"


def test_add_host_and_host_gateway(lab):
    out = run_rm(lab, "--add-host", "db.test:10.1.2.3", "--add-host", "gw.test:host-gateway", "busybox",
                 "cat", "/etc/hosts")
    assert "10.1.2.3\tdb.test" in out.splitlines()
    assert f"{default_gateway(lab.d)}\tgw.test" in out.splitlines()


def test_legacy_link_on_the_default_bridge(lab, web):
    target = lab.serve(web)
    linked = lab.client("--link", f"{target}:db")
    hosts = lab.sh(linked, "cat /etc/hosts").stdout
    assert f"{lab.ip(target)}\tdb {target}" in hosts  # alias, hostname (= name here)
    assert lab.wget(linked, "http://db/hostname") == f"{target}\n"


def test_link_on_a_user_network_is_an_alias_for_the_linking_container_only(lab, web):
    net = lab.network()
    target = lab.serve(web, "--network", net)
    linked = lab.client("--network", net, "--link", f"{target}:dbalias")
    other = lab.client("--network", net, "--dns-search", "none.invalid")
    assert lab.wget(linked, "http://dbalias/hostname") == f"{target}\n"
    assert "bad address" in lab.cannot_wget(other, "http://dbalias/hostname")


def test_mac_address_and_hostname(lab, web):
    net = lab.network()
    name = lab.run("--network", net, "--mac-address", "02:42:AC:99:00:05", "--hostname", "myhost", "busybox",
                   "sleep", "3600")
    assert "link/ether 02:42:ac:99:00:05" in lab.sh(name, "ip link show eth0").stdout
    assert lab.sh(name, "hostname").stdout == "myhost\n"
    assert lab.inspect(name)["NetworkSettings"]["Networks"][net]["MacAddress"] == "02:42:ac:99:00:05"
    site = lab.serve(web, "--network", net)
    assert f"Address: {lab.ip(name, net)}" in lab.sh(site, "nslookup myhost").stdout  # the hostname resolves
    bad = lab.d.cli("create", "--mac-address", "zz", "busybox")
    assert (bad.returncode, bad.stderr.splitlines()[0]) == (125, "berth: zz is not a valid mac address.")


def test_host_port_zero_is_any_free_port(lab, web):
    """``-p 127.0.0.1:0:80``: dockerd keeps ``"0"`` in the bindings and publishes a free port."""
    site = lab.run("-p", "127.0.0.1:0:80", web, *SERVE_HOSTNAME)
    info = lab.inspect(site)
    assert info["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "0"}]}
    [published] = info["NetworkSettings"]["Ports"]["80/tcp"]
    assert published["HostIp"] == "127.0.0.1" and int(published["HostPort"]) > 0
    assert lab.d.ok("port", site, "80") == f"127.0.0.1:{published['HostPort']}\n"
    assert fetch(int(published["HostPort"]), "/hostname").strip() == info["Config"]["Hostname"]


def test_ip_on_user_networks(lab):
    net = lab.network("--subnet", "10.231.99.0/24")
    name = lab.client("--network", net, "--ip", "10.231.99.77")
    assert "inet 10.231.99.77/24" in lab.sh(name, "ip -4 addr show eth0").stdout
    taken = lab.try_run("--network", net, "--ip", "10.231.99.77", "busybox", "true")
    assert taken.returncode == 125 and "Address already in use" in taken.stderr
    outside = lab.d.cli("create", "--network", net, "--ip", "10.231.98.5", "busybox")
    assert "Invalid address 10.231.98.5: It does not belong to any of this network's subnets" in outside.stderr
    plain = lab.network()
    refused = lab.d.cli("create", "--network", plain, "--ip", "172.31.99.5", "busybox")
    assert ("user specified IP address is supported only when connecting to networks with user configured "
            "subnets") in refused.stderr


def test_internal_network_reaches_only_itself(lab, web):
    internal = lab.network("--internal")
    assert lab.inspect(internal, "network")["Internal"] is True
    inside = lab.serve(web, "--network", internal)
    peer = lab.client("--network", internal)
    outside = lab.serve(web)
    assert lab.wget(peer, f"http://{inside}/hostname") == f"{inside}\n"
    assert "default" not in lab.sh(peer, "ip route").stdout  # no way out: no default route
    lab.cannot_wget(peer, f"http://{lab.ip(outside)}/hostname")
    lab.cannot_wget(outside, f"http://{lab.ip(inside, internal)}/hostname")


def test_network_events(lab):
    since = str(int(time.time()) - 1)
    net = lab.network("--label", "suite=w3")
    name = lab.client("--network", net)
    lab.d.ok("network", "disconnect", net, name)
    lab.d.ok("network", "rm", net)
    lab.networks.remove(net)
    out = lab.d.ok("events", "--since", since, "--until", str(int(time.time()) + 1), "--filter", "type=network",
                   "--filter", f"network={net}", "--format", "{{json .}}")
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["Action"] for e in events] == ["create", "connect", "disconnect", "destroy"]
    cid = lab.inspect(name)["Id"]
    assert events[1]["Actor"]["Attributes"] == {"container": cid, "name": net, "type": "bridge"}
    assert {e["Type"] for e in events} == {"network"} and len({e["Actor"]["ID"] for e in events}) == 1


def _forward_policy() -> str:
    out = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True).stdout
    return next((line.split()[2] for line in out.splitlines() if line.startswith("-P FORWARD")), "")


def test_bridges_work_under_a_forward_drop_policy(lab, web):
    """dockerd sets the FORWARD policy to DROP (and br_netfilter sends bridged frames through it);
    berth's own chains must keep its bridges working. The policy is not changed here (other
    engines share this host): the test runs only where it is DROP."""
    if _forward_policy() != "DROP":
        pytest.skip("the FORWARD policy is not DROP on this host")
    net = lab.network()
    one, two = lab.serve(web, "--network", net), lab.serve(web)
    assert lab.wget(lab.client("--network", net), f"http://{one}/hostname") == f"{one}\n"
    assert lab.wget(lab.client(), f"http://{lab.ip(two)}/hostname") == f"{two}\n"
