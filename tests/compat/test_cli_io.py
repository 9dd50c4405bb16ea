"""exec, attach, cp, diff, commit, top, stats, export and update: berth side by side with the docker CLI
against a real dockerd (skipped without one). Containers and images are named after the test run and
removed afterwards; TTY sessions run under real pseudo-terminals.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
import uuid

import pytest

from tests.ptyproc import PtyProcess

BERTH = [sys.executable, "-m", "berth.cli.main"]


def berth(dockerd, *args: str, input: str | bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "BERTH_HOST": dockerd.host}
    return subprocess.run([*BERTH, *args], input=input, capture_output=True, text=not isinstance(input, bytes),
                          env=env, timeout=timeout)


def assert_same(dockerd, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
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
    objects: dict[str, list[str]] = {"container": [], "image": []}
    yield objects
    for name in objects["container"]:
        dockerd.docker("rm", "-f", name)
    for name in objects["image"]:
        dockerd.docker("rmi", "-f", name)


def start(dockerd, made, name: str, *args: str) -> str:
    """``docker run -d`` without a network (none is needed, and the shared dockerd's default bridge
    may be gone)."""
    made["container"].append(name)
    result = dockerd.docker("run", "-d", "--network", "none", "--name", name, *args)
    assert result.returncode == 0, result.stderr
    return name


SETUP = "mkdir /tmp/d && echo hi > /tmp/d/f && ln -s /tmp/d/f /tmp/lnk && ln -s d /tmp/dlnk && rm /bin/ls"


@pytest.fixture
def box(dockerd, made, uid):
    """A running busybox with a few files (/tmp/d/f, links /tmp/lnk and /tmp/dlnk) and /bin/ls deleted."""
    name = start(dockerd, made, f"{uid}-box", "busybox", "sh", "-c", f"{SETUP}; sleep 600")
    for _ in range(50):
        if dockerd.docker("exec", name, "test", "-e", "/tmp/dlnk").returncode == 0:
            break
        time.sleep(0.1)
    return name


@pytest.mark.parametrize(("options", "command"), [
    ([], ["sh", "-c", "echo out; echo err >&2; exit 3"]),
    ([], ["nosuch-executable"]),
    ([], ["/tmp"]),
    (["-u", "nobody", "-w", "/tmp", "-e", "A=1", "-e", "HOME"], ["sh", "-c", "id; pwd; echo $A $HOME"]),
    (["-d"], ["sleep", "1"]),
    (["-u", "nosuchuser"], ["true"]),
    (["-w", "/nope"], ["true"]),
    (["-t"], ["echo", "tty output"]),
])
def test_exec_without_a_terminal(dockerd, box, options, command):
    assert_same(dockerd, "exec", *options, box, *command)


def test_exec_errors(dockerd, made, uid, box):
    stopped = f"{uid}-stopped"
    made["container"].append(stopped)
    assert dockerd.docker("create", "--name", stopped, "busybox", "true").returncode == 0
    assert_same(dockerd, "exec", stopped, "true")
    assert_same(dockerd, "exec", f"{uid}-nope", "true")
    assert_same(dockerd, "exec", "-it", box, "true")  # stdin is not a terminal here


def test_exec_stdin(dockerd, box):
    result = assert_same(dockerd, "exec", "-i", box, "sh", "-c", "cat; echo done", input="line 1\nline 2\n")
    assert result.stdout == "line 1\nline 2\ndone\n"


def test_exec_tty_through_a_pty(dockerd, box):
    script = "tty; sleep 1; stty size; echo out; exit 5"  # the size is set just after the start
    outputs = []
    for argv in ([*BERTH, "exec", "-it", box, "sh", "-c", script],
                 ["docker", "exec", "-it", box, "sh", "-c", script]):
        session = PtyProcess(argv, {**os.environ, "BERTH_HOST": dockerd.host, "DOCKER_HOST": dockerd.host},
                             rows=33, cols=101)
        outputs.append(session.finish())
    ours, theirs = outputs
    assert ours[0] == theirs[0] == 5
    assert ours[1].replace(b"\r\n", b"\n").splitlines()[-2:] == [b"33 101", b"out"]
    assert ours[1].splitlines()[0].startswith(b"/dev/pts/")


def test_exec_interactive_tty_detach(dockerd, box):
    env = {**os.environ, "BERTH_HOST": dockerd.host}
    session = PtyProcess([*BERTH, "exec", "-it", box, "sh"], env, rows=24, cols=80)
    session.read_until(b"# ")
    session.type(b"echo typed-$((6*7))\r")
    assert b"typed-42" in session.read_until(b"typed-42")
    session.type(b"exit 4\r")
    assert session.finish()[0] == 4


def test_attach_output_and_exit_code(dockerd, made, uid):
    name = start(dockerd, made, f"{uid}-att", "busybox", "sh", "-c",
                 "sleep 1; for i in 1 2 3; do echo tick $i; echo err $i >&2; done; exit 7")
    result = berth(dockerd, "attach", name)
    assert (result.returncode, result.stdout, result.stderr) == (7, "tick 1\ntick 2\ntick 3\n", "err 1\nerr 2\nerr 3\n")
    assert_same(dockerd, "attach", name)  # stopped now
    assert_same(dockerd, "attach", f"{uid}-nope")


def test_attach_tty_and_detach_keys(dockerd, made, uid):
    name = start(dockerd, made, f"{uid}-tty", "-it", "busybox", "sh")
    env = {**os.environ, "BERTH_HOST": dockerd.host}
    session = PtyProcess([*BERTH, "attach", name], env, rows=24, cols=80)
    time.sleep(1.5)  # attach prints nothing once it is attached
    session.type(b"echo attached-$((2+3))\r")
    assert b"attached-5" in session.read_until(b"attached-5")
    session.type(b"\x10\x11")
    status, _ = session.finish()
    assert status == 0
    state = dockerd.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
    assert state == "true"


def _tree(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in sorted(dirnames + filenames):
            path = os.path.join(dirpath, entry)
            kind = "l" if os.path.islink(path) else "d" if os.path.isdir(path) else "f"
            detail = os.readlink(path) if kind == "l" else open(path).read() if kind == "f" else ""
            out.append(f"{os.path.relpath(path, root)} {kind} {oct(os.lstat(path).st_mode & 0o777)} {detail}")
    return sorted(out)


FROM_CASES = [
    "{c}:/nope x", "{c}:/tmp/d/f .", "{c}:/tmp/d/f newf", "{c}:/tmp/d/f nodir/", "{c}:/tmp/d/f nodir/x",
    "{c}:/tmp/d .", "{c}:/tmp/d/. d2", "{c}:/tmp/d d3", "{c}:/tmp/d newf", "{c}:/tmp/d/f/ x", "{c}:/tmp/lnk lnk1",
    "-L {c}:/tmp/lnk lnk2", "{c}:/tmp/dlnk dl1", "-L {c}:/tmp/dlnk dl2", "{c}:/tmp/dlnk/. dl4",
    "-L {c}:/tmp/dlnk d", "{uid}-nope:/x .", "a b",
]


def test_cp_from_container(dockerd, box, uid, tmp_path):
    results = {}
    for tool in ("docker", "berth"):
        workdir = tmp_path / tool
        workdir.mkdir()
        log = []
        for case in FROM_CASES:
            args = case.format(c=box, uid=uid).split()
            env = {**os.environ, "BERTH_HOST": dockerd.host, "DOCKER_HOST": dockerd.host}
            argv = ["docker", "cp", *args] if tool == "docker" else [*BERTH, "cp", *args]
            done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, env=env, timeout=60)
            log.append((case, done.returncode, done.stdout, done.stderr.replace(str(workdir), "W")
                        .replace("docker", "berth")))
        results[tool] = (log, _tree(str(workdir)))
    assert results["berth"][0] == results["docker"][0]
    assert results["berth"][1] == results["docker"][1]


TO_CASES = [
    "file {c}:/tmp/", "file {c}:/tmp/newname", "file {c}:/tmp/d", "file {c}:/tmp/d/f", "file {c}:/nodir/",
    "file {c}:/nodir/x", "src {c}:/tmp/d/f", "src {c}:/tmp/srcnew", "src {c}:/tmp/d", "src/. {c}:/tmp/dlnk",
    "nofile {c}:/tmp", "src/a/ {c}:/tmp", "srclink {c}:/tmp/sl1", "-L srclink {c}:/tmp/sl2",
    "srclink/ {c}:/tmp/sl3", "file {c}:/tmp/fileb/", "file {c}:tmp/rel", "-a file {c}:/tmp/dlnk",
]


def test_cp_to_container(dockerd, made, uid, tmp_path):
    src = tmp_path / "local"
    (src / "src" / "sub").mkdir(parents=True)
    (src / "src" / "a").write_text("a\n")
    (src / "src" / "sub" / "b").write_text("b\n")
    os.symlink("a", src / "src" / "la")
    os.link(src / "src" / "a", src / "src" / "hard")
    (src / "file").write_text("x\n")
    os.symlink("src", src / "srclink")
    trees, logs = {}, {}
    for tool in ("docker", "berth"):
        name = start(dockerd, made, f"{uid}-to-{tool}", "busybox", "sh", "-c",
                     "mkdir /tmp/d; echo hi > /tmp/d/f; ln -s /tmp/d /tmp/dlnk; sleep 600")
        time.sleep(0.5)
        env = {**os.environ, "BERTH_HOST": dockerd.host, "DOCKER_HOST": dockerd.host}
        log = []
        for case in TO_CASES:
            args = case.format(c=name).split()
            argv = ["docker", "cp", *args] if tool == "docker" else [*BERTH, "cp", *args]
            done = subprocess.run(argv, cwd=src, capture_output=True, text=True, env=env, timeout=60)
            log.append((case, done.returncode, _messages(done.stderr, name)))
        tar = subprocess.run(["tar", "cf", "-", "-C", str(src / "src"), "."], capture_output=True, check=True).stdout
        for target in ("/tmp/d", "/tmp/tarred"):
            argv = ["docker", "cp", "-", f"{name}:{target}"] if tool == "docker" else [*BERTH, "cp", "-", f"{name}:{target}"]
            done = subprocess.run(argv, input=tar, capture_output=True, env=env, timeout=60)
            log.append((target, done.returncode, _messages(done.stderr.decode(), name)))
        logs[tool] = log
        trees[tool] = dockerd.docker("exec", name, "sh", "-c",
                                     "find /tmp /tmp/rel -exec stat -c '%n %F %a %s %N %u' {} + | sort").stdout
    assert logs["berth"] == logs["docker"]
    assert trees["berth"] == trees["docker"]


def _messages(stderr: str, container: str) -> str:
    """stderr with the container's name replaced and without the docker CLI's logrus noise
    (``time="..." level=error msg=...``)."""
    return "".join(line for line in stderr.replace(container, "C").replace("docker", "berth").splitlines(True)
                   if not line.startswith("time="))


def test_cp_tar_to_stdout(dockerd, box, tmp_path):
    result = subprocess.run([*BERTH, "cp", f"{box}:/tmp/d", "-"], capture_output=True, timeout=60,
                            env={**os.environ, "BERTH_HOST": dockerd.host})
    assert result.returncode == 0
    (tmp_path / "d.tar").write_bytes(result.stdout)
    with tarfile.open(tmp_path / "d.tar") as tar:
        assert tar.getnames() == ["d", "d/f"]


def test_diff(dockerd, box):
    ours, theirs = berth(dockerd, "diff", box), dockerd.docker("diff", box)
    assert ours.returncode == theirs.returncode == 0 and ours.stderr == ""
    # dockerd lists the changes in no fixed order
    assert sorted(ours.stdout.splitlines()) == sorted(theirs.stdout.splitlines()) == [
        "A /tmp/d", "A /tmp/d/f", "A /tmp/dlnk", "A /tmp/lnk", "C /bin", "C /tmp", "D /bin/ls"]
    assert_same(dockerd, "diff", "gt-no-such-container")


def test_commit_then_run(dockerd, made, uid, box):
    tag = f"{uid}-img:v1"
    made["image"].append(tag)
    result = berth(dockerd, "commit", "-m", "from berth", "-a", "tester", "-c", 'CMD ["cat", "/tmp/d/f"]',
                   "-c", "ENV COMMITTED=yes", box, tag)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", result.stdout)
    image = json.loads(dockerd.docker("image", "inspect", tag).stdout)[0]
    assert image["Id"] == result.stdout.strip()
    assert (image["Comment"], image["Author"], image["Config"]["Cmd"]) == ("from berth", "tester",
                                                                           ["cat", "/tmp/d/f"])
    assert "COMMITTED=yes" in image["Config"]["Env"]
    ran = dockerd.docker("run", "--rm", "--network", "none", tag)
    assert (ran.returncode, ran.stdout) == (0, "hi\n")
    untagged = berth(dockerd, "commit", box)
    assert untagged.returncode == 0 and untagged.stdout.startswith("sha256:")
    made["image"].append(untagged.stdout.strip())
    bad = berth(dockerd, "commit", box, "Bad-Name")
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr.startswith("invalid reference format: repository name")
    assert_same(dockerd, "commit", "gt-no-such-container")


def test_top(dockerd, box):
    assert_same(dockerd, "top", box, "-o", "pid,comm,args")
    ours = berth(dockerd, "top", box).stdout.splitlines()
    assert ours[0] == dockerd.docker("top", box).stdout.splitlines()[0]
    assert ours[0] == "".join(title.ljust(20) for title in ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME")) + "CMD"
    ours = berth(dockerd, "top", box, "aux").stdout.splitlines()
    theirs = dockerd.docker("top", box, "aux").stdout.splitlines()
    assert ours[0] == theirs[0]
    assert ours[0].split() == ["USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME",
                               "COMMAND"]
    assert_same(dockerd, "top", "gt-no-such-container")


def test_stats_no_stream(dockerd, box):
    ours = berth(dockerd, "stats", "--no-stream", box)
    theirs = dockerd.docker("stats", "--no-stream", box)
    assert ours.returncode == theirs.returncode == 0
    header, row = ours.stdout.splitlines()
    assert header.split() == theirs.stdout.splitlines()[0].split()
    assert re.fullmatch(r"CONTAINER ID   NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS", header)
    fields = re.split(r"\s{2,}", row)
    assert fields[:2] == [box_id(dockerd, box)[:12], box]
    assert re.fullmatch(r"\d+\.\d\d%", fields[2]) and re.fullmatch(r"[\d.]+\w+ / [\d.]+\w+", fields[3])
    assert fields[-1] == "1"  # sh has exec'd its last command, sleep
    fmt = "{{.Container}} {{.Name}} {{.PIDs}} {{.MemPerc}}"
    assert berth(dockerd, "stats", "--no-stream", "--format", fmt, box).stdout.split()[:3] == [box, box, "1"]
    keys = json.loads(berth(dockerd, "stats", "--no-stream", "--format", "json", box).stdout)
    assert sorted(keys) == ["BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"]
    assert_same(dockerd, "stats", "--no-stream", box, "gt-no-such-container")


def box_id(dockerd, name: str) -> str:
    return dockerd.docker("inspect", "-f", "{{.Id}}", name).stdout.strip()


def test_export(dockerd, box, tmp_path):
    out = tmp_path / "box.tar"
    result = berth(dockerd, "export", "-o", str(out), box)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert out.stat().st_mode & 0o777 == 0o600
    theirs = subprocess.run(["docker", "export", box], capture_output=True, env=dockerd.env, timeout=60).stdout
    (tmp_path / "theirs.tar").write_bytes(theirs)
    with tarfile.open(out) as ours_tar, tarfile.open(tmp_path / "theirs.tar") as theirs_tar:
        assert ours_tar.getnames() == theirs_tar.getnames()
        assert "tmp/d/f" in ours_tar.getnames()
    assert_same(dockerd, "export", "gt-no-such-container")


def test_update(dockerd, box, uid):
    result = assert_same(dockerd, "update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5",
                         "--cpu-shares", "512", "--pids-limit", "100", "--restart", "on-failure:3", box,
                         f"{uid}-nope")
    assert result.stdout == f"{box}\n"
    config = json.loads(dockerd.docker("inspect", "-f", "{{json .HostConfig}}", box).stdout)
    assert (config["Memory"], config["MemorySwap"], config["NanoCpus"], config["CpuShares"], config["PidsLimit"],
            config["RestartPolicy"]) == (67108864, 134217728, 500000000, 512, 100,
                                         {"Name": "on-failure", "MaximumRetryCount": 3})
    assert_same(dockerd, "update", box)
    bad = berth(dockerd, "update", "--cpus", "x", box)
    assert bad.returncode == 125
    assert bad.stderr.splitlines()[0] == 'invalid argument "x" for "--cpus" flag: failed to parse x as a rational number'
