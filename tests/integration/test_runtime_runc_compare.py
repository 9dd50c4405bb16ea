"""Cross-check: the same generated bundle run by berth's executor and by ``runc run`` must show
the container the same way (identity, hostname, capabilities, /dev, mounts, cgroups, limits)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

try:
    from .test_runtime_support import Box, open_box
except ImportError:
    from test_runtime_support import Box, open_box  # type: ignore[no-redef]

from berth.runtime import cgroups
from berth.runtime.devices import host_devices
from berth.runtime.linux import held_capabilities
from berth.runtime.spec import Ulimit, generate_spec

RUNC = shutil.which("runc") or "/usr/sbin/runc"


@pytest.fixture
def box(busybox_rootfs: Path) -> Iterator[Box]:
    if not Path(RUNC).exists():
        pytest.skip("runc is not installed")
    with open_box(busybox_rootfs) as b:
        yield b


def run_with_runc(box: Box, opts) -> str:
    """``runc run`` the bundle generated from ``opts``; returns its stdout."""
    cid = box.name()
    bundle = box.base / cid
    box.rootfs(bundle)
    (bundle / "config.json").write_text(json.dumps(generate_spec(replace(opts, container_id=cid))))
    root = box.base / "runc-root"
    try:
        done = subprocess.run([RUNC, "--root", str(root), "run", "--bundle", str(bundle), cid],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout
    finally:
        subprocess.run([RUNC, "--root", str(root), "delete", "--force", cid], capture_output=True)
        cgroups.remove(box.cgroup_path(cid))


SCRIPTS = {
    "id": "id",
    "hostname": "hostname",
    "capabilities": "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status",
    "dev": "ls -l /dev | awk '{print $1, $3, $4, $5, $6, $NF}'",
    "mounts": "awk '$2 == \"/\" {split($4, o, \",\"); print $2, $3, o[1]} $2 != \"/\" {print $1, $2, $3, $4}' /proc/mounts",
    "cgroup": "cat /proc/self/cgroup",
    "limits": "ulimit -n; ulimit -Hn; ulimit -c; cat /proc/self/oom_score_adj",
    "env": "env | sort",
    "processes": "ps -o pid,user,comm",
    "seccomp": "unshare -U true 2>&1; mkdir -p /tmp/m 2>&1; mount -t tmpfs x /tmp/m 2>&1; echo $?",
    "sysctl": "cat /proc/sys/net/ipv4/ip_forward",
    "cgroup-files": "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
}
OPTIONS = {
    "default": {},
    "user": {"user": "daemon", "cwd": "/tmp"},
    "hardened": {"cap_drop": ["ALL"], "cap_add": ["chown", "NET_BIND_SERVICE"], "no_new_privileges": True,
                 "readonly_rootfs": True, "ulimits": [Ulimit("nofile", 512, 1024), Ulimit("core", 0, 0)],
                 "oom_score_adj": 300},
    "privileged": {"privileged": True, "all_capabilities": held_capabilities(), "devices": host_devices(),
                   "memory": 64 * 1024 * 1024, "pids_limit": 50, "sysctls": {"net.ipv4.ip_forward": "1"}},
}


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("script", SCRIPTS.values(), ids=SCRIPTS.keys())
def test_same_view_as_runc(box: Box, script: str, options: dict) -> None:
    options = dict(options)
    opts = box.options(["sh", "-c", script], hostname="cmp", user=options.pop("user", ""), **options)
    ours = box.run(opts)  # stdout and stderr share a pipe: scripts send stderr to stdout
    theirs = run_with_runc(box, opts)
    assert ours.code == 0
    assert ours.output == theirs
