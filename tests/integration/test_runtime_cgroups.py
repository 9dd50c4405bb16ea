"""Container cgroups through the executor: OOM kills, pids limit, cpu values, device rules,
stats, freeze/thaw; and the v2 code path on this host's unified hierarchy."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from .test_runtime_support import Box, open_box, read_until_eof, wait_exit
except ImportError:
    from test_runtime_support import Box, open_box, read_until_eof, wait_exit  # type: ignore[no-redef]

from berth.runtime import cgroups

MiB = 1024 * 1024


@pytest.fixture
def box(busybox_rootfs: Path) -> Iterator[Box]:
    with open_box(busybox_rootfs) as b:
        yield b
    for cid in b.ids:
        assert not any(d.exists() for d in cgroups.directories(b.cgroup_path(cid)).values()), cid


def v1_file(box: Box, cid: str, controller: str, name: str) -> str:
    return (cgroups.directories(box.cgroup_path(cid))[controller] / name).read_text().strip()


@pytest.mark.skipif(cgroups.is_v2_only(), reason="v1 host files")
def test_memory_limit_and_oom_kill(box: Box) -> None:
    cid, pid, fd = box.create(box.options(["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"],
                                          memory=32 * MiB))
    try:
        assert v1_file(box, cid, "memory", "memory.limit_in_bytes") == str(32 * MiB)
        memsw = cgroups.directories(box.cgroup_path(cid))["memory"] / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            assert memsw.read_text().strip() == str(64 * MiB)
        box.executor.start(cid)
        read_until_eof(fd, 30)
        assert wait_exit(pid) == -signal.SIGKILL
        assert cgroups.oom_kills(box.cgroup_path(cid)) >= 1
    finally:
        os.close(fd)
        box.executor.delete(cid)


def test_pids_limit_stops_fork_bomb_and_container_can_be_killed(box: Box) -> None:
    # ash gives up at the first failed fork: bomb in a child shell, then report and wait.
    script = "sh -c 'for i in $(seq 100); do sleep 5 & done' 2>/dev/null; echo spawned; exec sleep 30"
    cid, pid, fd = box.create(box.options(["sh", "-c", script], pids_limit=20))
    try:
        box.executor.start(cid)
        assert read_until_eof_line(fd) == "spawned"
        path = box.cgroup_path(cid)
        assert 1 < len(cgroups.pids(path)) <= 20
        assert cgroups.stats(path).pids_current <= 20
        os.kill(pid, signal.SIGKILL)
        assert wait_exit(pid) == -signal.SIGKILL
        deadline = time.monotonic() + 5
        while cgroups.pids(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cgroups.pids(path) == []
    finally:
        os.close(fd)
        box.executor.delete(cid)


def read_until_eof_line(fd: int, timeout: float = 10.0) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data and time.monotonic() < deadline:
        data += os.read(fd, 1)
    return data.decode().strip()


def test_cpu_values_written(box: Box) -> None:
    opts = box.options(["sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                                    "/sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpuset/cpuset.cpus"],
                       cpu_shares=512, cpu_quota=50000, cpu_period=100000, cpuset_cpus="0")
    result = box.run(opts)
    assert result.output.split() == ["512", "50000", "100000", "0"]


@pytest.mark.parametrize("script, output", [
    ("mknod /tmp/disk b 254 0 && head -c1 /tmp/disk 2>&1 >/dev/null | grep -o 'Operation not permitted'",
     "Operation not permitted\n"),
    ("head -c1 /dev/zero | wc -c", "1\n"),
])
def test_device_rules(box: Box, script: str, output: str) -> None:
    assert box.run(box.options(["sh", "-c", script])).output == output


def test_stats_pids_freeze_thaw(box: Box) -> None:
    cid, pid, fd = box.create(box.options(["sleep", "30"]))
    path = box.cgroup_path(cid)
    try:
        box.executor.start(cid)
        assert cgroups.pids(path) == [pid]
        stats = cgroups.stats(path)
        assert stats.memory_usage > 0 and stats.pids_current == 1 and stats.cpu_usage_ns > 0
        cgroups.freeze(path)
        assert cgroups.is_frozen(path)
        cgroups.thaw(path)
        assert not cgroups.is_frozen(path)
        assert cgroups.oom_kills(path) == 0
    finally:
        os.kill(pid, signal.SIGKILL)
        wait_exit(pid)
        os.close(fd)
        box.executor.delete(cid)


@pytest.fixture
def unified_only(monkeypatch: pytest.MonkeyPatch) -> str:
    """Exercise the v2 code path on the hybrid host's unified hierarchy (no controllers there,
    but cgroup.procs, cgroup.freeze and cgroup.events are core files)."""
    if "" not in cgroups.mount_points():
        pytest.skip("no cgroup2 hierarchy mounted")
    monkeypatch.setattr(cgroups, "is_v2_only", lambda: True)
    return f"/berth/v2test-{os.getpid()}-{time.monotonic_ns()}"


def test_v2_freeze_pids_remove(unified_only: str) -> None:
    path = unified_only
    dirs = cgroups.create(path, {})
    assert list(dirs) == [""]
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        cgroups.add_process(path, sleeper.pid)
        assert cgroups.pids(path) == [sleeper.pid]
        cgroups.freeze(path)
        assert cgroups.is_frozen(path)
        cgroups.thaw(path)
        assert not cgroups.is_frozen(path)
    finally:
        sleeper.kill()
        sleeper.wait()
        cgroups.remove(path)
    assert not dirs[""].exists()
