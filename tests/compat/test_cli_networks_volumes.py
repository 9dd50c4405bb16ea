"""``berth network ...`` and ``berth volume ...`` side by side with the docker CLI against a real dockerd.

Both CLIs talk to the same daemon, so on the same objects their output must be identical (after
``docker`` -> ``berth`` in messages). Every object is named after the test run and removed afterwards.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import uuid

import pytest

BERTH = [sys.executable, "-m", "berth.cli.main"]


def berth(dockerd, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "BERTH_HOST": dockerd.host}
    return subprocess.run([*BERTH, *args], input=input, capture_output=True, text=True, env=env, timeout=timeout)


def assert_same(dockerd, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``args`` with both CLIs; stdout, stderr (docker's name replaced) and status must agree."""
    theirs = dockerd.docker(*args, input=input)
    ours = berth(dockerd, *args, input=input)
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode, theirs.stdout, theirs.stderr.replace("docker", "berth")), args
    return ours


@pytest.fixture
def uid():
    return "gt" + uuid.uuid4().hex[:10]


@pytest.fixture
def made(dockerd):
    """Names of what a test creates, removed afterwards whatever happens."""
    objects: dict[str, list[str]] = {"container": [], "network": [], "volume": []}
    yield objects
    for name in objects["container"]:
        dockerd.docker("rm", "-f", name)
    for name in objects["network"]:
        dockerd.docker("network", "rm", name)
    for name in objects["volume"]:
        dockerd.docker("volume", "rm", "-f", name)


def test_volume_lifecycle(dockerd, uid, made):
    made["volume"] += [f"{uid}-a", f"{uid}-b"]
    # One label per volume: docker prints a Labels column in Go's random map order.
    created = berth(dockerd, "volume", "create", "--label", "x=y",
                    "-o", "type=tmpfs", "-o", "device=tmpfs", f"{uid}-a")
    assert (created.returncode, created.stdout) == (0, f"{uid}-a\n")
    assert dockerd.docker("volume", "create", "--label", f"suite={uid}", f"{uid}-b").returncode == 0
    for args in (["volume", "ls", "--filter", f"name={uid}"],
                 ["volume", "ls", "-q", "--filter", f"label=suite={uid}"],
                 ["volume", "ls", "--filter", f"name={uid}", "--format", "json"],
                 ["volume", "ls", "--filter", f"name={uid}", "--filter", "label=x",
                  "--format", "table {{.Name}}\t{{.Labels}}\t{{.Label \"x\"}}\t{{.Mountpoint}}"],
                 ["volume", "ls", "--filter", "bogus=1"],
                 ["volume", "inspect", f"{uid}-a", f"{uid}-b"],
                 ["volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Options}}", f"{uid}-a", f"{uid}-nope"],
                 ["volume", "inspect", f"{uid}-nope"],
                 ["volume", "rm", "-f", f"{uid}-nope"],
                 ["volume", "prune", "-a", "-f"]):
        assert_same(dockerd, *args)
    listing = berth(dockerd, "volume", "ls", "--filter", f"name={uid}")
    assert listing.stdout.splitlines() == ["DRIVER    VOLUME NAME", f"local     {uid}-a", f"local     {uid}-b"]
    removed = berth(dockerd, "volume", "rm", f"{uid}-a", f"{uid}-nope", f"{uid}-b")
    assert (removed.returncode, removed.stdout) == (1, f"{uid}-a\n{uid}-b\n")
    assert removed.stderr == f"Error response from daemon: get {uid}-nope: no such volume\n"


def test_anonymous_volume_and_prune(dockerd, uid, made):
    created = berth(dockerd, "volume", "create", "--label", f"suite={uid}")
    assert created.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}\n", created.stdout)
    made["volume"].append(created.stdout.strip())
    declined = berth(dockerd, "volume", "prune", "--filter", f"label=suite={uid}", input="n\n")
    assert (declined.returncode, declined.stdout) == (0, "WARNING! This will remove all local volumes not used by "
                                                         "at least one container.\nAre you sure you want to "
                                                         "continue? [y/N] ")
    pruned = berth(dockerd, "volume", "prune", "-f", "--filter", f"label=suite={uid}")
    assert pruned.stdout == f"Deleted Volumes:\n{created.stdout}\nTotal reclaimed space: 0B\n"


def _subnet() -> str:
    return f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24"


