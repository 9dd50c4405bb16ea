"""A real berthd for tests: temporary data root, short exec root, always stopped and cleaned.

``Daemon.cli("images")`` runs the real ``berth`` CLI against it. Cleaning kills shims the daemon
left (live restore keeps them), unmounts everything under the data root and removes the
directories, so a test run leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
BERTH = str(VENV_BIN / "berth")
BERTHD = str(VENV_BIN / "berthd")


def _ping(sock_path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            s.connect(sock_path)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


class Daemon:
    """One berthd process on its own data root (``root``) and exec root (``exec_root``)."""

    def __init__(self, base: Path, extra_args: list[str] | None = None) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tag = tag
        self.root = base / "data"
        self.exec_root = Path(f"/run/bt-{tag}")
        self.sock = str(self.exec_root / "berth.sock")
        self.host = f"unix://{self.sock}"
        self.log_path = base / "berthd.log"
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.env = {**os.environ, "BERTH_HOST": self.host, "DOCKER_HOST": self.host}

    def start(self, timeout: float = 20) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [BERTHD, "--data-root", str(self.root), "--exec-root", str(self.exec_root), "-H", self.host,
             "--log-level", "debug", "--bridge-name", f"bt{self.tag[:6]}", *self.extra_args],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berthd exited with {self.proc.returncode}:\n{self.log()}")
            if _ping(self.sock):
                return
            time.sleep(0.05)
        raise RuntimeError(f"berthd did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        """Stop the daemon with ``sig`` (SIGKILL simulates a crash); returns its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def cli(self, *args: str, input: str | bytes | None = None, timeout: float = 120,
            check: bool = False) -> subprocess.CompletedProcess:
        """Run ``berth ARGS`` against this daemon; text output unless ``input`` is bytes."""
        text = not isinstance(input, bytes)
        result = subprocess.run([BERTH, *args], input=input, capture_output=True, text=text, env=self.env,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"berth {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def ok(self, *args: str, **kw) -> str:
        """Run ``berth ARGS``, assert success, return stdout."""
        return self.cli(*args, check=True, **kw).stdout

    def cleanup(self) -> None:
        """Stop the daemon, kill what it left running, unmount and delete its state."""
        self.stop()
        kill_shims(self.exec_root, self.root)
        remove_links(self.tag)
        unmount_under(self.root)
        remove_cgroups(self.root)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


def kill_shims(*roots: Path) -> None:
    """SIGKILL every process whose command line or cwd mentions one of ``roots`` and every
    process in a berth cgroup created by them (containers and shims)."""
    needles = [str(r) for r in roots]
    me = os.getpid()
    for pid_s in os.listdir("/proc"):
        if not pid_s.isdigit() or int(pid_s) == me:
            continue
        try:
            cmd = Path(f"/proc/{pid_s}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = Path(f"/proc/{pid_s}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(n in cmd or n in environ for n in needles):
            try:
                os.kill(int(pid_s), signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(0.1)


def unmount_under(root: Path) -> None:
    """Lazily unmount every mount point below ``root`` (deepest first)."""
    root_s = str(root)
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    for point in sorted((p for p in points if p.startswith(root_s)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def remove_cgroups(root: Path) -> None:
    """Kill the processes of this daemon's container cgroups and remove the cgroups (the daemon
    removes its own; this catches crashes). Only cgroups named after this data root's containers."""
    ids = [p.name for p in (root / "containers").iterdir()] if (root / "containers").is_dir() else []
    base = Path("/sys/fs/cgroup")
    for ctl in (list(base.iterdir()) if base.exists() else []):
        for cid in ids:
            group = ctl / "berth" / cid
            if not group.is_dir():
                continue
            for child in sorted([group, *group.rglob("*")], key=lambda p: len(str(p)), reverse=True):
                if not child.is_dir():
                    continue
                try:
                    for pid in (child / "cgroup.procs").read_text().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                except OSError:
                    pass
                for _ in range(20):
                    try:
                        child.rmdir()
                        break
                    except OSError:
                        time.sleep(0.05)


def remove_links(tag: str) -> None:
    """Delete network links named after this daemon's tag (bridges ``bt<tag>``)."""
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(f"bt{tag[:6]}"):
            subprocess.run(["ip", "link", "delete", name], capture_output=True)
