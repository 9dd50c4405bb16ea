"""exec, top and stats through a real berthd, driven by the docker CLI (under a pseudo-terminal for
``-it``) and docker-py. Expected texts and codes are dockerd 20.10's. Containers are named after
the test run and removed at the end; the daemon fixture removes everything else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid

import pytest

from tests.ptyproc import PtyProcess

docker = pytest.importorskip("docker")

DOCKER = "/usr/local/bin/docker"
NOT_FOUND = ('OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": '
             'executable file not found in $PATH: unknown\r\n')


def cli(d, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real docker CLI against berthd ``d`` (text output with its ``\\r\\n`` kept)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    result = subprocess.run([DOCKER, "-H", d.host, *args], input=input.encode() if input is not None else None,
                            capture_output=True, env=env, timeout=timeout)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


@pytest.fixture
def client(bdaemon):
    if not os.path.exists(DOCKER):
        pytest.skip("docker CLI not installed")
    c = docker.DockerClient(base_url=bdaemon.host, version="1.41")
    made: list = []
    c.made = made
    yield c
    for container in made:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
    c.close()


def box(client, *cmd: str, ready: str = "", **kw):
    """A running busybox (``sleep 600`` unless ``cmd``), waiting for ``ready`` to exist."""
    name = "ops-" + uuid.uuid4().hex[:10]
    container = client.containers.run("busybox", list(cmd) or ["sleep", "600"], name=name, detach=True, **kw)
    client.made.append(container)
    deadline = time.monotonic() + 20
    while ready and container.exec_run(["test", "-e", ready]).exit_code != 0:
        assert time.monotonic() < deadline, f"{ready} never appeared"
        time.sleep(0.1)
    container.reload()
    return container


EXEC_CASES = [  # (options, command, (exit status, stdout, stderr))
    ([], ["sh", "-c", "echo out; echo err >&2; exit 3"], (3, "out\n", "err\n")),
    ([], ["nosuch"], (126, NOT_FOUND, "")),
    ([], ["/tmp"], (126, NOT_FOUND.replace('"nosuch": executable file not found in $PATH', '"/tmp": permission denied'),
                    "")),
    (["-w", "/nope"], ["true"], (126, 'OCI runtime exec failed: exec failed: unable to start container process: '
                                      'chdir to cwd ("/nope") set in config.json failed: no such file or directory: '
                                      'unknown\r\n', "")),
    (["-u", "nosuchuser"], ["true"], (126, "unable to find user nosuchuser: no matching entries in passwd file\r\n",
                                      "")),
    (["-u", "nobody", "-w", "/tmp", "-e", "A=1"], ["sh", "-c", "id -u; pwd; echo $A $HOME"],
     (0, "65534\n/tmp\n1 /home\n", "")),
    (["-e", "FOO", "-e", "HOSTNAME=x"], ["sh", "-c", "echo ${FOO-unset} $HOSTNAME $TERM"], (0, "unset x\n", "")),
    (["-t"], ["sh", "-c", "echo $TERM; tty"], (0, "xterm\r\n/dev/pts/0\r\n", "")),
    (["-d"], ["sleep", "1"], (0, "", "")),
]


def test_exec_with_the_docker_cli(client, bdaemon):
    c = box(client, environment=["FOO=bar"])
    got = []
    for options, command, _ in EXEC_CASES:
        result = cli(bdaemon, "exec", *options, c.name, *command)
        got.append((options, command, (result.returncode, result.stdout, result.stderr)))
    assert got == EXEC_CASES
    piped = cli(bdaemon, "exec", "-i", c.name, "sh", "-c", "cat; echo done", input="line 1\nline 2\n")
    assert (piped.returncode, piped.stdout) == (0, "line 1\nline 2\ndone\n")
    stopped = client.containers.create("busybox", ["true"], name="ops-" + uuid.uuid4().hex[:10])
    client.made.append(stopped)
    result = cli(bdaemon, "exec", stopped.name, "true")
    assert (result.returncode, result.stderr) == (1, f"Error response from daemon: Container {stopped.id} is not running\n")
    result = cli(bdaemon, "exec", "ops-no-such-container", "true")
    assert result.stderr == "Error response from daemon: No such container: ops-no-such-container\n"


NO_DOCKER_HOST = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}


def test_exec_tty_through_a_pty(client, bdaemon):
    c = box(client)
    script = "tty; sleep 1; stty size; echo out; exit 5"   # the CLI resizes right after the start
    session = PtyProcess([DOCKER, "-H", bdaemon.host, "exec", "-it", c.name, "sh", "-c", script], NO_DOCKER_HOST, 33, 101)
    status, output = session.finish()
    assert status == 5
    assert output.replace(b"\r\n", b"\n").splitlines() == [b"/dev/pts/0", b"33 101", b"out"]
    shell = PtyProcess([DOCKER, "-H", bdaemon.host, "exec", "-it", c.name, "sh"], NO_DOCKER_HOST, 24, 80)
    shell.read_until(b"# ")
    os.write(shell.fd, b"echo typed-$((6*7))\r")
    assert b"typed-42" in shell.read_until(b"typed-42")
    os.write(shell.fd, b"exit 4\r")
    assert shell.finish()[0] == 4


def test_exec_instances_through_the_api(client, bdaemon):
    c = box(client, labels={"team": "ops"})
    api = client.api
    since = int(time.time())
    exec_id = api.exec_create(c.id, ["sleep", "2"], user="nobody", environment=["A=1"], privileged=False)["Id"]
    first = api.exec_inspect(exec_id)
    assert first == {"ID": exec_id, "Running": False, "ExitCode": None,
                     "ProcessConfig": {"tty": False, "entrypoint": "sleep", "arguments": ["2"], "privileged": False,
                                       "user": "nobody"},
                     "OpenStdin": False, "OpenStderr": True, "OpenStdout": True, "CanRemove": False,
                     "ContainerID": c.id, "DetachKeys": "", "Pid": 0}
    assert api.inspect_container(c.id)["ExecIDs"] == [exec_id]
    api.exec_start(exec_id, detach=True)
    running = api.exec_inspect(exec_id)
    assert running["Running"] and running["Pid"] > 0 and running["ExitCode"] is None
    with pytest.raises(docker.errors.APIError) as again:
        api.exec_start(exec_id, detach=True)
    assert (again.value.status_code, again.value.explanation) == (
        409, f"Error: Exec command {exec_id} is already running")
    _wait(lambda: not api.exec_inspect(exec_id)["Running"])
    assert api.exec_inspect(exec_id)["ExitCode"] == 0
    assert api.inspect_container(c.id)["ExecIDs"] is None
    with pytest.raises(docker.errors.APIError, match="has already run"):
        api.exec_start(exec_id, detach=True)
    out = c.exec_run(["sh", "-c", "echo o; echo e >&2; exit 7"], demux=True)
    assert (out.exit_code, out.output) == (7, (b"o\n", b"e\n"))
    failed = api.exec_create(c.id, ["nosuch"])["Id"]
    with pytest.raises(docker.errors.APIError) as start_error:
        api.exec_start(failed, detach=True)
    assert (start_error.value.status_code, start_error.value.explanation) == (400, NOT_FOUND[:-2])
    assert api.exec_inspect(failed)["ExitCode"] == 126
    actions = [e["Action"] for e in client.events(since=since, until=int(time.time()) + 1, decode=True,
                                                    filters={"container": c.id}) if e["Action"].startswith("exec")]
    assert actions[:3] == ["exec_create: sleep 2", "exec_start: sleep 2", "exec_die"]
    assert "exec_create: nosuch " in actions and actions.count("exec_die") == 2


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"Cmd": []}, 400, "No exec command specified"),
    ({"Cmd": ["true"], "DetachKeys": "bogus"}, 400, "Invalid escape keys (bogus) provided"),
])
def test_exec_create_errors(client, body, status, message):
    c = box(client)
    response = client.api.post(client.api._url("/containers/{0}/exec", c.id), json=body)
    assert (response.status_code, response.json()) == (status, {"message": message})


def test_exec_records_follow_the_container(client):
    c = box(client)
    api = client.api
    c.pause()
    with pytest.raises(docker.errors.APIError) as paused:
        api.exec_create(c.name, ["true"])
    assert (paused.value.status_code, paused.value.explanation) == (
        409, f"Container {c.name} is paused, unpause the container before exec")
    c.unpause()
    pending = api.exec_create(c.id, ["true"])["Id"]
    done = api.exec_create(c.id, ["true"])["Id"]
    api.exec_start(done)
    c.restart(timeout=0)
    with pytest.raises(docker.errors.NotFound, match=f"No such exec instance: {pending}"):
        api.exec_inspect(pending)   # never started: gone with the run it was made for
    assert api.exec_inspect(done)["ExitCode"] == 0
    c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        api.exec_inspect(done)


def _wait(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


# ----- top -----------------------------------------------------------------------------------------
def test_top(client, bdaemon):
    c = box(client)
    listing = client.api.top(c.id)
    assert listing["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert [p[7] for p in listing["Processes"]] == ["sleep 600"]
    assert [p[1] for p in listing["Processes"]] == [str(client.api.inspect_container(c.id)["State"]["Pid"])]
    assert client.api.top(c.id, ps_args="-o pid,comm")["Titles"] == ["PID", "COMMAND"]
    result = cli(bdaemon, "top", c.name, "aux")
    assert result.stdout.split("\n")[0].split() == ["USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT",
                                                    "START", "TIME", "COMMAND"]
    for args, status, message in ((("--bogus",), 500, "ps: error: unknown gnu long option"),
                                  (("-o", "comm"), 500, "Couldn't find PID field in ps output")):
        with pytest.raises(docker.errors.APIError) as error:
            client.api.top(c.id, ps_args=" ".join(args))
        assert (error.value.status_code, error.value.explanation) == (status, message)
    c.kill()
    c.wait()
    with pytest.raises(docker.errors.APIError) as stopped:
        client.api.top(c.id)
    assert (stopped.value.status_code, stopped.value.explanation) == (409, f"Container {c.id} is not running")


# ----- stats ---------------------------------------------------------------------------------------
def test_stats(client, bdaemon):
    c = box(client, mem_limit="64m", pids_limit=50)
    doc = client.api.stats(c.id, stream=False)
    assert list(doc) == ["read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats",
                         "precpu_stats", "memory_stats", "name", "id", "networks"]
    assert (doc["name"], doc["id"], doc["pids_stats"]) == ("/" + c.name, c.id, {"current": 1, "limit": 50})
    assert doc["memory_stats"]["limit"] == 64 << 20 and doc["memory_stats"]["usage"] > 0
    assert doc["cpu_stats"]["online_cpus"] == os.sysconf("SC_NPROCESSORS_ONLN")
    assert doc["cpu_stats"]["system_cpu_usage"] > doc["precpu_stats"]["system_cpu_usage"] > 0
    assert doc["preread"] < doc["read"] and set(doc["networks"]) == {"eth0"}
    one = client.api.stats(c.id, stream=False, one_shot=True)
    assert one["preread"] == "0001-01-01T00:00:00Z" and "system_cpu_usage" not in one["precpu_stats"]
    stream = client.api.stats(c.id, stream=True, decode=True)
    first, second = next(stream), next(stream)
    assert second["preread"] == first["read"]
    result = cli(bdaemon, "stats", "--no-stream", c.name)
    header, row = result.stdout.splitlines()
    assert re.fullmatch(r"CONTAINER ID   NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS", header)
    fields = re.split(r"\s{2,}", row)
    assert fields[:2] == [c.id[:12], c.name] and fields[3].endswith(" / 64MiB") and fields[-1] == "1"
    c.kill()
    c.wait()
    zero = client.api.stats(c.id, stream=False)
    assert (zero["read"], zero["pids_stats"], zero["memory_stats"], zero["cpu_stats"]["cpu_usage"]["total_usage"]) == (
        "0001-01-01T00:00:00Z", {}, {}, 0)
    response = client.api.get(client.api._url("/containers/{0}/stats", c.id), params={"stream": 1, "one-shot": 1})
    assert (response.status_code, json.loads(response.text)) == (
        400, {"message": "cannot have stream=true and one-shot=true"})
