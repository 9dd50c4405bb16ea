"""Issue #5 (networking), acceptance lines 1-5 and 7, one test each, through a real berthd and the
berth CLI. Line 6 (docker CLI, docker-py) is in tests/compat/test_network_acceptance_clients.py,
line 8 is bench/network.py (smoke-tested here).

Traffic stays on this machine (see netlab): the host fetches over loopback, containers talk over
the test's bridges, and containers that must fail a name lookup ask a berth address on this host.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_fixture import Daemon, leftovers
from tests.integration.netlab import (
    PAGE,
    SERVE_HOSTNAME,
    Lab,
    answers,
    build_web_image,
    default_gateway,
    fetch,
    free_port,
    uniq,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def web(shared_daemon, tmp_path_factory):
    """The seed's web server image, built with ``berth build`` on the session's daemon."""
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


def host_port(port_output: str) -> int:
    """The IPv4 host port in ``berth port ID 80`` output (``0.0.0.0:49153`` first)."""
    first = port_output.splitlines()[0]
    assert first.startswith("0.0.0.0:"), port_output
    return int(first.rsplit(":", 1)[1])


def test_1_web_server_run_P_and_p_then_port(lab, web):
    """1. The seed's web-server flow: an image whose CMD runs busybox `httpd -f -p 80` with EXPOSE 80;
    `berth run -d -P` then fetching through the published port gives the page; `-p 8000:80`
    likewise; `berth port ID 80` prints the mapping."""
    image = lab.inspect(web, "image")
    assert image["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert image["Config"]["Cmd"] == ["httpd", "-f", "-p", "80", "-h", "/www"]

    published_all = lab.run("-P", web)
    mapping = lab.d.ok("port", published_all, "80")
    port = host_port(mapping)
    assert mapping.splitlines()[1:] in ([], [f":::{port}"])  # and IPv6 when the host has it
    assert fetch(port) == PAGE
    if mapping.splitlines()[1:]:
        assert fetch(port, host="::1") == PAGE
    assert lab.d.ok("port", published_all).splitlines()[0] == f"80/tcp -> 0.0.0.0:{port}"

    chosen = free_port()
    published = lab.run("-p", f"{chosen}:80", web)
    assert host_port(lab.d.ok("port", published, "80")) == chosen
    assert fetch(chosen) == PAGE
    assert lab.inspect(published)["NetworkSettings"]["Ports"]["80/tcp"][0] == {"HostIp": "0.0.0.0",
                                                                              "HostPort": str(chosen)}
    assert f"0.0.0.0:{chosen}->80/tcp" in lab.d.ok("ps", "--filter", f"name={published}")


def test_2_user_network_names_and_aliases_default_bridge_isolated(lab, web):
    """2. `berth network create my_bridge`; two containers on it reach each other by name and by
    alias (wget to httpd); a container only on the default bridge can neither resolve nor reach
    them; two containers on the default bridge reach each other by IP but not by name."""
    net = lab.network()
    one = lab.serve(web, "--network", net, "--network-alias", f"{net}-a1")
    two = lab.serve(web, "--network", net, "--network-alias", f"{net}-a2")
    assert lab.wget(one, f"http://{two}/hostname") == f"{two}\n"
    assert lab.wget(one, f"http://{net}-a2/hostname") == f"{two}\n"
    assert lab.wget(two, f"http://{one}/hostname") == f"{one}\n"
    assert lab.wget(two, f"http://{net}-a1/hostname") == f"{one}\n"

    # Default-bridge containers ask a berth address for names: the host's resolver is off-machine.
    # berth's DNS on the user network's gateway must not answer a container from elsewhere either.
    gateway = lab.gateway(net)
    outsider = lab.client("--dns", gateway)
    assert gateway not in lab.d.ok("run", "--rm", "busybox", "cat", "/etc/resolv.conf")
    for name in (one, f"{net}-a1"):
        lookup = lab.sh(outsider, f"nslookup {name} {gateway}")
        assert lookup.returncode != 0 and "NXDOMAIN" in lookup.stdout + lookup.stderr, lookup.stdout
        assert "bad address" in lab.cannot_wget(outsider, f"http://{name}/hostname")
    lab.cannot_wget(outsider, f"http://{lab.ip(one, net)}/hostname")

    left = lab.serve(web, "--dns", default_gateway(lab.d))
    right = lab.serve(web, "--dns", default_gateway(lab.d))
    assert lab.wget(left, f"http://{lab.ip(right)}/hostname") == f"{right}\n"
    assert lab.wget(right, f"http://{lab.ip(left)}/hostname") == f"{left}\n"
    assert "bad address" in lab.cannot_wget(left, f"http://{right}/hostname")
    assert "bad address" in lab.cannot_wget(right, f"http://{left}/hostname")


def test_3_two_networks_then_disconnect(lab, web):
    """3. A container connected to two networks reaches both; after `network disconnect` it
    reaches only one."""
    front, back = lab.network(), lab.network()
    site = lab.serve(web, "--network", front)
    db = lab.serve(web, "--network", back)
    both = lab.client("--network", front)
    lab.cannot_wget(both, f"http://{lab.ip(db, back)}/hostname")  # different networks are isolated
    lab.d.ok("network", "connect", back, both)
    assert set(lab.inspect(both)["NetworkSettings"]["Networks"]) == {front, back}
    assert lab.wget(both, f"http://{site}/hostname") == f"{site}\n"
    assert lab.wget(both, f"http://{db}/hostname") == f"{db}\n"
    assert lab.wget(both, f"http://{db}.{back}/hostname") == f"{db}\n"

    db_ip = lab.ip(db, back)
    lab.d.ok("network", "disconnect", back, both)
    assert set(lab.inspect(both)["NetworkSettings"]["Networks"]) == {front}
    assert lab.wget(both, f"http://{site}/hostname") == f"{site}\n"
    assert "bad address" in lab.cannot_wget(both, f"http://{db}/hostname")
    lab.cannot_wget(both, f"http://{db_ip}/hostname")
    assert "eth1" not in lab.sh(both, "ip link").stdout


def test_4_second_container_on_a_taken_host_port(lab, web):
    """4. A second container publishing the same host port fails with a clear error; the first
    keeps working."""
    port = free_port()
    first = lab.run("-p", f"{port}:80", web)
    assert fetch(port) == PAGE
    second = uniq("c")
    failed = lab.try_run("-p", f"{port}:80", web, name=second)
    assert failed.returncode == 125
    assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in failed.stderr
    assert failed.stderr.startswith("berth: Error response from daemon: driver failed programming external "
                                    f"connectivity on endpoint {second} (")
    assert fetch(port) == PAGE
    state = lab.inspect(second)
    assert state["State"]["Status"] == "created" and state["State"]["Pid"] == 0
    assert not state["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert lab.inspect(first)["State"]["Running"]

    # A port another program holds: the proxy's bind error, and again nothing half-started.
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        third = uniq("c")
        failed = lab.try_run("-p", f"{taken}:80", web, name=third)
        assert failed.returncode == 125
        assert (f"Error starting userland proxy: listen tcp4 0.0.0.0:{taken}: bind: address already in use"
                in failed.stderr)
        assert lab.inspect(third)["State"]["Status"] == "created"
    assert fetch(port) == PAGE


def test_5_sigkill_berthd_then_ports_and_dns_answer_again(bdaemon, tmp_path):
    """5. Kill berthd with SIGKILL and restart it: published ports and DNS answer again for the
    running containers."""
    lab = Lab(bdaemon)
    try:
        build_web_image(bdaemon, tmp_path / "ctx", "web")
        net = lab.network()
        port = free_port()
        site = lab.serve("web", "--network", net, "--network-alias", "site-alias", "-p", f"{port}:80")
        ephemeral = lab.run("-P", "web")
        any_port = host_port(bdaemon.ok("port", ephemeral, "80"))
        peer = lab.client("--network", net)
        assert fetch(port, "/hostname") == f"{site}\n" and fetch(any_port) == PAGE
        assert lab.wget(peer, "http://site-alias/hostname") == f"{site}\n"

        assert bdaemon.stop(signal.SIGKILL) == -signal.SIGKILL
        assert not answers(port)  # the proxies lived in berthd
        bdaemon.start()

        assert lab.inspect(site)["State"]["Running"] and lab.inspect(peer)["State"]["Running"]
        assert fetch(port, "/hostname") == f"{site}\n"
        assert fetch(any_port) == PAGE
        assert host_port(bdaemon.ok("port", ephemeral, "80")) == any_port
        assert lab.wget(peer, f"http://{site}/hostname") == f"{site}\n"
        assert lab.wget(peer, "http://site-alias/hostname") == f"{site}\n"
        late = lab.client("--network", net)  # a container started after the restart resolves too
        assert lab.wget(late, f"http://{site}/hostname") == f"{site}\n"
    finally:
        lab.cleanup()


def test_7_a_killed_daemon_with_running_containers_leaves_nothing(tmp_path, busybox_tar):
    """7. After the suite: no berth bridge, veth, namespace, nftables/iptables rule or proxy left on
    the machine. The fixture's cleanup is what guarantees it (the session-end check in
    tests/integration/conftest.py verifies every daemon again); here a daemon is SIGKILLed with
    containers running on a user network with published ports, so berthd cannot clean up itself."""
    d = Daemon(tmp_path)
    d.start()
    try:
        d.ok("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
        net = uniq("n")
        d.ok("network", "create", net)
        port = free_port()
        d.ok("run", "-d", "--network", net, "-p", f"{port}:80", "busybox", *SERVE_HOSTNAME)
        d.ok("run", "-d", "busybox", "sleep", "3600")
        made = d.network_resources()
        assert any(name.startswith("br-") for name in made.links) and len(made.veths) == 2
        assert answers(port)
        d.stop(signal.SIGKILL)
        assert leftovers(made)  # bridges, veths, chains and shims survive a killed daemon
    finally:
        d.cleanup()  # raises when anything is left
    assert leftovers(made) == [] and not answers(port)
    assert not set(made.links | made.veths) & set(_links())


def _links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def test_8_bench_network_runs(tmp_path):
    """8. `bench/network` prints TCP throughput through a published port and container-to-container
    over a bridge (here a quick run without dockerd; `python -m bench` runs it in full)."""
    env = {**os.environ, "BERTH_BENCH_NO_DOCKER": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "network.py"), "--quick"], capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("berth published port") and "MB/s" in line for line in lines), result.stdout
    assert any(line.startswith("berth bridge") and "MB/s" in line for line in lines), result.stdout
