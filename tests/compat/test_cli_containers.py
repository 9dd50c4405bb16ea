"""Container commands of the berth CLI against a real dockerd, side by side with the docker CLI.

Outputs are compared with the docker CLI on PATH (docker 28, API 1.41 with this daemon) where docker 20.10
and 28 print the same; messages that changed after 20.10 (berth follows 20.10, the API baseline) are
compared with Debian's docker 20.10 CLI at /usr/bin/docker when it is there. Every container is named
after the test run, labelled ``berth-compat-run=<run>`` and attached to a network the run creates; all
of them are removed afterwards. Published ports are bound to 127.0.0.1 only, and the one pull goes to a
closed port on localhost.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.ptyproc import PtyProcess

BERTH = [sys.executable, "-m", "berth.cli.main"]
RUN = uuid.uuid4().hex[:8]
LABEL = f"berth-compat-run={RUN}"
NET = f"bc{RUN}-net"  # a network of our own: the tests do not depend on the daemon's default bridge
DOCKER20 = "/usr/bin/docker"

pytestmark = pytest.mark.compat


def berth(dockerd, *args: str, input: str | bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "BERTH_HOST": dockerd.host}
    return subprocess.run([*BERTH, *args], input=input, capture_output=True, text=not isinstance(input, bytes),
                          env=env, timeout=timeout)


def docker20(dockerd, *args: str) -> subprocess.CompletedProcess:
    """The docker 20.10 CLI (skips the test when it is not installed)."""
    if not os.path.exists(DOCKER20):
        pytest.skip("docker 20.10 CLI not installed")
    version = subprocess.run([DOCKER20, "version", "--format", "{{.Client.Version}}"], capture_output=True,
                             text=True, env=dockerd.env)
    if not version.stdout.startswith("20.10"):
        pytest.skip(f"{DOCKER20} is not docker 20.10")
    return subprocess.run([DOCKER20, *args], capture_output=True, text=True, env=dockerd.env, timeout=120)


def same(ours: subprocess.CompletedProcess, theirs: subprocess.CompletedProcess) -> None:
    # docker 20.10 sometimes logs a racy 'level=error msg="error waiting for container: context canceled"'
    their_err = "".join(line for line in theirs.stderr.splitlines(keepends=True) if not line.startswith("time="))
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode, theirs.stdout, their_err.replace("docker", "berth"))


@pytest.fixture(scope="session")
def network(dockerd):
    created = dockerd.docker("network", "create", "--label", LABEL, NET)
    assert created.returncode == 0, created.stderr
    yield NET
    ids = dockerd.docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split()
    if ids:
        dockerd.docker("rm", "-f", *ids)
    dockerd.docker("network", "rm", NET)


@pytest.fixture
def name(dockerd, network):
    """A unique container-name factory; every container labelled with this run is removed afterwards."""
    count = iter(range(1000))
    yield lambda: f"bc{RUN}-{next(count)}"
    ids = dockerd.docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split()
    if ids:
        dockerd.docker("rm", "-f", *ids)


def run_d(dockerd, cname: str, *args: str) -> str:
    result = dockerd.docker("run", "-d", "-l", LABEL, "--network", NET, "--name", cname, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def state(dockerd, cname: str) -> str:
    return dockerd.docker("inspect", "-f", "{{.State.Status}}", cname).stdout.strip()


def wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


# ----- run -------------------------------------------------------------------------------------------------


def test_run_rm_echo(dockerd, name):
    cname = name()
    result = berth(dockerd, "run", "--rm", "-l", LABEL, "--network", NET, "--name", cname, "busybox", "echo", "hello", "world")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello world\n", "")
    assert dockerd.docker("ps", "-aq", "--filter", f"name={cname}").stdout == ""


@pytest.mark.parametrize("args,status", [
    (["busybox", "sh", "-c", "echo out; echo err >&2; exit 3"], 3),
    (["busybox", "nonexistent-command"], 127),
    (["busybox", "/etc"], 126),
    (["busybox", "/etc/passwd"], 126),
    (["-m", "abc", "busybox"], 125),
    (["--restart", "always", "busybox"], 125),
    (["-p", "abc", "busybox"], 125),
    (["--stop-signal", "NOPE", "busybox"], 125),
])
def test_run_exit_statuses_match_docker(dockerd, name, args, status):
    ours = berth(dockerd, "run", "--rm", "-l", LABEL, "--network", NET, *args)
    theirs = dockerd.docker("run", "--rm", "-l", LABEL, "--network", NET, *args)
    assert ours.returncode == theirs.returncode == status
    assert ours.stdout == theirs.stdout
    if status in (126, 127):
        assert ours.stderr.startswith("berth: Error response from daemon: ") and ours.stderr.endswith(".\n")
    if status != 3:
        same(ours, docker20(dockerd, "run", "--rm", "-l", LABEL, "--network", NET, *args))
    else:
        assert ours.stderr == theirs.stderr == "err\n"


def test_run_detached_prints_the_id_before_a_failing_start(dockerd, name):
    args = ["run", "-d", "--rm", "-l", LABEL, "--network", NET, "busybox", "nonexistent-command"]
    ours, theirs = berth(dockerd, *args), docker20(dockerd, *args)
    assert ours.returncode == theirs.returncode == 127
    assert re.fullmatch(r"[0-9a-f]{64}\n", ours.stdout) and re.fullmatch(r"[0-9a-f]{64}\n", theirs.stdout)
    same(ours, subprocess.CompletedProcess(args, 127, ours.stdout, theirs.stderr))


def test_run_refuses_bad_detach_keys_before_creating(dockerd, name):
    cname = name()
    result = berth(dockerd, "run", "-l", LABEL, "--network", NET, "--name", cname, "--detach-keys", "foo", "busybox", "true")
    assert (result.returncode, result.stderr) == (125, "berth: Invalid detach keys (foo) provided.\n"
                                                       "See 'berth run --help'.\n")
    assert dockerd.docker("inspect", cname).returncode == 1


def test_run_killed_exits_137(dockerd, name):
    cname = name()
    env = {**os.environ, "BERTH_HOST": dockerd.host}
    proc = subprocess.Popen([*BERTH, "run", "-l", LABEL, "--network", NET, "--name", cname, "busybox", "sleep", "300"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: state(dockerd, cname) == "running")
        assert dockerd.docker("kill", cname).returncode == 0
        assert proc.wait(30) == 137
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_forwards_signals(dockerd, name):
    cname = name()
    env = {**os.environ, "BERTH_HOST": dockerd.host}
    script = 'trap "echo got TERM; exit 7" TERM; echo ready; while true; do sleep 0.1; done'
    proc = subprocess.Popen([*BERTH, "run", "--rm", "-l", LABEL, "--network", NET, "--name", cname, "busybox", "sh", "-c", script],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 7
        assert proc.stdout.read() == b"got TERM\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_interactive_pipes_stdin(dockerd, name):
    result = berth(dockerd, "run", "-i", "--rm", "-l", LABEL, "--network", NET, "busybox", "sh", "-c", "cat; echo done >&2; exit 4",
                   input="line 1\nline 2\n")
    assert (result.returncode, result.stdout, result.stderr) == (4, "line 1\nline 2\n", "done\n")


def test_run_without_a_terminal_refuses_tty_stdin(dockerd, name):
    same(berth(dockerd, "run", "--rm", "-it", "-l", LABEL, "--network", NET, "busybox", "true", input=""),
         dockerd.docker("run", "--rm", "-it", "-l", LABEL, "--network", NET, "busybox", "true", input=""))


def test_run_missing_image_is_pulled_and_the_error_shown(dockerd, name):
    image = f"localhost:1/berth-{RUN}/missing:v1"  # a closed local port: nothing leaves the machine
    result = berth(dockerd, "run", "--rm", "-l", LABEL, "--network", NET, image)
    assert result.returncode == 125
    lines = result.stderr.splitlines()
    assert lines[0] == f"Unable to find image '{image}' locally"
    assert lines[1].startswith("berth: Error response from daemon: ") and "localhost:1" in lines[1]
    assert lines[2:] == ["See 'berth run --help'."]
    created = berth(dockerd, "create", "--pull", "never", "-l", LABEL, "--network", NET, image)
    assert (created.returncode, created.stderr) == (1, f"Error response from daemon: No such image: {image}\n")


def test_run_detached_then_logs_stop_rm(dockerd, name):
    cname = name()
    script = "echo out; echo err >&2; trap 'exit 0' TERM; while true; do sleep 0.1; done"
    result = berth(dockerd, "run", "-d", "-l", LABEL, "--network", NET, "--name", cname, "busybox", "sh", "-c", script)
    assert result.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}\n", result.stdout), result.stderr
    wait_for(lambda: dockerd.docker("logs", cname).stdout == "out\n")
    for args in (["logs", cname], ["logs", "--tail", "1", cname], ["logs", "--since", "1h", cname],
                 ["logs", "--until", "2000-01-01T00:00:00Z", cname], ["container", "inspect", "-f", "{{.Name}}", cname]):
        same(berth(dockerd, *args), dockerd.docker(*args))
    stamped = berth(dockerd, "logs", "-t", cname)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z out\n", stamped.stdout)
    assert (berth(dockerd, "stop", "-t", "5", cname).stdout, state(dockerd, cname)) == (f"{cname}\n", "exited")
    assert dockerd.docker("inspect", "-f", "{{.State.ExitCode}}", cname).stdout == "0\n"
    assert berth(dockerd, "rm", cname).stdout == f"{cname}\n"
    assert dockerd.docker("inspect", cname).returncode == 1


def test_logs_follow_ends_with_the_container(dockerd, name):
    cname = name()
    run_d(dockerd, cname, "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done")
    result = berth(dockerd, "logs", "-f", cname, timeout=30)
    assert (result.returncode, result.stdout) == (0, "1\n2\n3\n")


def test_logs_of_a_tty_container_are_raw(dockerd, name):
    cname = name()
    run_d(dockerd, cname, "-t", "busybox", "sh", "-c", "echo tty; echo err >&2")
    wait_for(lambda: state(dockerd, cname) == "exited")
    same(berth(dockerd, "logs", cname), dockerd.docker("logs", cname))


def test_create_start_attach_and_cidfile(dockerd, name, tmp_path):
    cname = name()
    cidfile = tmp_path / "cid"
    created = berth(dockerd, "create", "-l", LABEL, "--network", NET, "--name", cname, "--cidfile", str(cidfile), "busybox",
                    "sh", "-c", "echo started; exit 5")
    assert created.returncode == 0 and cidfile.read_text() + "\n" == created.stdout
    again = berth(dockerd, "create", "-l", LABEL, "--network", NET, "--cidfile", str(cidfile), "busybox")
    assert (again.returncode, again.stderr) == (1, "container ID file found, make sure the other container isn't "
                                                   f"running or delete {cidfile}\n")
    started = berth(dockerd, "start", "-a", cname)
    assert (started.returncode, started.stdout) == (5, "started\n")


def test_start_interactive_attaches_stdin(dockerd, name):
    cname = name()
    assert dockerd.docker("create", "-i", "-l", LABEL, "--network", NET, "--name", cname, "busybox", "cat").returncode == 0
    result = berth(dockerd, "start", "-ai", cname, input="through stdin\n")
    assert (result.returncode, result.stdout) == (0, "through stdin\n")


# ----- lifecycle ---------------------------------------------------------------------------------------------


def test_pause_unpause_kill_wait_restart_rename(dockerd, name):
    cname, renamed = name(), name()
    run_d(dockerd, cname, "busybox", "sleep", "300")
    assert berth(dockerd, "pause", cname).stdout == f"{cname}\n"
    assert dockerd.docker("ps", "--filter", f"name={cname}", "--format", "{{.Status}}").stdout.endswith("(Paused)\n")
    assert berth(dockerd, "unpause", cname).stdout == f"{cname}\n"
    assert berth(dockerd, "rename", cname, renamed).returncode == 0
    assert berth(dockerd, "restart", "-t", "1", renamed).stdout == f"{renamed}\n"
    assert berth(dockerd, "kill", "-s", "KILL", renamed).stdout == f"{renamed}\n"
    assert (berth(dockerd, "wait", renamed).stdout, state(dockerd, renamed)) == ("137\n", "exited")


@pytest.mark.parametrize("args", [
    ["stop", "{missing}", "{c}", "{missing}2"], ["start", "{missing}", "{c}"], ["restart", "-t", "0", "{missing}"],
    ["kill", "{missing}"], ["kill", "-s", "NOPE", "{c}"], ["pause", "{missing}"], ["unpause", "{c}"],
    ["wait", "{missing}"], ["rm", "{missing}", "{missing}2"], ["rm", "-f", "{missing}"], ["rm", "{c}"],
    ["rename", "{c}", ""], ["rename", "{missing}", "{missing}2"], ["port", "{missing}"], ["port", "{c}", "80"],
    ["logs", "{missing}"], ["logs", "--since", "abc", "{c}"], ["container", "inspect", "{missing}"],
    ["start", "-a", "{c}", "{c}"], ["stop"], ["ps", "-f", "nope=1"], ["ps", "--format", "{{.ID"],
])
def test_messages_match_docker_20(dockerd, name, args):
    cname = name()
    run_d(dockerd, cname, "busybox", "sleep", "300")
    argv = [a.format(c=cname, missing=f"bc{RUN}-missing") for a in args]
    same(berth(dockerd, *argv), docker20(dockerd, *argv))


def test_port_lists_mappings_like_docker(dockerd, name):
    cname = name()
    run_d(dockerd, cname, "-p", "127.0.0.1::80", "-p", "127.0.0.1::53/udp", "--expose", "90", "busybox", "sleep", "300")
    for args in (["port", cname], ["port", cname, "80"], ["port", cname, "53/udp"]):
        same(berth(dockerd, *args), dockerd.docker(*args))
    for args in (["port", cname, "90"], ["port", cname, "abc"]):  # docker 28 words these differently
        same(berth(dockerd, *args), docker20(dockerd, *args))


def test_container_prune_with_a_filter(dockerd, name):
    kept, gone = name(), name()
    run_d(dockerd, kept, "busybox", "sleep", "300")
    assert dockerd.docker("create", "-l", LABEL, "--network", NET, "-l", f"prune-me={RUN}", "--name", gone, "busybox").returncode == 0
    gone_id = dockerd.docker("inspect", "-f", "{{.Id}}", gone).stdout.strip()
    result = berth(dockerd, "container", "prune", "-f", "--filter", f"label=prune-me={RUN}")
    assert result.stdout == f"Deleted Containers:\n{gone_id}\n\nTotal reclaimed space: 0B\n"
    assert state(dockerd, kept) == "running"


# ----- ps ---------------------------------------------------------------------------------------------------


@pytest.fixture
def listed(dockerd, name):
    """Three containers of this run: running with ports and labels, exited, created."""
    up, down, fresh = name(), name(), name()
    base = free_port_range(3)
    run_d(dockerd, up, "-p", f"127.0.0.1:{base}-{base + 2}:8000-8002", "-p", "127.0.0.1::53/udp", "--expose", "7000-7003",
          "-l", "tier=web", "busybox", "sh", "-c", "echo 'a quoted \"command\"'; sleep 300")
    run_d(dockerd, down, "busybox", "sh", "-c", "exit 2")
    assert dockerd.docker("create", "-l", LABEL, "--network", NET, "--name", fresh, "busybox:latest", "true").returncode == 0
    wait_for(lambda: state(dockerd, down) == "exited")
    return up, down, fresh


def free_port_range(count: int) -> int:
    """A first port of ``count`` consecutive free TCP ports on 127.0.0.1 (tests run in parallel:
    fixed ports collide)."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20000, 30000)
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port range")


