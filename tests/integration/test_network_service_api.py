"""The network routes through a real berthd: raw HTTP, docker-py and the docker CLI.

Each test's daemon has its own default bridge (``bt<tag>``) and iptables chains (``B-bt<tag>``);
the ``netd`` fixture stops the daemon itself and then checks that its bridges (default and
``br-<id>``) and chains are gone, removing and reporting whatever is left.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import time
import uuid
from ipaddress import IPv4Network
from typing import Any
from urllib.parse import quote

import pytest

from berth.network import bridge
from berth.network.firewall import Firewall
from berth.network.service import firewall_prefix

DOCKER = "/usr/local/bin/docker"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def call(daemon: Any, method: str, path: str, body: object = None) -> tuple[int, Any]:
    conn = UnixHTTPConnection(daemon.sock)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, f"/v1.41{path}", data, {"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw.strip() else None
    finally:
        conn.close()


def q(value: object) -> str:
    return quote(json.dumps(value))


class NetDaemon:
    """A berthd plus the bridges its networks got (to check after it stopped)."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.bridges = {f"bt{daemon.tag[:6]}"}

    def create(self, body: dict[str, Any]) -> tuple[int, Any]:
        status, answer = call(self.daemon, "POST", "/networks/create", body)
        if status == 201:
            self.bridges.add(call(self.daemon, "GET", f"/networks/{answer['Id']}")[1]["Options"].get(
                "com.docker.network.bridge.name") or f"br-{answer['Id'][:12]}")
        return status, answer


@pytest.fixture
def netd(daemon):
    box = NetDaemon(daemon)
    yield box
    daemon.stop()
    left = sorted(box.bridges & set(bridge.link_names()))
    for name in left:
        bridge.delete_bridge(name)
    firewall = Firewall(prefix=firewall_prefix(f"bt{daemon.tag[:6]}"))
    chains = firewall.chains_present()
    firewall.teardown_all()
    assert (left, chains) == ([], [])


def uid() -> str:
    return "nt" + uuid.uuid4().hex[:8]


def test_create_inspect_list_remove(netd):
    d, name = netd.daemon, uid()
    status, made = netd.create({"Name": name, "CheckDuplicate": True, "Labels": {"suite": name},
                                "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.231.7.0/24"}]}})
    assert status == 201 and set(made) == {"Id", "Warning"} and len(made["Id"]) == 64 and made["Warning"] == ""
    net_id = made["Id"]
    assert f"br-{net_id[:12]}" in bridge.link_names()
    status, view = call(d, "GET", f"/networks/{name}")
    assert status == 200
    assert list(view) == ["Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal",
                          "Attachable", "Ingress", "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels"]
    assert (view["Id"], view["Driver"], view["Scope"], view["Labels"], view["Containers"]) == (
        net_id, "bridge", "local", {"suite": name}, {})
    assert view["IPAM"] == {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.231.7.0/24"}]}
    assert call(d, "GET", f"/networks/{net_id}")[1] == view
    assert call(d, "GET", f"/networks/{net_id[:10]}")[1] == view

    status, listed = call(d, "GET", "/networks")
    assert status == 200 and sorted(n["Name"] for n in listed) == sorted(["bridge", "host", "none", name])
    default = next(n for n in listed if n["Name"] == "bridge")
    assert default["Options"]["com.docker.network.bridge.name"] == f"bt{d.tag[:6]}"
    assert default["Options"]["com.docker.network.bridge.default_bridge"] == "true"
    for filters, names in (({"type": ["custom"]}, [name]), ({"label": [f"suite={name}"]}, [name]),
                           ({"driver": ["null"]}, ["none"]), ({"name": [name[:5]]}, [name]),
                           ({"dangling": ["true"]}, [name])):
        status, listed = call(d, "GET", f"/networks?filters={q(filters)}")
        assert (status, [n["Name"] for n in listed]) == (200, names), filters

    for method, path, body, expected in (
        ("POST", "/networks/create", {"Name": name, "CheckDuplicate": True},
         (409, {"message": f"network with name {name} already exists"})),
        ("POST", "/networks/create", {"Name": uid(), "IPAM": {"Config": [{"Subnet": "10.231.7.128/25"}]}},
         (403, {"message": "Pool overlaps with other one on this address space"})),
        ("POST", "/networks/create", {"Name": uid(), "Driver": "nope"}, (404, {"message": 'plugin "nope" not found'})),
        ("DELETE", "/networks/bridge", None, (403, {"message": "bridge is a pre-defined network and cannot be removed"})),
        ("DELETE", "/networks/none", None, (403, {"message": "none is a pre-defined network and cannot be removed"})),
        ("GET", "/networks/nowhere", None, (404, {"message": "network nowhere not found"})),
        ("DELETE", "/networks/nowhere", None, (404, {"message": "network nowhere not found"})),
        ("GET", f"/networks?filters={q({'colour': ['red']})}", None, (400, {"message": "Invalid filter 'colour'"})),
    ):
        assert call(d, method, path, body) == expected, (method, path, body)

    since = time.time()
    assert call(d, "DELETE", f"/networks/{name}") == (204, None)
    assert f"br-{net_id[:12]}" not in bridge.link_names()
    assert call(d, "GET", f"/networks/{name}")[0] == 404
    status, events = call_events(d, since, {"type": ["network"]})
    assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]) for e in events] == [
        ("destroy", net_id, {"name": name, "type": "bridge"})]


