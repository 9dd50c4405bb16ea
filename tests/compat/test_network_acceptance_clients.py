"""Issue #5 (networking), acceptance line 6: the real docker CLI (docker 28 and Debian's 20.10)
and docker-py drive the same flows against berthd: ``network create/ls/inspect/connect/rm``,
``run -p`` and ``port``, with containers reaching each other by name and alias and the host
fetching through the published port. A side-by-side test runs the same docker CLI commands against
a real dockerd and compares what they print.

Traffic stays on this machine: loopback from the host, the test's own bridges between containers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.netlab import SERVE_HOSTNAME, fetch, free_port, uniq

CLIS = [path for path in ("/usr/local/bin/docker", "/usr/bin/docker") if os.path.exists(path)]
pytestmark = pytest.mark.compat


def docker_at(cli: str, host: str):
    """A function running ``cli -H host ARGS`` that asserts success and returns stdout, and its
    non-asserting twin as ``.raw``."""

    def raw(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([cli, "-H", host, *args], capture_output=True, text=True, timeout=timeout)

    def ok(*args: str, timeout: float = 60) -> str:
        result = raw(*args, timeout=timeout)
        assert result.returncode == 0, f"{cli} {' '.join(args)}: {result.stderr}"
        return result.stdout

    ok.raw = raw  # type: ignore[attr-defined]
    return ok


@pytest.fixture
def names(shared_daemon) -> Iterator[dict[str, list[str]]]:
    """Containers and networks a test makes on the shared berthd, removed afterwards."""
    made: dict[str, list[str]] = {"container": [], "network": []}
    yield made
    if made["container"]:
        shared_daemon.cli("rm", "-f", *made["container"])
    for net in made["network"]:
        shared_daemon.cli("network", "rm", net)


def wget_in(docker, container: str, url: str) -> str:
    script = f"for i in $(seq 10); do timeout 5 wget -qO- {url} && exit 0; sleep 0.2; done; exit 1"
    return docker("exec", container, "sh", "-c", script)


@pytest.mark.skipif(not CLIS, reason="needs the docker CLI")
@pytest.mark.parametrize("cli", CLIS)
def test_6_docker_cli_drives_network_flows(shared_daemon, names, cli):
    """6. The real docker CLI drives the same flows (`network create/ls/inspect/connect/rm`,
    `run -p`, `port`)."""
    docker = docker_at(cli, shared_daemon.host)
    front, back = uniq("dn"), uniq("dn")
    names["network"] += [front, back]
    net_id = docker("network", "create", "--label", "suite=w3", front).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", net_id)
    docker("network", "create", "--subnet", "10.231.77.0/24", back)
    rows = docker("network", "ls", "--filter", "label=suite=w3", "--format", "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}")
    assert f"{net_id[:12]} {front} bridge local" in rows.splitlines()
    info = json.loads(docker("network", "inspect", back))[0]
    assert (info["Name"], info["Driver"], info["IPAM"]["Config"][0]["Subnet"]) == (back, "bridge", "10.231.77.0/24")

    port = free_port()
    site, client = uniq("ds"), uniq("dc")
    names["container"] += [site, client]
    docker("run", "-d", "--name", site, "--hostname", site, "--network", front, "--network-alias", "site-alias",
           "-p", f"{port}:80", "busybox", *SERVE_HOSTNAME)
    docker("run", "-d", "--name", client, "--network", back, "--ip", "10.231.77.50", "busybox", "sleep", "3600")
    shown = docker("port", site, "80").splitlines()
    assert shown[0] == f"0.0.0.0:{port}" and shown[1:] in ([], [f"[::]:{port}"], [f":::{port}"])
    assert docker("port", site).splitlines()[0] == f"80/tcp -> 0.0.0.0:{port}"
    assert fetch(port, "/hostname") == f"{site}\n"
    address = docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{back}").IPAddress}}}}', client)
    assert address.strip() == "10.231.77.50"

    docker("network", "connect", "--alias", "late-alias", front, client)
    containers = json.loads(docker("network", "inspect", front))[0]["Containers"]
    assert {c["Name"] for c in containers.values()} == {site, client}
    assert wget_in(docker, client, f"http://{site}/hostname") == f"{site}\n"
    assert wget_in(docker, client, "http://site-alias/hostname") == f"{site}\n"
    docker("network", "disconnect", front, client)
    failed = docker.raw("exec", client, "sh", "-c", f"timeout 1 wget -qO- http://{site}/hostname")
    assert failed.returncode != 0

    busy = docker.raw("network", "rm", front)
    assert busy.returncode != 0 and "has active endpoints" in busy.stderr
    docker("rm", "-f", site, client)
    assert docker("network", "rm", front, back).split() == [front, back]
    assert front not in docker("network", "ls", "--format", "{{.Name}}").split()


def test_6_docker_py_drives_network_flows(shared_daemon, names):
    """6. docker-py drives the same flows (networks create/list/get/connect/disconnect/remove,
    containers.run with ports, port)."""
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=shared_daemon.host, version="1.41")
    try:
        net_name, site_name, peer_name = uniq("pn"), uniq("ps"), uniq("pc")
        names["network"].append(net_name)
        names["container"] += [site_name, peer_name]
        net = client.networks.create(net_name, driver="bridge", labels={"suite": "w3"})
        assert [n.id for n in client.networks.list(names=[net_name])] == [net.id]
        assert client.networks.get(net_name).attrs["Driver"] == "bridge"

        port = free_port()
        site = client.containers.run("busybox", SERVE_HOSTNAME, name=site_name, hostname=site_name, detach=True,
                                     ports={"80/tcp": port})
        peer = client.containers.run("busybox", ["sleep", "3600"], name=peer_name, detach=True, network=net_name)
        assert client.api.port(site.id, 80)[0] == {"HostIp": "0.0.0.0", "HostPort": str(port)}
        site.reload()
        assert site.ports["80/tcp"][0] == {"HostIp": "0.0.0.0", "HostPort": str(port)}
        assert fetch(port, "/hostname") == f"{site_name}\n"

        net.connect(site, aliases=["py-alias"])
        net.reload()
        assert {c.name for c in net.containers} == {site_name, peer_name}
        code, out = peer.exec_run(["sh", "-c", "for i in $(seq 10); do timeout 5 wget -qO- http://py-alias/hostname "
                                               "&& exit 0; sleep 0.2; done; exit 1"])
        assert (code, out.decode()) == (0, f"{site_name}\n")
        net.disconnect(site)
        code, _ = peer.exec_run(["sh", "-c", f"timeout 1 wget -qO- http://{site_name}/hostname"])
        assert code != 0
        for container in (site, peer):
            container.remove(force=True)
        net.remove()
        assert client.networks.list(names=[net_name]) == []
    finally:
        client.close()


def _normalize(text: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        text = text.replace(old, new)
    text = re.sub(r"\b[0-9a-f]{64}\b", "<id>", text)
    return re.sub(r"\b[0-9a-f]{12}\b", "<short>", text)


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_6_docker_cli_prints_the_same_for_berthd_and_dockerd(shared_daemon, dockerd):
    """6. Side by side: the docker CLI prints the same `network ls/inspect` and `port` shapes for
    berthd as for a real dockerd (names, IDs and ports normalised)."""
    outputs = []
    for host in (shared_daemon.host, dockerd.host):
        docker = docker_at("docker", host)
        net, site, port = uniq("sn"), uniq("sc"), free_port()
        try:
            docker("network", "create", "--subnet", "10.231.88.0/24", "--gateway", "10.231.88.1", net)
            docker("run", "-d", "--name", site, "--network", net, "-p", f"{port}:80", "busybox", *SERVE_HOSTNAME)
            mapping = {net: "<net>", site: "<site>", str(port): "<port>"}
            outputs.append([_normalize(out, mapping) for out in (
                docker("network", "ls", "--filter", f"name={net}"),
                docker("network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{json .IPAM.Config}} "
                       "{{.Internal}} {{.Attachable}}", net),
                docker("port", site, "80"),
                docker("port", site),
                docker("inspect", "-f", "{{json .NetworkSettings.Ports}}", site),
                docker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.Gateway}} "
                       "{{$v.IPPrefixLen}}{{end}}", site),
            )])
        finally:
            docker.raw("rm", "-f", site)
            docker.raw("network", "rm", net)
    assert outputs[0] == outputs[1]