def ps_same(dockerd, *args: str, tries: int = 3) -> None:
    """``ps`` output equal to docker's; retried because "N seconds ago" may tick between the two calls."""
    # docker joins {{.Labels}} in Go map order, which changes from run to run; berth sorts them
    fix = last_column_sorted if any("{{.Labels}}" in a for a in args) else (lambda text: text)
    for _ in range(tries):
        ours, theirs = berth(dockerd, "ps", *args), dockerd.docker("ps", *args)
        if (ours.returncode, fix(ours.stdout), ours.stderr) == (theirs.returncode, fix(theirs.stdout), theirs.stderr):
            return
    assert (ours.returncode, fix(ours.stdout), ours.stderr) == (theirs.returncode, fix(theirs.stdout), theirs.stderr)


def last_column_sorted(table: str) -> str:
    """Each line with its last word's comma-separated items sorted (a ``Labels`` column)."""
    out = []
    for line in table.splitlines(keepends=True):
        head, space, last = line.rstrip("\n").rpartition(" ")
        out.append(head + space + ",".join(sorted(last.split(","))) + "\n")
    return "".join(out)


@pytest.mark.parametrize("args", [
    [], ["-a"], ["-a", "-s"], ["-a", "--no-trunc"], ["-aq"], ["-a", "-q", "--no-trunc"], ["-a", "-n", "2"], ["-l"],
    ["-a", "--filter", "status=exited"], ["-a", "--filter", "label=tier=web"], ["-a", "--filter", "status=created"],
    ["-a", "--format", "{{.Names}} {{.State}} {{.Label \"tier\"}}"],
    ["-a", "--format", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}\t{{.Labels}}"],
    ["-a", "--format", "table {{.Names}}\t{{.Label \"tier\"}}\t{{.Networks}}\t{{.Mounts}}\t{{.LocalVolumes}}"],
    ["-a", "--format", "{{.Names}}: {{.Size}}"],
])
def test_ps_matches_docker(dockerd, listed, args):
    ps_same(dockerd, "--filter", f"label={LABEL}", *args)


