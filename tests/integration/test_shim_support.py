"""Helpers for the shim and runc-backend tests (no tests here): bundles with a hand-made OCI
``config.json`` over a copy of the busybox rootfs, unique names, and a cleanup that removes
everything a test made (shims, runc containers, cgroups, directories) even when it fails."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.runtime.shimproto import PID_FILE, ShimConfig

RUNC = shutil.which("runc") or "/usr/sbin/runc"
CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
                "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
                "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"]


def oci_config(args: list[str], *, terminal: bool, cgroups_path: str, hostname: str,
               memory_limit: int | None = None) -> dict[str, Any]:
    """A small OCI runtime-spec config (runtime-spec "config.md", "config-linux.md")."""
    nodev = ["nosuid", "noexec", "nodev"]
    linux: dict[str, Any] = {
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "cgroupsPath": cgroups_path,
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    }
    if memory_limit is not None:
        linux["resources"]["memory"] = {"limit": memory_limit, "swap": memory_limit}
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: DEFAULT_CAPS for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": [*nodev, "mode=1777"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [*nodev, "ro"]},
        ],
        "linux": linux,
    }


class Sandbox:
    """One test's containers: a short base directory (socket paths < 108 bytes), runc's state
    root, bundles and shim state dirs, all named with a per-run unique tag."""

    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs
        self.tag = f"bt{os.getpid() % 100000}{uuid.uuid4().hex[:6]}"
        self.base = Path(tempfile.mkdtemp(prefix=f"{self.tag}-", dir="/tmp"))
        self.runc_root = self.base / "runc"
        self.cgroups: list[str] = []
        self.state_dirs: list[Path] = []
        self.pids: list[int] = []
        self._count = 0

    def name(self) -> str:
        """A fresh unique container/exec ID."""
        self._count += 1
        return f"{self.tag}-{self._count}"

    def bundle(self, args: list[str], *, terminal: bool = False, memory_limit: int | None = None) -> tuple[str, Path]:
        """A new container ID and its bundle (config.json + a private copy of busybox)."""
        cid = self.name()
        bundle = self.base / "bundles" / cid
        shutil.copytree(self.rootfs, bundle / "rootfs", symlinks=True)
        cgroups_path = f"/{cid}"
        self.cgroups.append(cgroups_path)
        config = oci_config(args, terminal=terminal, cgroups_path=cgroups_path, hostname=cid[-12:],
                            memory_limit=memory_limit)
        (bundle / "config.json").write_text(json.dumps(config))
        return cid, bundle

    def init_config(self, args: list[str], *, terminal: bool = False, open_stdin: bool = False,
                    stdin_once: bool = False, memory_limit: int | None = None) -> ShimConfig:
        """A ShimConfig for a new container running ``args`` under runc."""
        cid, bundle = self.bundle(args, terminal=terminal, memory_limit=memory_limit)
        state_dir = self.base / "shims" / cid
        self.state_dirs.append(state_dir)
        return ShimConfig(id=cid, mode="init", container_id=cid, state_dir=state_dir, runtime="runc",
                          runtime_root=self.runc_root, bundle=bundle,
                          log_path=self.base / "bundles" / cid / f"{cid}-json.log", terminal=terminal,
                          open_stdin=open_stdin, stdin_once=stdin_once)

    def exec_config(self, container: ShimConfig, init_pid: int, args: list[str], *, terminal: bool = False,
                    open_stdin: bool = False) -> ShimConfig:
        """A ShimConfig for an exec of ``args`` in ``container``."""
        exec_id = self.name()
        state_dir = self.base / "shims" / exec_id
        self.state_dirs.append(state_dir)
        process = {"args": args, "cwd": "/", "user": {"uid": 0, "gid": 0}, "terminal": terminal,
                   "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]}
        return ShimConfig(id=exec_id, mode="exec", container_id=container.container_id, state_dir=state_dir,
                          runtime="runc", runtime_root=self.runc_root, process=process, init_pid=init_pid,
                          terminal=terminal, open_stdin=open_stdin, stdin_once=open_stdin)

    def cleanup(self) -> None:
        """Kill shims, delete runc containers, remove cgroups and files. Never raises."""
        for pid in self._shim_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.runc_root.exists():
            listed = subprocess.run([RUNC, "--root", str(self.runc_root), "list", "-q"],
                                    capture_output=True, text=True, check=False).stdout.split()
            for cid in listed:
                subprocess.run([RUNC, "--root", str(self.runc_root), "delete", "--force", cid],
                               capture_output=True, check=False)
        for path in self.cgroups:
            remove_cgroup(path)
        shutil.rmtree(self.base, ignore_errors=True)

    def _shim_pids(self) -> set[int]:
        pids = set(self.pids)
        for state_dir in self.state_dirs:
            with contextlib.suppress(OSError, ValueError):
                pids.add(int((state_dir / PID_FILE).read_text()))
        return {pid for pid in pids if pid > 1 and pid != os.getpid()}


def remove_cgroup(path: str) -> None:
    """rmdir ``path`` (and leftover children) in every mounted cgroup hierarchy, retrying briefly."""
    for hierarchy in CGROUP_ROOT.iterdir():
        target = hierarchy / path.lstrip("/")
        for _ in range(50):
            if not target.exists():
                break
            for child in sorted(target.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    child.rmdir()
            if target.exists():
                time.sleep(0.05)


def process_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@contextlib.contextmanager
def open_sandbox(busybox_rootfs: Path) -> Iterator[Sandbox]:
    """A :class:`Sandbox`, cleaned up on exit (skips the test without runc). Test modules wrap
    it in their ``sandbox`` fixture."""
    if not os.path.exists(RUNC):
        pytest.skip("runc is not installed")
    box = Sandbox(busybox_rootfs)
    try:
        yield box
    finally:
        box.cleanup()
