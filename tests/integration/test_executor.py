"""The Python executor against real namespaces, overlayfs, cgroups and seccomp, with busybox.

Each test gets a :class:`Box` (overlay rootfs per container, its own executor state root,
unique IDs) whose cleanup kills and reaps processes, deletes cgroups and unmounts overlays.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from .test_runtime_support import Box, Result, mounted_under, open_box, read_until_eof, wait_exit
except ImportError:
    from test_runtime_support import Box, Result, mounted_under, open_box, read_until_eof, wait_exit  # type: ignore[no-redef]

from berth.runtime import cgroups
from berth.runtime.caps import to_mask
from berth.runtime.devices import host_devices
from berth.runtime.linux import held_capabilities
from berth.runtime.process import RuntimeFailure, Stdio
from berth.runtime.spec import Mount, Ulimit


@pytest.fixture
def box(busybox_rootfs: Path) -> Iterator[Box]:
    with open_box(busybox_rootfs) as b:
        yield b
    assert not mounted_under(str(b.base)), "mounts left behind"
    for cid in b.ids:
        assert not any(d.exists() for d in cgroups.directories(b.cgroup_path(cid)).values()), cid


def sh(box: Box, script: str, **kw) -> tuple[int, str]:
    result = box.run(box.options(["sh", "-c", script], **kw))
    return result.code, result.output


def test_echo_hi(box: Box) -> None:
    result = box.run(box.options(["echo", "hi"]))
    assert (result.code, result.output) == (0, "hi\n")


def test_exit_code(box: Box) -> None:
    assert sh(box, "exit 3") == (3, "")


@pytest.mark.parametrize("args, message, code", [
    (["nosuchcmd"], 'exec: "nosuchcmd": executable file not found in $PATH', 127),
    (["/etc/passwd"], 'exec: "/etc/passwd": permission denied', 126),
    (["/nope"], 'exec: "/nope": stat /nope: no such file or directory', 127),
    (["/bin"], 'exec: "/bin": permission denied', 126),
])
def test_start_failures(box: Box, args: list[str], message: str, code: int) -> None:
    cid, pid, fd = box.create(box.options(args))
    try:
        with pytest.raises(RuntimeFailure) as info:
            box.executor.start(cid)
        assert info.value.message == message
        assert wait_exit(pid) == code
    finally:
        os.close(fd)
        box.executor.delete(cid)


@pytest.mark.parametrize("kw, message", [
    ({"mounts": [Mount("/data", "/nonexistent-source")]},
     'error mounting "/nonexistent-source" to rootfs at "/data": no such file or directory'),
    ({"ulimits": [Ulimit("nofile", 10, 10**9)]}, "error setting rlimit type 7: operation not permitted"),
    ({"cwd": "/etc/passwd/x"}, "creating the working directory: /etc/passwd/x: not a directory"),
    ({"sysctls": {"kernel.nope": "1"}},
     "setting sysctl kernel.nope: /proc/sys/kernel/nope: no such file or directory"),
    ({"network": "/proc/0/ns/net"}, "joining namespaces: /proc/0/ns/net: no such file or directory"),
])
def test_setup_failures_are_raised_by_create(box: Box, kw: dict, message: str) -> None:
    cid, bundle = box.bundle(box.options(["true"], **kw))
    with pytest.raises(RuntimeFailure) as info:
        box.executor.create(cid, bundle, Stdio(None, 1, 2), False)
    assert info.value.message == message
    assert not any(d.exists() for d in cgroups.directories(box.cgroup_path(cid)).values())
    assert not (box.executor.state_root / cid).exists()


def test_ps_shows_only_the_container(box: Box) -> None:
    result = box.run(box.options(["ps", "-o", "pid,comm"]))
    rows = [line.split() for line in result.output.splitlines()[1:]]
    assert rows == [["1", "ps"]]


# (script, output): the default profile isolates, yet allows what docker allows.
ISOLATION = [
    ("hostname", "box\n"),
    (f"test -e {Path(__file__).parent} || echo hidden", "hidden\n"),
    ("cat /proc/keys; ls /proc/acpi | wc -l", "0\n"),
    ("test ! -e /proc/kcore || test ! -s /proc/kcore && echo masked", "masked\n"),
    ("mkdir /mnt; mount -t tmpfs none /mnt 2>/dev/null || echo denied", "denied\n"),
    ("ip link add v0 type veth peer name v1 2>/dev/null || echo denied", "denied\n"),
    ("echo x 2>/dev/null > /proc/sys/kernel/hostname || echo denied", "denied\n"),
    ("touch /tmp/f && chown 1:1 /tmp/f && stat -c %u:%g /tmp/f", "1:1\n"),
    ("mknod /tmp/n c 1 3 && echo ok > /tmp/n && stat -c %t:%T /tmp/n", "1:3\n"),
    ("timeout 1 nc -l -p 80 2>/dev/null; echo $?", "143\n"),
    ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes >/dev/null && echo readable; "
     "touch /sys/fs/cgroup/memory/x 2>/dev/null || echo read-only", "readable\nread-only\n"),
    ("unshare -U true 2>/dev/null || echo denied", "denied\n"),
    ("grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status",
     "CapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n"),
]


@pytest.mark.parametrize("script, output", ISOLATION)
def test_default_profile_isolation(box: Box, script: str, output: str) -> None:
    assert sh(box, script) == (0, output)


@pytest.mark.parametrize("script, output", [
    ("mkdir /mnt; mount -t tmpfs none /mnt && echo mounted", "mounted\n"),
    ("ip link add v0 type veth peer name v1 && echo added", "added\n"),
    ("grep CapEff /proc/self/status", f"CapEff:\t{to_mask(held_capabilities()):016x}\n"),
    ("test -e /dev/kmsg && echo devices", "devices\n"),
])
def test_privileged(box: Box, script: str, output: str) -> None:
    code, got = sh(box, script, privileged=True, devices=host_devices(), all_capabilities=held_capabilities())
    assert (code, got) == (0, output)


def test_seccomp_unconfined_allows_unshare(box: Box) -> None:
    assert sh(box, "unshare -U true && echo ok", seccomp_profile="unconfined") == (0, "ok\n")


def test_non_root_cannot_bind_port_80(box: Box) -> None:
    code, output = sh(box, "nc -l -p 80 2>&1", user="daemon")
    assert code == 1 and "Permission denied" in output


@pytest.mark.parametrize("user, expected", [
    # what `docker run -u USER busybox id` prints: the primary gid is among the groups
    ("", "uid=0(root) gid=0(root) groups=0(root),10(wheel)"),
    ("daemon", "uid=1(daemon) gid=1(daemon) groups=1(daemon)"),
    ("1000", "uid=1000 gid=0(root) groups=0(root)"),
    ("1000:50", "uid=1000 gid=50(staff) groups=50(staff)"),
    ("nobody:users", "uid=65534(nobody) gid=100(users) groups=100(users)"),
])
def test_user(box: Box, user: str, expected: str) -> None:
    result = box.run(box.options(["id"], user=user))
    assert (result.code, result.output) == (0, expected + "\n")


def test_supplementary_groups(box: Box) -> None:
    opts = box.options(["id", "-G"], user="daemon")
    opts.additional_gids = [4, 50]
    assert box.run(opts).output == "1 4 50\n"


def test_workdir_created_for_user(box: Box) -> None:
    code, output = sh(box, "pwd; stat -c %u:%g . ..", user="1000:50", cwd="/work/dir")
    assert (code, output) == (0, "/work/dir\n1000:50\n1000:50\n")


def test_env_defaults(box: Box) -> None:
    result = box.run(box.options(["env"], env=["FOO=bar"], hostname="envhost"))
    assert sorted(result.output.splitlines()) == [
        "FOO=bar", "HOME=/root", "HOSTNAME=envhost",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def test_rlimits(box: Box) -> None:
    assert sh(box, "ulimit -n; ulimit -Hn; ulimit -c",
              ulimits=[Ulimit("nofile", 1024, 2048), Ulimit("core", 0, 0)]) == (0, "1024\n2048\n0\n")


@pytest.mark.parametrize("no_new_privileges, value", [(True, "1"), (False, "0")])
def test_no_new_privs(box: Box, no_new_privileges: bool, value: str) -> None:
    code, output = sh(box, "grep -E 'NoNewPrivs|^Seccomp:' /proc/self/status",
                      no_new_privileges=no_new_privileges)
    assert output == f"NoNewPrivs:\t{value}\nSeccomp:\t2\n"


def test_readonly_rootfs_and_tmpfs_mount(box: Box) -> None:
    opts = box.options(["sh", "-c", "touch /x 2>/dev/null || echo ro; touch /scratch/y && echo rw; "
                                    "grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4"],
                       readonly_rootfs=True,
                       mounts=[Mount("/scratch", "tmpfs", "tmpfs", ("rw", "nosuid", "nodev", "size=1m"))])
    assert box.run(opts).output == "ro\nrw\ntmpfs rw,nosuid,nodev,relatime,size=1024k\n"


def test_bind_mounts(box: Box, tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("10.0.0.1 box\n")
    (tmp_path / "vol").mkdir()
    opts = box.options(["sh", "-c", "cat /etc/hosts; echo data > /vol/f; 2>/dev/null echo x > /etc/hosts || echo ro"],
                       mounts=[Mount("/etc/hosts", str(tmp_path / "hosts"), options=("rbind", "rprivate", "ro")),
                               Mount("/vol", str(tmp_path / "vol"))])
    assert box.run(opts).output == "10.0.0.1 box\nro\n"
    assert (tmp_path / "vol" / "f").read_text() == "data\n"


def test_terminal(box: Box) -> None:
    cid, pid, master = box.create(box.options(["sh"], tty=True), tty=True)
    try:
        box.executor.start(cid)
        os.write(master, b"tty; echo $TERM; test -c /dev/console && echo console; exit 4\n")
        output = read_until_eof(master, 10).decode()
        assert "/dev/pts/0\r\n" in output and "xterm\r\n" in output and "console\r\n" in output
        assert wait_exit(pid) == 4
    finally:
        os.close(master)
        box.executor.delete(cid)


def test_exec(box: Box) -> None:
    cid, pid, fd = box.create(box.options(["sleep", "30"], hostname="execbox"))
    try:
        box.executor.start(cid)
        r, w = os.pipe()
        process = {"args": ["sh", "-c", "hostname; ps -o pid,comm | tail -n +2; id; cat /proc/self/cgroup | grep memory"],
                   "env": ["PATH=/bin:/usr/bin"], "cwd": "/tmp", "user": {"uid": 1, "gid": 1}}
        created = box.executor.exec(cid, pid, process, Stdio(None, w, w), False)
        os.close(w)
        output = read_until_eof(r, 10).decode()
        os.close(r)
        assert wait_exit(created.pid) == 0
        lines = output.splitlines()
        assert lines[0] == "execbox"
        assert lines[1].split() == ["1", "sleep"]
        assert "uid=1(daemon) gid=1(daemon)" in output
        assert lines[-1] == "4:memory:/"
        with pytest.raises(RuntimeFailure, match='exec: "nope": executable file not found'):
            box.executor.exec(cid, pid, {**process, "args": ["nope"]}, Stdio(None, 1, 2), False)
    finally:
        os.kill(pid, 9)
        wait_exit(pid)
        os.close(fd)
        box.executor.delete(cid)


def test_exec_with_terminal(box: Box) -> None:
    cid, pid, fd = box.create(box.options(["sleep", "30"]))
    try:
        box.executor.start(cid)
        process = {"args": ["sh", "-c", "tty; stty size; exit 5"], "env": ["PATH=/bin"], "cwd": "/",
                   "user": {"uid": 0, "gid": 0}, "terminal": True, "consoleSize": {"height": 40, "width": 132}}
        created = box.executor.exec(cid, pid, process, Stdio(None, 1, 2), True)
        assert created.pty_master is not None
        assert read_until_eof(created.pty_master, 10) == b"/dev/pts/0\r\n40 132\r\n"
        os.close(created.pty_master)
        assert wait_exit(created.pid) == 5
    finally:
        os.kill(pid, 9)
        wait_exit(pid)
        os.close(fd)
        box.executor.delete(cid)


def test_network_namespace_join(box: Box) -> None:
    """``--network container:ID``: join another container's network namespace by path."""
    cid, pid, fd = box.create(box.options(["sleep", "30"]))
    try:
        box.executor.start(cid)
        script = "readlink /proc/self/ns/net"
        own = box.run(box.options(["sh", "-c", script], network=f"/proc/{pid}/ns/net")).output.strip()
        assert own == os.readlink(f"/proc/{pid}/ns/net")
        host = box.run(box.options(["sh", "-c", script], network="host")).output.strip()
        assert host == os.readlink("/proc/self/ns/net")
    finally:
        os.kill(pid, 9)
        wait_exit(pid)
        os.close(fd)
        box.executor.delete(cid)


