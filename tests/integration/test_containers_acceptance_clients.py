"""Issue #3 (containers, runtime, shims), acceptance lines 6-9: runc on the same bundle, the real docker
CLI and docker-py against berthd, bad input, and the run-latency bench. Lines 1-5 are in
``test_containers_acceptance.py``. Messages are dockerd 20.10's and the docker 20.10 CLI's.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.daemon_fixture import VENV_BIN
from tests.integration.containers_support import RUN, exists, named, state, wait_for
from tests.ptyproc import PtyProcess

ROOT = Path(__file__).resolve().parents[2]
DOCKER = shutil.which("docker")

# ----- 6. --runtime runc ------------------------------------------------------------------------------------

VIEWS = {  # what a process sees of its container; PIDs and cgroup names differ by nature and are masked
    "identity": "id; hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf; umask; pwd; env | sort",
    "privileges": "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status",
    "devices": "ls -ln /dev /dev/pts /dev/shm | awk '{print $1, $3, $4, $5, $6, $NF}'",
    "mounts": "awk '{for (i = 7; $i != \"-\"; i++); print $5, $6, $(i+1), ($(i+1) == \"overlay\" ? \"\" : $(i+3))}' "
              "/proc/self/mountinfo",
    "limits": "ulimit -a",
    "cgroups": "sed 's#/berth/[0-9a-f]*#/berth/ID#' /proc/self/cgroup",
    "processes": "ps -o user,comm",
    "read-only paths": "for p in /proc/sys/kernel/hostname /proc/irq/default_smp_affinity /proc/sysrq-trigger "
                       "/sys/class/net/lo/mtu /proc/timer_list; do (echo x > $p) 2>&1 | sed 's/.*: //'; done",
}


@pytest.mark.skipif(not shutil.which("runc"), reason="runc is not installed")
@pytest.mark.parametrize("view", VIEWS)
def test_6_same_output_under_runc(shared_daemon, view):
    """6. With runc installed, the same bundle under `--runtime runc` gives the same output for a handful
    of commands."""
    d = shared_daemon
    outputs = {}
    for runtime in ("berth", "runc"):
        result = d.cli("run", "--rm", "--runtime", runtime, "--network", "none", "-h", "box", "busybox", "sh", "-c",
                       VIEWS[view])
        outputs[runtime] = (result.returncode, result.stdout, result.stderr)
    assert outputs["berth"] == outputs["runc"]
    assert outputs["berth"][1]


# ----- 7. the docker CLI and docker-py ---------------------------------------------------------------------


def docker_cli(d, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real docker CLI against berthd ``d``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    return subprocess.run([DOCKER or "docker", "-H", d.host, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
def test_7_docker_cli(shared_daemon, tmp_path):
    """7. The real docker CLI against berthd: `run --rm`, `run -d`, `ps -a`, `logs -f`, `exec -it` (pty),
    `stop`, `rm -f`, `commit`, `diff`, `top`, `stats --no-stream`, `cp`, `inspect --format`, `wait` work."""
    d, repo = shared_daemon, f"acc-docker-{RUN}"

    def ok(*args: str) -> str:
        result = docker_cli(d, *args)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    with named(d) as name:
        box, printer = name(), name()
        assert ok("run", "--rm", "busybox", "echo", "hi") == "hi\n"
        cid = ok("run", "-d", "--name", box, "busybox", "sleep", "300").strip()
        assert re.fullmatch(r"[0-9a-f]{64}", cid)
        assert ok("ps", "-a", "--filter", f"name={box}", "--format", "{{.ID}} {{.Names}} {{.Status}}").startswith(
            f"{cid[:12]} {box} Up ")
        ok("run", "-d", "--name", printer, "busybox", "sh", "-c", "for i in 1 2 3; do echo l$i; sleep 0.2; done")
        assert ok("logs", "-f", printer) == "l1\nl2\nl3\n"  # follows until the container ends
        session = PtyProcess([DOCKER or "docker", "-H", d.host, "exec", "-it", box, "sh"], {**os.environ,
                                                                                          "TERM": "dumb"})
        try:
            session.expect(b"# ")
            session.type(b"echo $((6*7)); tty\r")
            session.expect(b"42\r\n/dev/pts/0\r\n")
            session.type(b"exit 3\r")
            assert session.wait() == 3
        finally:
            session.close()
        top = ok("top", box).splitlines()
        assert top[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        assert top[1].endswith("sleep 300")
        stats = ok("stats", "--no-stream", box).splitlines()
        assert stats[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"] and stats[1].split()[:2] == [cid[:12], box]
        (tmp_path / "in.txt").write_text("copied in\n")
        ok("cp", str(tmp_path / "in.txt"), f"{box}:/in.txt")
        ok("cp", f"{box}:/in.txt", str(tmp_path / "out.txt"))
        assert (tmp_path / "out.txt").read_text() == "copied in\n"
        assert ok("diff", box) == "A /in.txt\n"
        try:
            image_id = ok("commit", box, repo).strip()
            assert ok("run", "--rm", repo, "cat", "/in.txt") == "copied in\n"
            assert ok("inspect", "--format", "{{.Id}}", repo).strip() == image_id
        finally:
            docker_cli(d, "rmi", "-f", repo)
        assert ok("inspect", "--format", "{{.State.Running}} {{.Name}} {{.Config.Cmd}}", box) == \
            f"true /{box} [sleep 300]\n"
        assert ok("stop", "-t", "1", box) == f"{box}\n"
        assert ok("wait", box) == "137\n"
        assert ok("rm", "-f", box, printer) == f"{box}\n{printer}\n"
        assert not exists(d, box) and not exists(d, printer)


def test_7_docker_py(shared_daemon):
    """7. [...] docker-py `containers.run(..., remove=True)`, `containers.run(detach=True)`, `exec_run`,
    `logs(stream=True)`, `wait`, `put_archive`/`get_archive` work."""
    docker = pytest.importorskip("docker")
    d = shared_daemon
    client = docker.DockerClient(base_url=d.host, version="1.41")
    with named(d) as name:
        try:
            gone = name()
            assert client.containers.run("busybox", ["echo", "hi"], name=gone, remove=True) == b"hi\n"
            assert not exists(d, gone)
            box = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo l$i; sleep 0.2; done; "
                                                                 "while [ ! -e /stop ]; do sleep 0.05; done"],
                                        name=name(), detach=True)
            assert box.exec_run(["sh", "-c", "echo $((2+3)); exit 4"]) == (4, b"5\n")
            data = io.BytesIO()
            with tarfile.open(fileobj=data, mode="w") as tar:
                info = tarfile.TarInfo("put.txt")
                info.size, info.mode = 4, 0o640
                tar.addfile(info, io.BytesIO(b"put\n"))
            assert box.put_archive("/tmp", data.getvalue()) is True
            stream, stat = box.get_archive("/tmp/put.txt")
            assert (stat["name"], stat["size"], stat["mode"] & 0o777) == ("put.txt", 4, 0o640)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.extractfile("put.txt")
                assert member is not None and member.read() == b"put\n"
            assert box.exec_run(["touch", "/stop"]).exit_code == 0
            assert b"".join(box.logs(stream=True)) == b"l1\nl2\nl3\n"  # follows until the container ends
            assert box.wait(timeout=30) == {"StatusCode": 0, "Error": None}
        finally:
            client.close()


# ----- 8. bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, message", [
    (["--bogus"], "unknown flag: --bogus\nSee 'berth run --help'.\n"),
    (["-m", "12x"], "invalid argument \"12x\" for \"-m, --memory\" flag: invalid size: '12x'\n"
                    "See 'berth run --help'.\n"),
    (["-m", "-5"], "invalid argument \"-5\" for \"-m, --memory\" flag: invalid size: '-5'\nSee 'berth run --help'.\n"),
    (["-m", "1k"], "berth: Error response from daemon: Minimum memory limit allowed is 6MB.\n"
                   "See 'berth run --help'.\n"),
    (["-m", "20m", "--memory-swap", "10m"], "berth: Error response from daemon: Minimum memoryswap limit should "
                                            "be larger than memory limit, see usage.\nSee 'berth run --help'.\n"),
    (["--cap-add", "BOGUS"], "berth: Error response from daemon: invalid CapAdd: unknown capability: "
                             "\"CAP_BOGUS\".\nSee 'berth run --help'.\n"),
])
def test_8_bad_run_flags_create_nothing(shared_daemon, flags, message):
    """8. Bad input: unknown flags, bad `--memory` values [...] — each a clear error and no half-created
    container."""
    d = shared_daemon
    with named(d) as name:
        cname = name()
        result = d.cli("run", "--name", cname, *flags, "busybox", "true")
        assert (result.returncode, result.stdout, result.stderr) == (125, "", message)
        assert not exists(d, cname)


def test_8_name_in_use(shared_daemon):
    """8. [...] a name already in use (409, docker's message) [...] no half-created container."""
    docker = pytest.importorskip("docker")
    d = shared_daemon
    with named(d) as name:
        cname = name()
        cid = d.ok("create", "--name", cname, "busybox", "true").strip()
        before = d.ok("ps", "-aq", "--no-trunc").split()
        message = (f'Conflict. The container name "/{cname}" is already in use by container "{cid}". '
                   "You have to remove (or rename) that container to be able to reuse that name.")
        result = d.cli("run", "--name", cname, "busybox", "true")
        assert (result.returncode, result.stderr) == (125, f"berth: Error response from daemon: {message}\n"
                                                           "See 'berth run --help'.\n")
        client = docker.APIClient(base_url=d.host, version="1.41")
        try:
            with pytest.raises(docker.errors.APIError) as info:
                client.create_container("busybox", ["true"], name=cname)
        finally:
            client.close()
        assert (info.value.status_code, info.value.explanation) == (409, message)
        assert sorted(d.ok("ps", "-aq", "--no-trunc").split()) == sorted(before)


def test_8_rm_running_and_exec_into_stopped(shared_daemon):
    """8. [...] `rm` of a running container without `-f`, `exec` into a stopped container — each a clear
    error and no half-created container."""
    d = shared_daemon
    with named(d) as name:
        running, stopped = name(), name()
        running_id = d.ok("run", "-d", "--name", running, "busybox", "sleep", "300").strip()
        stopped_id = d.ok("run", "--name", stopped, "-d", "busybox", "true").strip()
        wait_for(lambda: state(d, stopped) == "exited", 10, "the container to exit")
        before = sorted(d.ok("ps", "-aq", "--no-trunc").split())
        result = d.cli("rm", running)
        assert (result.returncode, result.stdout, result.stderr) == (
            1, "", f"Error response from daemon: You cannot remove a running container {running_id}. "
                   "Stop the container before attempting removal or force remove\n")
        assert state(d, running) == "running"
        result = d.cli("exec", stopped, "true")
        assert (result.returncode, result.stdout, result.stderr) == (
            1, "", f"Error response from daemon: Container {stopped_id} is not running\n")
        assert state(d, stopped, "{{.State.Status}} {{len .ExecIDs}}") == "exited 0"
        assert sorted(d.ok("ps", "-aq", "--no-trunc").split()) == before


# ----- 9. the run-latency bench ------------------------------------------------------------------------------


@pytest.mark.slow
def test_9_run_latency_bench(shared_daemon, tmp_path):
    """9. `bench/run_latency` prints the median of >= 10 runs of `berth run --rm busybox true`, and, when
    dockerd is installed, of `docker run --rm busybox true` in the same run, with the ratio."""
    rows_file = tmp_path / "rows.json"
    env = {**os.environ, "BERTH_HOST": shared_daemon.host, "RUN_LATENCY_RUNS": "10", "BENCH_JSON": str(rows_file)}
    if os.environ.get("BERTH_TEST_DOCKERD_HOST"):
        env["DOCKER_BENCH_HOST"] = os.environ["BERTH_TEST_DOCKERD_HOST"]
    result = subprocess.run([str(VENV_BIN / "python"), "-m", "bench.run_latency"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(ROOT))
    from bench.common import docker_host, load_rows

    docker_here = "DOCKER_BENCH_HOST" in env or docker_host() is not None
    # the printed table: a header naming the engines, one line per case with berth's median in ms
    header, *lines = result.stdout.splitlines()
    assert header.split()[:4] == ["topic", "case", "unit", "berth"], result.stdout
    assert ("docker" in header.split()) == docker_here, result.stdout
    printed = {m[1]: float(m[2]) for m in (re.match(r"run_latency\s+(run --rm .*? true)\s+ms\s+(\S+)", x)
                                           for x in lines) if m}
    rows = {row.case: row for row in load_rows(rows_file)}
    assert set(printed) == set(rows) == {"run --rm busybox true", "run --rm --network none busybox true"}
    for case, row in rows.items():
        berth_ms = row.medians["berth"]
        assert berth_ms and berth_ms > 0 and row.runs >= 10 and printed[case] == round(berth_ms, 1)
        if docker_here and case.endswith("none busybox true"):  # a dockerd here may lack its default bridge
            docker_ms = row.medians.get("docker")
            assert docker_ms and docker_ms > 0, result.stdout
            ratio = re.search(r"\s(\d+\.\d\d)x\s", [x for x in lines if case in x][0])
            assert ratio and abs(float(ratio[1]) - berth_ms / docker_ms) < 0.01, result.stdout
    assert "bench-run-" not in shared_daemon.ok("images", "--format", "{{.Repository}}")  # its image is removed