def test_ps_json_matches_docker_20(dockerd, listed):
    args = ["ps", "-a", "--filter", f"label={LABEL}", "--format", "{{json .}}"]
    for _ in range(3):  # a second may tick between the two listings
        ours, theirs = berth(dockerd, *args), docker20(dockerd, *args)
        if labels_sorted(ours.stdout) == labels_sorted(theirs.stdout):
            break
    # docker joins labels in Go map order, which changes from run to run; berth sorts them
    ours.stdout, theirs.stdout = labels_sorted(ours.stdout), labels_sorted(theirs.stdout)
    same(ours, theirs)


def labels_sorted(json_lines: str) -> str:
    """``ps --format '{{json .}}'`` output with each row's ``Labels`` in sorted order."""
    rows = [json.loads(line) for line in json_lines.splitlines()]
    for row in rows:
        row["Labels"] = ",".join(sorted(row["Labels"].split(","))) if row.get("Labels") else row.get("Labels")
    return "".join(json.dumps(row) + "\n" for row in rows)


# ----- terminals -----------------------------------------------------------------------------------------------


def pty_env(dockerd) -> dict[str, str]:
    return {**os.environ, "BERTH_HOST": dockerd.host, "TERM": "dumb"}


def test_run_it_types_a_command_then_detaches(dockerd, name):
    cname = name()
    session = PtyProcess([*BERTH, "run", "-it", "-l", LABEL, "--network", NET, "--name", cname, "busybox", "sh"], pty_env(dockerd))
    try:
        session.expect(b"# ")
        os.write(session.fd, b"echo $((6*7)); stty size\r")
        session.expect(b"42\r\n30 100\r\n")
        os.write(session.fd, b"\x10\x11")  # ctrl-p ctrl-q
        assert session.wait() == 0
    finally:
        session.close()
    assert state(dockerd, cname) == "running"  # sh is the container's init: it is still there