def test_delete_created_container_kills_init(box: Box) -> None:
    cid, pid, fd = box.create(box.options(["true"]))
    os.close(fd)
    box.executor.delete(cid)
    box.executor.delete(cid)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_duplicate_id_refused(box: Box) -> None:
    cid, pid, fd = box.create(box.options(["true"]))
    try:
        _, bundle = box.bundle(box.options(["true"]), cid=box.name())
        with pytest.raises(RuntimeFailure, match="container with id exists"):
            box.executor.create(cid, bundle, Stdio(None, 1, 2), False)
    finally:
        os.close(fd)
        box.executor.delete(cid)


def test_hostname_does_not_leak(box: Box) -> None:
    before = socket.gethostname()
    sh(box, "hostname", hostname="leakcheck")
    assert socket.gethostname() == before


def test_create_is_fast(box: Box) -> None:
    started = time.monotonic()
    result = box.run(box.options(["true"]))
    assert result.code == 0
    assert time.monotonic() - started < 2.0


def test_minimal_hand_written_config(box: Box) -> None:
    """A bundle not made by our generator: no options, deny-all device rules, no cgroup mount,
    no seccomp; stdin defaults to /dev/null even though the rules deny it to the container."""
    config = {
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "cat; echo done; cat /dev/null"],
                    "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "hostname": "minimal",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "uts")],
                  "cgroupsPath": f"/berth/{box.tag}-minimal",
                  "resources": {"devices": [{"allow": False, "access": "rwm"}]}},
    }
    box.ids.append(f"{box.tag}-minimal")
    assert box.run(config) == Result(0, "done\n")
