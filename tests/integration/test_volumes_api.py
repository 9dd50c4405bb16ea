"""The volume routes through a real berthd: raw HTTP, docker-py and the docker CLI."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import time
import uuid
from urllib.parse import quote

import pytest


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def call(daemon, method: str, path: str, body: object = None, version: str = "v1.41") -> tuple[int, object]:
    conn = UnixHTTPConnection(daemon.sock)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, f"/{version}{path}" if version else path, data, headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw.strip() else None
    finally:
        conn.close()


def filters(**kw: list[str]) -> str:
    return quote(json.dumps({k.replace("_not", "!"): v for k, v in kw.items()}))


def uniq(prefix: str = "api") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def test_volume_routes(daemon):
    name = uniq()
    status, created = call(daemon, "POST", "/volumes/create",
                           {"Name": name, "Labels": {"k": "v"}, "DriverOpts": {"type": "tmpfs", "device": "tmpfs",
                                                                                "o": "size=1m"}})
    assert status == 201
    assert set(created) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert created["Mountpoint"] == str(daemon.root / "volumes" / name / "_data")
    assert (created["Name"], created["Driver"], created["Scope"], created["Labels"]) == (name, "local", "local",
                                                                                         {"k": "v"})
    assert call(daemon, "POST", "/volumes/create", {"Name": name}) == (201, created)
    assert call(daemon, "GET", f"/volumes/{name}") == (200, created)
    assert call(daemon, "GET", f"/v1.43/volumes/{name}", version="") == (200, created)
    assert call(daemon, "GET", "/volumes") == (200, {"Volumes": [created], "Warnings": None})
    assert call(daemon, "GET", f"/volumes?filters={filters(label=['k=v'])}")[1]["Volumes"] == [created]
    assert call(daemon, "GET", f"/volumes?filters={filters(label=['k=w'])}")[1]["Volumes"] == []
    assert call(daemon, "GET", f"/volumes?filters={filters(bogus=['1'])}") == (400, {"message": "Invalid filter 'bogus'"})
    assert call(daemon, "DELETE", f"/volumes/{name}") == (204, None)
    assert call(daemon, "GET", f"/volumes/{name}") == (404, {"message": f"get {name}: no such volume"})
    assert call(daemon, "DELETE", f"/volumes/{name}") == (404, {"message": f"get {name}: no such volume"})
    assert call(daemon, "DELETE", f"/volumes/{name}?force=1") == (204, None)
    assert not (daemon.root / "volumes" / name).exists()


@pytest.mark.parametrize("extra,shown", [
    ({}, None),                                  # docker-py, the docker 23+ CLI
    ({"Labels": None, "DriverOpts": None}, None),
    ({"Labels": {}, "DriverOpts": {}}, {}),      # the docker 20.10 CLI (and berth's)
])
def test_labels_and_options_shown_as_sent(daemon, extra, shown):
    name = uniq()
    status, created = call(daemon, "POST", "/volumes/create", {"Name": name, **extra})
    assert status == 201 and (created["Labels"], created["Options"]) == (shown, shown)
    assert call(daemon, "GET", f"/volumes/{name}")[1] == created


@pytest.mark.parametrize("body,status,message", [
    ({"Name": "a"}, 400, "create a: volume name is too short, names should be at least two alphanumeric characters"),
    ({"Name": "x1", "DriverOpts": {"foo": "bar"}}, 400, 'create x1: invalid option: "foo"'),
    ({"Name": "x1", "Driver": "nope"}, 404, 'create x1: error looking up volume plugin nope: plugin "nope" not found'),
])
def test_create_errors(daemon, body, status, message):
    assert call(daemon, "POST", "/volumes/create", body) == (status, {"message": message})


def test_prune_follows_the_api_version(daemon):
    named, anon = uniq("named"), uniq("anon")
    for name, labels in ((named, {}), (anon, {"com.docker.volume.anonymous": ""})):
        assert call(daemon, "POST", "/volumes/create", {"Name": name, "Labels": labels})[0] == 201
    assert call(daemon, "POST", "/volumes/prune", version="v1.42") == (
        200, {"VolumesDeleted": [anon], "SpaceReclaimed": 0})
    assert call(daemon, "POST", f"/volumes/prune?filters={filters(label=['other'])}") == (
        200, {"VolumesDeleted": [], "SpaceReclaimed": 0})
    assert call(daemon, "POST", f"/volumes/prune?filters={filters(name=['x'])}") == (
        400, {"message": "Invalid filter 'name'"})
    assert call(daemon, "POST", "/volumes/prune") == (200, {"VolumesDeleted": [named], "SpaceReclaimed": 0})


def test_events(daemon):
    name = uniq()
    assert call(daemon, "POST", "/volumes/create", {"Name": name})[0] == 201
    assert call(daemon, "DELETE", f"/volumes/{name}")[0] == 204
    conn = UnixHTTPConnection(daemon.sock)
    try:
        conn.request("GET", f"/v1.41/events?since=0&until={int(time.time()) + 1}&filters={filters(type=['volume'])}")
        resp = conn.getresponse()
        lines = [json.loads(line) for line in resp.read().splitlines() if line.strip()][:2]
    finally:
        conn.close()
    assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]) for e in lines] == [
        ("create", name, {"driver": "local"}), ("destroy", name, {"driver": "local"})]


def test_docker_py(daemon):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.host)
    name = uniq("py")
    try:
        volume = client.volumes.create(name=name, driver="local", labels={"suite": name},
                                       driver_opts={"type": "tmpfs", "device": "tmpfs"})
        assert volume.name == name and volume.attrs["Options"] == {"type": "tmpfs", "device": "tmpfs"}
        assert client.volumes.get(name).attrs == volume.attrs
        assert [v.name for v in client.volumes.list(filters={"label": f"suite={name}"})] == [name]
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(name + "x")
        volume.remove()
        assert client.volumes.list(filters={"label": f"suite={name}"}) == []
        anon = client.volumes.create()
        assert len(anon.name) == 64
        assert client.volumes.prune()["VolumesDeleted"] in ([anon.name], None, [])
    finally:
        client.close()


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not installed")
def test_docker_cli(daemon):
    name = uniq("cli")

    def docker(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "-H", daemon.host, *args], capture_output=True, text=True, timeout=60)

    created = docker("volume", "create", "--label", "a=b", "-o", "type=tmpfs", "-o", "device=tmpfs", name)
    assert (created.returncode, created.stdout) == (0, f"{name}\n")
    listing = docker("volume", "ls", "--filter", f"name={name}")
    assert listing.stdout.splitlines() == ["DRIVER    VOLUME NAME", f"local     {name}"]
    inspected = json.loads(docker("volume", "inspect", name).stdout)
    assert inspected[0]["Name"] == name and inspected[0]["Labels"] == {"a": "b"}
    fmt = docker("volume", "inspect", "-f", "{{.Driver}} {{.Options.type}} {{.Scope}}", name)
    assert fmt.stdout == "local tmpfs local\n"
    missing = docker("volume", "inspect", name + "x")
    assert missing.returncode == 1 and f"get {name}x: no such volume" in missing.stderr
    bad = docker("volume", "create", "-o", "foo=bar", name + "y")
    assert bad.returncode == 1 and f'create {name}y: invalid option: "foo"' in bad.stderr
    removed = docker("volume", "rm", name)
    assert (removed.returncode, removed.stdout) == (0, f"{name}\n")
    assert docker("volume", "ls", "-q").stdout == ""
