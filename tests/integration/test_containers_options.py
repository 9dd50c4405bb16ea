"""``docker run`` options the daemon must apply rather than just record: ``--pid``/``--ipc container:X``,
``--cgroup-parent``, ``--memory-swappiness``, ``--oom-kill-disable``. Expected behaviour is dockerd
20.10's (cgroupfs driver, cgroup v1 on this host; the cgroup checks skip on a v2-only host)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.runtime import cgroups
from tests.integration.containers_support import RUN, named

V1 = not cgroups.is_v2_only()


def test_join_pid_and_ipc_namespaces(shared_daemon):
    """`--pid container:X` sees X's processes (X's init is PID 1); `--ipc container:X` shares its IPC
    namespace; joining a stopped container is refused with dockerd's message."""
    d = shared_daemon
    with named(d) as name:
        box = name()
        cid = d.ok("run", "-d", "--name", box, "busybox", "sleep", "300").strip()
        assert d.ok("run", "--rm", f"--pid=container:{box}", "busybox", "cat", "/proc/1/cmdline") == "sleep\x00300\x00"
        theirs = d.ok("exec", box, "readlink", "/proc/self/ns/ipc")
        assert d.ok("run", "--rm", f"--ipc=container:{box}", "busybox", "readlink", "/proc/self/ns/ipc") == theirs
        assert d.ok("run", "--rm", "busybox", "readlink", "/proc/self/ns/ipc") != theirs
        d.ok("stop", "-t", "1", box)
        for flag, what in (("--pid", "PID"), ("--ipc", "IPC")):
            result = d.cli("run", "--rm", f"{flag}=container:{box}", "busybox", "true")
            assert (result.returncode, result.stderr) == (
                125, f"berth: Error response from daemon: cannot join {what} of a non running container: {cid}.\n")


@pytest.mark.skipif(not V1, reason="cgroup v1 files")
def test_cgroup_parent(shared_daemon):
    """`--cgroup-parent /P`: the container's cgroup is /P/<id> in every hierarchy; stats, update and pause
    follow it, and removing the container removes its cgroup (the parent stays, as with dockerd)."""
    d, parent = shared_daemon, f"acc-parent-{RUN}"
    try:
        with named(d) as name:
            box = name()
            cid = d.ok("run", "-d", "--name", box, "--cgroup-parent", f"/{parent}", "-m", "32m", "busybox",
                       "sleep", "300").strip()
            assert f"memory:/{parent}/{cid}\n" in d.ok("exec", box, "cat", "/proc/self/cgroup")
            memory = Path(cgroups.mount_points()["memory"], parent, cid)
            assert (memory / "memory.limit_in_bytes").read_text() == f"{32 << 20}\n"
            assert d.ok("stats", "--no-stream", "--format", "{{.MemUsage}}", box).endswith(" / 32MiB\n")
            d.ok("update", "-m", "48m", box)
            assert (memory / "memory.limit_in_bytes").read_text() == f"{48 << 20}\n"
            d.ok("pause", box)
            assert d.ok("inspect", "-f", "{{.State.Paused}}", box) == "true\n"
            d.ok("unpause", box)
            d.ok("rm", "-f", box)
            assert not memory.exists()
    finally:
        for hierarchy in set(cgroups.mount_points().values()):
            group = Path(hierarchy, parent)
            for directory in [*sorted(c for c in group.glob("*") if c.is_dir()), group]:
                try:
                    os.rmdir(directory)
                except FileNotFoundError:
                    pass


@pytest.mark.skipif(not V1, reason="cgroup v1 files")
def test_memory_swappiness_and_oom_kill_disable(shared_daemon):
    """`--memory-swappiness 10` and `--oom-kill-disable` reach the memory cgroup."""
    out = shared_daemon.ok("run", "--rm", "-m", "64m", "--memory-swappiness", "10", "--oom-kill-disable", "busybox",
                           "sh", "-c", "cat /sys/fs/cgroup/memory/memory.swappiness; "
                                       "grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control")
    assert out == "10\noom_kill_disable 1\n"