def call_events(d: Any, since: float, filters: dict[str, list[str]]) -> tuple[int, list[dict[str, Any]]]:
    conn = UnixHTTPConnection(d.sock)
    try:
        conn.request("GET", f"/v1.41/events?since={since:.3f}&until={time.time() + 0.5:.3f}&filters={q(filters)}")
        resp = conn.getresponse()
        return resp.status, [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    finally:
        conn.close()


def test_prune_and_connect_errors(netd, busybox_tar):
    d = netd.daemon
    keep, drop = uid(), uid()
    assert netd.create({"Name": keep, "Labels": {"keep": "yes"}})[0] == 201
    assert netd.create({"Name": drop})[0] == 201
    status, pruned = call(d, "POST", f"/networks/prune?filters={q({'label!': ['keep']})}")
    assert (status, pruned) == (200, {"NetworksDeleted": [drop]})
    assert call(d, "POST", f"/networks/prune?filters={q({'label': ['nothing']})}") == (200, {"NetworksDeleted": None})

    for path, body, expected in (
        (f"/networks/{keep}/connect", {"Container": "ghost"}, (404, {"message": "No such container: ghost"})),
        ("/networks/nowhere/connect", {"Container": "ghost"}, (404, {"message": "network nowhere not found"})),
        (f"/networks/{keep}/disconnect", {"Container": "ghost"}, (404, {"message": "No such container: ghost"})),
        (f"/networks/{keep}/disconnect", {"Container": "ghost", "Force": True},
         (404, {"message": "endpoint ghost not found"})),
        (f"/networks/{keep}/connect", {}, (400, {"message": "no container specified"})),
    ):
        assert call(d, "POST", path, body) == expected, (path, body)

    d.ok("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox:latest")
    cname = uid()
    status, created = call(d, "POST", f"/containers/create?name={cname}", {"Image": "busybox", "Cmd": ["true"]})
    if status != 201:
        pytest.skip(f"the container service cannot create containers yet: {created}")
    assert call(d, "POST", f"/networks/{keep}/connect",
                {"Container": cname, "EndpointConfig": {"Aliases": ["db"]}}) == (200, None)
    settings = call(d, "GET", f"/containers/{cname}/json")[1]["NetworkSettings"]["Networks"]
    assert sorted(settings) == ["bridge", keep] and settings[keep]["Aliases"] == ["db", created["Id"][:12]]
    assert call(d, "POST", f"/networks/{keep}/connect", {"Container": cname}) == (
        403, {"message": f"endpoint with name {cname} already exists in network {keep}"})
    assert call(d, "POST", "/networks/host/connect", {"Container": cname}) == (
        400, {"message": "container cannot be disconnected from host network or connected to host network"})
    assert call(d, "POST", "/networks/bridge/connect", {"Container": cname, "EndpointConfig": {"Aliases": ["x"]}})[
        0] == 403
    assert call(d, "POST", f"/networks/{keep}/disconnect", {"Container": cname}) == (200, None)
    assert call(d, "POST", f"/networks/{keep}/disconnect", {"Container": cname}) == (
        500, {"message": f"container {created['Id']} is not connected to network {keep}"})
    assert call(d, "DELETE", f"/containers/{cname}")[0] == 204
    assert call(d, "DELETE", f"/networks/{keep}") == (204, None)


def test_networks_survive_a_daemon_restart(netd):
    d, kept, moved = netd.daemon, uid(), uid()
    assert netd.create({"Name": kept, "IPAM": {"Config": [{"Subnet": "10.233.5.0/24"}]}})[0] == 201
    assert netd.create({"Name": moved})[0] == 201
    before = {n["Name"]: n for n in call(d, "GET", "/networks")[1]}
    user_bridges = [f"br-{before[name]['Id'][:12]}" for name in (kept, moved)]
    d.stop()
    assert not set(user_bridges) & set(bridge.link_names())  # idle bridges go with the daemon
    assert not Firewall(prefix=firewall_prefix(f"bt{d.tag[:6]}")).chains_present()
    taken = before[moved]["IPAM"]["Config"][0]
    squatter = f"bt{d.tag[:6]}x"  # another engine takes that subnet while berthd is down
    bridge.ensure_bridge(squatter, f"{taken['Gateway']}/{taken['Subnet'].split('/')[1]}")
    try:
        d.start()
        after = {n["Name"]: n for n in call(d, "GET", "/networks")[1]}
        assert {name: after[name] for name in ("host", "none", kept)} == {
            name: before[name] for name in ("host", "none", kept)}
        # The idle default bridge may move too: test daemons running beside this one can take
        # its subnet while this daemon is down.
        assert {**after["bridge"], "IPAM": None} == {**before["bridge"], "IPAM": None}
        config = after[moved]["IPAM"]["Config"][0]
        assert after[moved]["Id"] == before[moved]["Id"] and config["Subnet"] != taken["Subnet"]
        assert not IPv4Network(config["Subnet"]).overlaps(IPv4Network(taken["Subnet"]))
        assert set(user_bridges + [f"bt{d.tag[:6]}"]) <= set(bridge.link_names())
    finally:
        bridge.delete_bridge(squatter)


def test_docker_py_networks(netd):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=netd.daemon.host, version="1.41")
    name = uid()
    try:
        net = client.networks.create(name, driver="bridge", labels={"suite": name}, internal=True)
        netd.bridges.add(f"br-{net.id[:12]}")
        assert client.networks.get(name).attrs["Internal"] is True
        assert [n.name for n in client.networks.list(filters={"label": f"suite={name}"})] == [name]
        with pytest.raises(docker.errors.APIError) as err:
            client.networks.create(name, check_duplicate=True)
        assert err.value.status_code == 409
        net.remove()
        with pytest.raises(docker.errors.NotFound):
            client.networks.get(name)
    finally:
        client.close()


