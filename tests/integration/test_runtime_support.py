"""Helpers for the executor tests (no tests here): bundles over an overlay of the busybox rootfs,
a runner that creates, starts, reads and reaps a container, and a cleanup that removes every
process, cgroup, mount and directory a test made, even when it fails."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from berth.runtime import cgroups, linux
from berth.runtime.executor import Executor
from berth.runtime.process import Stdio
from berth.runtime.spec import SpecOptions, default_env, generate_spec
from berth.runtime.user import resolve_user


@dataclass
class Result:
    """How a container ended: exit code (negative: killed by that signal) and its output."""

    code: int
    output: str


def read_until_eof(fd: int, timeout: float) -> bytes:
    """Read ``fd`` until EOF (EIO on a pty) or ``timeout`` seconds without data."""
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def wait_exit(pid: int, timeout: float = 30.0) -> int:
    """Reap ``pid``; SIGKILL it after ``timeout`` seconds. Returns the exit code."""
    deadline = time.monotonic() + timeout
    while True:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(raw)
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        time.sleep(0.01)


class Box:
    """One test's containers: a short base directory, an :class:`Executor` with its own state
    root, overlay rootfs mounts, and unique container IDs."""

    def __init__(self, lower: Path) -> None:
        self.lower = lower
        self.tag = f"bx{os.getpid() % 100000}{uuid.uuid4().hex[:6]}"
        self.base = Path(tempfile.mkdtemp(prefix=f"{self.tag}-", dir="/tmp"))
        self.executor = Executor(self.base / "state")
        self.ids: list[str] = []
        self.pids: list[int] = []
        self.overlays: list[Path] = []
        self._count = 0

    def name(self) -> str:
        """A fresh unique container ID."""
        self._count += 1
        cid = f"{self.tag}-{self._count}"
        self.ids.append(cid)
        return cid

    def rootfs(self, bundle: Path) -> Path:
        """Mount an overlay of the busybox rootfs at ``bundle/rootfs``."""
        for part in ("rootfs", "upper", "work"):
            (bundle / part).mkdir(parents=True, exist_ok=True)
        data = f"lowerdir={self.lower},upperdir={bundle / 'upper'},workdir={bundle / 'work'}"
        linux.mount("overlay", bundle / "rootfs", "overlay", 0, data)
        self.overlays.append(bundle / "rootfs")
        return bundle / "rootfs"

    def options(self, args: list[str], *, user: str = "", env: list[str] | None = None,
                **kw: Any) -> SpecOptions:
        """SpecOptions for ``args`` as ``docker run`` would give them (user resolved in busybox)."""
        exec_user = resolve_user(self.lower, user)
        hostname = kw.pop("hostname", "box")
        tty = kw.get("tty", False)
        return SpecOptions(args=args, env=default_env(env or [], tty, hostname, exec_user.home),
                           uid=exec_user.uid, gid=exec_user.gid,
                           additional_gids=list(exec_user.additional_gids), hostname=hostname,
                           nofile=linux.nofile_ceiling(), **kw)

    def bundle(self, opts: SpecOptions | dict[str, Any], cid: str | None = None) -> tuple[str, Path]:
        """A container ID and a bundle whose config is ``opts`` (SpecOptions or a config dict)."""
        cid = cid or self.name()
        bundle = self.base / cid
        self.rootfs(bundle)
        if isinstance(opts, SpecOptions):
            config = generate_spec(replace(opts, container_id=cid))
        else:
            config = opts
        (bundle / "config.json").write_text(json.dumps(config))
        return cid, bundle

    def create(self, opts: SpecOptions | dict[str, Any], *, stdin: int | None = None,
               tty: bool = False) -> tuple[str, int, int]:
        """Create a container; returns (id, init pid, fd to read its output from)."""
        cid, bundle = self.bundle(opts)
        if tty:
            created = self.executor.create(cid, bundle, Stdio(None, 1, 2), True)
            assert created.pty_master is not None
            self.pids.append(created.pid)
            return cid, created.pid, created.pty_master
        r, w = os.pipe()
        try:
            created = self.executor.create(cid, bundle, Stdio(stdin, w, w), False)
        finally:
            os.close(w)
        self.pids.append(created.pid)
        return cid, created.pid, r

    def run(self, opts: SpecOptions | dict[str, Any], timeout: float = 30.0, tty: bool = False) -> Result:
        """Create, start, read all output, reap; the container is deleted afterwards."""
        cid, pid, fd = self.create(opts, tty=tty)
        try:
            self.executor.start(cid)
            output = read_until_eof(fd, timeout)
            code = wait_exit(pid, timeout)
        finally:
            os.close(fd)
            self.executor.delete(cid)
        return Result(code, output.decode(errors="replace"))

    def cgroup_path(self, cid: str) -> str:
        """The cgroup path the spec generator gives ``cid``."""
        return f"/berth/{cid}"

    def cleanup(self) -> None:
        """Kill and reap every process, delete containers, unmount, remove files. Never raises."""
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        for cid in self.ids:
            with contextlib.suppress(Exception):
                self.executor.delete(cid)
            for directory in cgroups.directories(self.cgroup_path(cid)).values():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        for mount_point in reversed(self.overlays):
            with contextlib.suppress(OSError):
                linux.umount2(mount_point, linux.MNT_DETACH)
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def open_box(lower: Path) -> Iterator[Box]:
    """A :class:`Box`, cleaned up on exit."""
    box = Box(lower)
    try:
        yield box
    finally:
        box.cleanup()


def mounted_under(prefix: str) -> list[str]:
    """Mount points (host view) under ``prefix``: a test's leftovers."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