def test_network_lifecycle(dockerd, uid, made):
    subnet = _subnet()
    prefix = subnet.rsplit(".", 1)[0]
    made["network"] += [f"{uid}-a", f"{uid}-b"]
    created = berth(dockerd, "network", "create", "--subnet", subnet, "--gateway", f"{prefix}.254",
                    "--ip-range", f"{prefix}.128/25", "--aux-address", f"host={prefix}.9", "--internal",
                    "--attachable", "--label", f"suite={uid}", "-o", "com.docker.network.driver.mtu=1400",
                    "--ipam-opt", "k=v", f"{uid}-a")
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"[0-9a-f]{64}\n", created.stdout)
    assert dockerd.docker("network", "create", "--label", f"suite={uid}", f"{uid}-b").returncode == 0
    info = json.loads(dockerd.docker("network", "inspect", f"{uid}-a").stdout)[0]
    assert info["IPAM"] == {"Driver": "default", "Options": {"k": "v"}, "Config": [
        {"Subnet": subnet, "IPRange": f"{prefix}.128/25", "Gateway": f"{prefix}.254",
         "AuxiliaryAddresses": {"host": f"{prefix}.9"}}]}
    assert (info["Internal"], info["Attachable"], info["Labels"], info["Options"]) == (
        True, True, {"suite": uid}, {"com.docker.network.driver.mtu": "1400"})
    for args in (["network", "ls", "--filter", f"name={uid}"],
                 ["network", "ls", "--filter", f"label=suite={uid}", "--no-trunc"],
                 ["network", "ls", "-q", "--filter", f"name={uid}"],
                 ["network", "ls", "--filter", f"name={uid}", "--format", "json"],
                 ["network", "ls", "--filter", f"name={uid}", "--format",
                  "{{.Name}}\t{{.Internal}}\t{{.IPv6}}\t{{.Labels}}\t{{.CreatedAt}}"],
                 ["network", "inspect", f"{uid}-a", f"{uid}-b"],
                 ["network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Internal}}", f"{uid}-a", f"{uid}-nope"],
                 ["network", "create", f"{uid}-a"],
                 ["network", "rm", "-f", f"{uid}-nope"]):
        assert_same(dockerd, *args)
    header = berth(dockerd, "network", "ls", "--filter", f"name={uid}").stdout.splitlines()[0]
    assert header == "NETWORK ID     " + "NAME".ljust(len(f"{uid}-a") + 3) + "DRIVER    SCOPE"
    removed = berth(dockerd, "network", "rm", f"{uid}-a", f"{uid}-nope", f"{uid}-b")
    assert (removed.returncode, removed.stdout) == (1, f"{uid}-a\n{uid}-b\n")
    assert removed.stderr == f"Error response from daemon: network {uid}-nope not found\nexit status 1\n"


@pytest.mark.parametrize("args", [
    ["--gateway", "10.1.1.1"],
    ["--subnet", "10.240.0.0/16", "--subnet", "10.240.1.0/24"],
    ["--subnet", "10.0.0.0/24", "--ip-range", "10.1.0.0/24"],
    ["--subnet", "10.0.0.0/24", "--gateway", "bad"],
    ["--subnet", "10.0.0.0/24", "--aux-address", "a=10.9.9.9"],
])
def test_network_create_ipam_errors(dockerd, uid, args):
    result = assert_same(dockerd, "network", "create", *args, f"{uid}-bad")
    assert result.returncode == 1


def test_network_connect_disconnect(dockerd, uid, made):
    subnet = _subnet()
    prefix = subnet.rsplit(".", 1)[0]
    made["network"] += [f"{uid}-n", f"{uid}-first"]
    made["container"].append(f"{uid}-c")
    assert berth(dockerd, "network", "create", "--subnet", subnet, f"{uid}-n").returncode == 0
    # the container starts on a network of its own, not on the daemon's default bridge
    assert dockerd.docker("network", "create", f"{uid}-first").returncode == 0
    assert dockerd.docker("run", "-d", "--network", f"{uid}-first", "--name", f"{uid}-c", "busybox", "sleep",
                          "300").returncode == 0
    connected = berth(dockerd, "network", "connect", "--alias", "web", "--alias", "www", "--ip", f"{prefix}.77",
                      "--link", f"{uid}-c:self", f"{uid}-n", f"{uid}-c")
    assert (connected.returncode, connected.stdout, connected.stderr) == (0, "", "")
    endpoint = json.loads(dockerd.docker("inspect", "-f", f"{{{{json (index .NetworkSettings.Networks \"{uid}-n\")}}}}",
                                         f"{uid}-c").stdout)
    assert endpoint["IPAddress"] == f"{prefix}.77"
    assert {"web", "www"} <= set(endpoint["Aliases"]) and endpoint["Links"] == [f"{uid}-c:self"]
    address = dockerd.docker("exec", f"{uid}-c", "ip", "-4", "-o", "addr").stdout
    assert f"{prefix}.77/24" in address
    assert_same(dockerd, "network", "connect", f"{uid}-n", f"{uid}-nope")
    assert berth(dockerd, "network", "disconnect", "-f", f"{uid}-n", f"{uid}-c").returncode == 0
    networks = dockerd.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", f"{uid}-c").stdout
    assert f"{uid}-n" not in networks
    assert_same(dockerd, "network", "disconnect", f"{uid}-n", f"{uid}-c")


def test_network_prune(dockerd, uid, made):
    made["network"] += [f"{uid}-p1", f"{uid}-p2"]
    for name in made["network"]:
        assert dockerd.docker("network", "create", "--label", f"suite={uid}", name).returncode == 0
    pruned = berth(dockerd, "network", "prune", "-f", "--filter", f"label=suite={uid}")
    assert pruned.returncode == 0
    lines = pruned.stdout.splitlines()
    assert lines[0] == "Deleted Networks:" and sorted(lines[1:3]) == made["network"] and lines[3:] == [""]