@pytest.mark.skipif(shutil.which(DOCKER) is None, reason="needs the docker CLI")
def test_docker_cli_network_commands(netd):
    d, name = netd.daemon, uid()

    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKER, "-H", d.host, *args], capture_output=True, text=True, timeout=60)

    created = docker("network", "create", "--subnet", "10.232.9.0/24", "--gateway", "10.232.9.254",
                     "--label", "a=b", "-o", "com.docker.network.driver.mtu=1400", name)
    assert created.returncode == 0 and len(created.stdout.strip()) == 64, created.stderr
    netd.bridges.add(f"br-{created.stdout.strip()[:12]}")
    listed = docker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
    assert sorted(listed.stdout.splitlines()) == sorted(
        ["bridge bridge local", "host host local", "none null local", f"{name} bridge local"])
    short = docker("network", "ls", "-q", "--filter", f"name={name}").stdout.strip()
    assert short == created.stdout.strip()[:12]
    shown = docker("network", "inspect", "-f",
                   "{{.Name}} {{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}} {{.Labels.a}} "
                   "{{index .Options \"com.docker.network.driver.mtu\"}}", name)
    assert shown.stdout == f"{name} 10.232.9.0/24 10.232.9.254 b 1400\n", shown.stderr
    again = docker("network", "create", name)
    assert (again.returncode, again.stderr) == (
        1, f"Error response from daemon: network with name {name} already exists\n")
    refused = docker("network", "rm", "bridge")
    assert refused.returncode == 1
    assert "Error response from daemon: bridge is a pre-defined network and cannot be removed" in refused.stderr
    removed = docker("network", "rm", name)
    assert (removed.returncode, removed.stdout) == (0, f"{name}\n")
    missing = docker("network", "inspect", name)
    assert missing.returncode == 1 and name in missing.stderr