def test_run_it_with_custom_detach_keys(dockerd, name):
    cname = name()
    session = PtyProcess([*BERTH, "run", "-it", "-l", LABEL, "--network", NET, "--name", cname, "--detach-keys", "z,z",
                          "busybox", "sh"], pty_env(dockerd))
    try:
        session.expect(b"# ")
        os.write(session.fd, b"echo zaz\r")  # a partial sequence is passed on
        session.expect(b"zaz\r\n")
        os.write(session.fd, b"zz")
        assert session.wait() == 0
    finally:
        session.close()
    assert state(dockerd, cname) == "running"


def test_run_it_exit_status(dockerd, name):
    session = PtyProcess([*BERTH, "run", "-it", "--rm", "-l", LABEL, "--network", NET, "busybox", "sh"], pty_env(dockerd))
    try:
        session.expect(b"# ")
        os.write(session.fd, b"exit 9\r")
        assert session.wait() == 9
    finally:
        session.close()


def test_start_ai_on_a_tty_container(dockerd, name):
    cname = name()
    created = dockerd.docker("create", "-it", "-l", LABEL, "--network", NET, "--name", cname, "busybox", "sh")
    assert created.returncode == 0, created.stderr
    session = PtyProcess([*BERTH, "start", "-ai", cname], pty_env(dockerd))
    try:
        session.expect(b"# ")
        os.write(session.fd, b"echo $((5*5))\r")
        session.expect(b"25\r\n")
        os.write(session.fd, b"exit 4\r")
        assert session.wait() == 4
    finally:
        session.close()
