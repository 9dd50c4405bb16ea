"""HEALTHCHECKs run end to end (dockerd 20.10's daemon/health.go behaviour; docs: Dockerfile "HEALTHCHECK",
"docker run" health options, Engine API "Health"): probes through the exec machinery, ``State.Health`` in
inspect, ``ps`` STATUS and the ``health`` filter, ``health_status`` events, stop/start, pause, live restore,
the docker CLI and docker-py, and the inspect shape next to a real dockerd. Intervals are 0.2-0.3 s."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.containers_support import RUN, named, wait_for

DOCKER = shutil.which("docker")
FAST = ("--network", "none", "--health-interval", "200ms")


def health(d: Any, name: str) -> dict[str, Any] | None:
    return json.loads(d.ok("inspect", "-f", "{{json .State.Health}}", name))


def status_of(d: Any, name: str) -> str:
    h = health(d, name)
    return h["Status"] if h else ""


def ps_status(d: Any, name: str) -> str:
    return d.ok("ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Status}}").strip()


def test_probe_outcomes_ps_and_filter(shared_daemon):
    """Healthy (exit 0, output kept), unhealthy after --health-retries failures (exit 3, stderr kept),
    a timeout (-1, dockerd's text), a start period (failures do not count while starting), output cut
    at 4096 bytes then "...", the log capped at 5; `ps` shows "(healthy)"/"(unhealthy)"/"(health: starting)"
    and `--filter health=` selects by status ("none": no healthcheck); an unknown value is refused."""
    d = shared_daemon
    with named(d, "hc") as name:
        good, bad, slow, grace, big, plain = (name() for _ in range(6))
        d.ok("run", "-d", "--name", good, *FAST, "--health-cmd", "echo hi", "busybox", "sleep", "60")
        d.ok("run", "-d", "--name", bad, *FAST, "--health-cmd", "echo bad >&2; exit 3", "--health-retries", "2",
             "busybox", "sleep", "60")
        d.ok("run", "-d", "--name", slow, *FAST, "--health-cmd", "sleep 5", "--health-timeout", "300ms",
             "--health-retries", "1", "busybox", "sleep", "60")
        d.ok("run", "-d", "--name", grace, *FAST, "--health-cmd", "exit 1", "--health-retries", "1",
             "--health-start-period", "3s", "busybox", "sleep", "60")
        d.ok("run", "-d", "--name", big, *FAST, "--health-cmd", "head -c 5000 /dev/zero | tr '\\0' a",
             "busybox", "sleep", "60")
        d.ok("run", "-d", "--name", plain, "--network", "none", "busybox", "sleep", "60")
        assert ps_status(d, grace).endswith(" (health: starting)")
        assert health(d, plain) is None
        wait_for(lambda: (health(d, grace) or {}).get("Log"), 10, "a probe in the start period")
        h = health(d, grace)
        assert (h["Status"], h["FailingStreak"], h["Log"][0]["ExitCode"]) == ("starting", 0, 1), h

        wait_for(lambda: status_of(d, good) == "healthy", 10, "healthy")
        assert re.fullmatch(r"Up .* \(healthy\)", ps_status(d, good))
        entry = health(d, good)["Log"][0]
        assert (entry["ExitCode"], entry["Output"]) == (0, "hi\n")

        wait_for(lambda: status_of(d, bad) == "unhealthy", 10, "unhealthy")
        h = health(d, bad)
        assert h["FailingStreak"] >= 2 and (h["Log"][0]["ExitCode"], h["Log"][0]["Output"]) == (3, "bad\n")
        assert re.fullmatch(r"Up .* \(unhealthy\)", ps_status(d, bad))

        wait_for(lambda: status_of(d, slow) == "unhealthy", 10, "timeout")
        entry = health(d, slow)["Log"][0]
        assert (entry["ExitCode"], entry["Output"]) == (-1, "Health check exceeded timeout (300ms)")

        wait_for(lambda: status_of(d, grace) == "unhealthy", 10, "start period over")

        wait_for(lambda: len(health(d, big)["Log"]) == 5, 10, "five results")
        time.sleep(0.5)
        h = health(d, big)
        assert len(h["Log"]) == 5 and h["Log"][0]["Output"] == "a" * 4096 + "..."

        def names(value: str) -> set[str]:
            return set(d.ok("ps", "--filter", f"health={value}", "--format", "{{.Names}}").split())

        mine = {good, bad, slow, grace, big, plain}
        assert names("healthy") & mine == {good, big}
        assert names("unhealthy") & mine == {bad, slow, grace}
        assert names("none") & mine == {plain}
        result = d.cli("ps", "--filter", "health=bogus")
        assert "Unrecognised filter value for health: bogus" in result.stderr and result.returncode == 1


def test_stop_start_pause_events_and_no_healthcheck(shared_daemon, busybox_tar):
    """Stopping ends the probing and leaves "unhealthy" (dockerd's rule), start begins again at
    "starting" with streak 0 and the log kept; pause stops probing, unpause resumes; each change of status
    is a `health_status: X` event with image and name, each probe exec_create/exec_start/exec_die; an image
    HEALTHCHECK applies unless --no-healthcheck; probes are not in ExecIDs; CMD form runs without a shell."""
    d = shared_daemon
    image = f"hc-image-{RUN}"
    d.ok("import", "-c", 'CMD ["sh"]', "-c", "HEALTHCHECK --interval=200ms --retries=1 CMD exit 1",
         str(busybox_tar), image)
    since = str(int(time.time()) - 1)
    try:
        with named(d, "hc") as name:
            box, off, exe = name(), name(), name()
            d.ok("run", "-d", "--name", box, *FAST, "--health-cmd", "exit 0", "busybox", "sleep", "60")
            d.ok("run", "-d", "--name", off, "--network", "none", image, "sleep", "60")
            d.ok("run", "-d", "--name", exe, "--network", "none", "--no-healthcheck", image, "sleep", "60")
            wait_for(lambda: status_of(d, box) == "healthy", 10, "healthy")
            wait_for(lambda: status_of(d, off) == "unhealthy", 10, "image healthcheck")
            assert health(d, exe) is None and d.ok("inspect", "-f", "{{json .Config.Healthcheck.Test}}", exe) == \
                '["NONE"]\n'
            assert d.ok("inspect", "-f", "{{json .ExecIDs}}", box) == "null\n"

            d.ok("pause", box)
            assert status_of(d, box) == "unhealthy" and ps_status(d, box).endswith("(Paused)")
            d.ok("unpause", box)
            wait_for(lambda: status_of(d, box) == "healthy", 10, "healthy after unpause")

            d.ok("stop", "-t", "0", box)
            h = health(d, box)
            assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 0)
            time.sleep(0.5)
            assert health(d, box)["Log"] == h["Log"]
            d.ok("start", box)
            h2 = health(d, box)
            assert (h2["Status"], h2["FailingStreak"]) == ("starting", 0) and h2["Log"][0] == h["Log"][0]
            wait_for(lambda: status_of(d, box) == "healthy", 10, "healthy after start")

            until = str(int(time.time()) + 1)
            time.sleep(1.1)
            lines = d.ok("events", "--since", since, "--until", until, "--filter", f"container={box}",
                         "--format", "{{json .}}").splitlines()
            events = [json.loads(line) for line in lines]
            actions = [e["Action"] for e in events]
            assert [a for a in actions if a.startswith("health_status")] == [
                "health_status: healthy", "health_status: healthy", "health_status: healthy"]
            first = next(e for e in events if e["Action"] == "health_status: healthy")
            assert first["Actor"]["Attributes"] == {"image": "busybox", "name": box}
            assert "exec_create: /bin/sh -c exit 0" in actions and "exec_start: /bin/sh -c exit 0" in actions
            only = d.ok("events", "--since", since, "--until", until, "--filter", f"container={box}",
                        "--filter", "event=health_status", "--format", "{{.Action}}")
            assert only == "health_status: healthy\n" * 3
            die = next(e for e in events if e["Action"] == "exec_die")
            assert die["Actor"]["Attributes"]["exitCode"] == "0" and len(die["Actor"]["Attributes"]["execID"]) == 64
    finally:
        d.cli("rmi", "-f", image)


def test_live_restore_resumes_probing(bdaemon):
    """A daemon restart keeps the status and goes on probing the running container (live restore)."""
    d = bdaemon
    with named(d, "hc") as name:
        box = name()
        d.ok("run", "-d", "--name", box, *FAST, "--health-cmd", "echo up", "busybox", "sleep", "60")
        wait_for(lambda: status_of(d, box) == "healthy", 10, "healthy")
        d.restart()
        assert status_of(d, box) == "healthy"
        last = health(d, box)["Log"][-1]["Start"]
        wait_for(lambda: health(d, box)["Log"][-1]["Start"] != last, 10, "a probe after the restart")
        assert health(d, box)["Status"] == "healthy"


def shims_under(root: Path) -> list[int]:
    """PIDs of berth shims holding a file under ``root`` (the daemon's exec root)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if not (proc / "cmdline").read_bytes().startswith(b"berth-shim"):
                continue
            if any(os.readlink(fd).startswith(str(root)) for fd in (proc / "fd").iterdir()):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_stop_and_remove_mid_probe_leave_no_shim(bdaemon):
    """Containers stopped or removed while probes are being spawned, run or timed out leave no probe
    shim behind (a shim whose exec never started would wait for ever)."""
    d = bdaemon
    with named(d, "hc") as name:
        boxes = [name() for _ in range(8)]
        for i, box in enumerate(boxes):
            d.ok("run", "-d", "--name", box, "--network", "none", "--health-interval", "20ms", "--health-timeout",
                 "300ms", "--health-cmd", "sleep 1" if i % 4 == 0 else "true", "busybox", "sleep", "60")
        time.sleep(0.5)
        d.ok("stop", "-t", "0", *boxes[:4])
        d.ok("rm", "-f", *boxes[4:])
        d.ok("rm", "-f", *boxes[:4])
        wait_for(lambda: not shims_under(d.exec_root), 15, "no shim left")


def docker_cli(d: Any, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER or "docker", "-H", d.host, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
def test_docker_cli_and_docker_py(shared_daemon):
    """The docker CLI's `run --health-*` and `ps` show the status; docker-py reads State.Health and
    sends an exec-form test whose missing program is a -1 result with the exec error."""
    docker = pytest.importorskip("docker")
    d = shared_daemon
    client = docker.DockerClient(base_url=d.host, version="1.41")
    with named(d, "hc") as name:
        box, exe = name(), name()
        run = docker_cli(d, "run", "-d", "--name", box, *FAST, "--health-cmd", "true", "busybox", "sleep", "60")
        assert run.returncode == 0, run.stderr
        c = client.containers.run("busybox", ["sleep", "60"], name=exe, detach=True, network_mode="none",
                                  healthcheck={"test": ["CMD", "nosuch"], "interval": 200_000_000, "retries": 1})
        wait_for(lambda: status_of(d, box) == "healthy", 10, "healthy")
        out = docker_cli(d, "ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}").stdout
        assert re.search(rf"^{box} Up .* \(healthy\)$", out, re.M), out

        def unhealthy() -> dict[str, Any] | None:
            c.reload()
            h = c.attrs["State"]["Health"]
            return h if h["Status"] == "unhealthy" else None

        h = wait_for(unhealthy, 10, "docker-py unhealthy")
        assert h["FailingStreak"] >= 1
        assert h["Log"][0]["ExitCode"] == -1 and "executable file not found" in h["Log"][0]["Output"]
    client.close()


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_inspect_shape_matches_dockerd(shared_daemon, dockerd):
    """The same `run --health-*` on berthd and dockerd: State.Health has the same field names and
    types, the same statuses in ps, and the same timeout text."""
    d = shared_daemon
    peer = f"hc-peer-{RUN}"
    args = ["run", "-d", "--network", "none", "--health-interval", "200ms", "--health-timeout", "300ms",
            "--health-cmd", "sleep 2", "busybox", "sleep", "60"]
    dockerd.docker(*args[:2], "--name", peer, *args[2:], check=True)
    try:
        with named(d, "hc") as name:
            box = name()
            d.ok(*args[:2], "--name", box, *args[2:])
            wait_for(lambda: status_of(d, box) == "unhealthy", 10, "berth unhealthy")

            def peer_health() -> dict[str, Any] | None:
                out = dockerd.docker("inspect", "-f", "{{json .State.Health}}", peer).stdout
                h = json.loads(out)
                return h if h["Status"] == "unhealthy" else None

            theirs, ours = wait_for(peer_health, 20, "dockerd unhealthy"), health(d, box)
            assert _shape(ours) == _shape(theirs)
            assert ours["Log"][0]["Output"] == theirs["Log"][0]["Output"] == "Health check exceeded timeout (300ms)"
            theirs_ps = dockerd.docker("ps", "--filter", f"name={peer}", "--format", "{{.Status}}").stdout
            assert re.sub(r"Up .* \(", "(", theirs_ps.strip()) == re.sub(r"Up .* \(", "(", ps_status(d, box))
    finally:
        dockerd.docker("rm", "-f", peer)


def test_probe_process_matches_dockerd(shared_daemon, dockerd):
    """Exec-form probes on berthd and dockerd (docker-py): the container's user, working directory and
    environment, and a missing program recorded as exit -1 with the same exec error text."""
    docker = pytest.importorskip("docker")
    outputs = []
    for host in (shared_daemon.host, dockerd.host):
        client = docker.DockerClient(base_url=host, version="1.41")
        made = []
        try:
            for test in (["CMD", "sh", "-c", "id -u; pwd; echo $FOO"], ["CMD", "nosuch"]):
                made.append(client.containers.run(
                    "busybox", ["sleep", "60"], detach=True, network_mode="none", user="nobody", working_dir="/tmp",
                    environment=["FOO=bar"], name=f"hc-proc-{RUN}-{len(made)}",
                    healthcheck={"test": test, "interval": 200_000_000, "retries": 1}))

            outputs.append(wait_for(lambda containers=made: _first_results(containers), 20, f"probes on {host}"))
        finally:
            for c in made:
                c.remove(force=True)
            client.close()
    ours, theirs = outputs
    assert ours == theirs
    assert ours[0] == (0, "65534\n/tmp\nbar\n") and ours[1][0] == -1


def _first_results(containers: list[Any]) -> list[tuple[int, str]] | None:
    """(ExitCode, Output) of each docker-py container's first probe, None until all have one."""
    logs = []
    for c in containers:
        c.reload()
        logs.append((c.attrs["State"]["Health"] or {}).get("Log"))
    return [(log[0]["ExitCode"], log[0]["Output"]) for log in logs] if all(logs) else None
