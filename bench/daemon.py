"""A private berthd for benchmarks: its own data root, exec root and bridge, removed afterwards.

The bench must not touch a berthd the user runs (``/var/lib/berth``), so when ``BERTH_HOST`` is not
given the runner starts one of these, imports busybox into it, and every topic script uses it.
Cleaning removes the containers and networks through the API first (so berthd deletes its own
bridges, veths and iptables chains), then stops the daemon and deletes what is left.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import ROOT, VENV_BIN, ping_unix


class BenchDaemon:
    """One berthd on ``/tmp/berth-bench-<tag>`` with exec root ``/run/bb-<tag>`` and bridge ``bb<tag>``."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = (tag or uuid.uuid4().hex)[:6]
        self.base = Path(tempfile.mkdtemp(prefix=f"berth-bench-{self.tag}-"))
        self.root = self.base / "data"
        self.exec_root = Path(f"/run/bb-{self.tag}")
        self.sock = str(self.exec_root / "berth.sock")
        self.host = f"unix://{self.sock}"
        self.bridge = f"bb{self.tag}"
        self.log_path = self.base / "berthd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "BERTH_HOST": self.host}

    def start(self, timeout: float = 20) -> None:
        """Start berthd and wait for ``/_ping``; raises ``RuntimeError`` (with the log) on failure."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "berthd"), "--data-root", str(self.root), "--exec-root", str(self.exec_root),
                 "-H", self.host, "--bridge-name", self.bridge, "--log-level", "warn"],
                stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berthd exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            if ping_unix(self.sock):
                return
            time.sleep(0.05)
        raise RuntimeError(f"berthd did not answer within {timeout}s")

    def berth(self, *args: str, input_bytes: bytes | None = None) -> str:
        """Run ``berth ARGS`` against this daemon; returns stdout, raises ``RuntimeError`` on failure."""
        proc = subprocess.run([str(VENV_BIN / "berth"), *args], env=self.env, input=input_bytes,
                              capture_output=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"berth {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
        return proc.stdout.decode(errors="replace")

    def import_busybox(self) -> None:
        """Import ``busybox:latest`` made by ``contrib/mkimage/mkbusybox.py``."""
        tar = self.base / "busybox.tar"
        subprocess.run(["python3", str(ROOT / "contrib/mkimage/mkbusybox.py"), str(tar)], check=True)
        self.berth("import", "-c", 'CMD ["sh"]', str(tar), "busybox:latest")

    def cleanup(self) -> None:
        """Remove containers and networks, stop berthd, delete every trace of it."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                ids = self.berth("ps", "-aq").split()
                if ids:
                    self.berth("rm", "-f", *ids)
                self.berth("network", "prune", "-f")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass  # stopping and deleting below still removes what matters
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _unmount_under(self.base)
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
        _remove_chains(f"B-{self.bridge}")
        shutil.rmtree(self.exec_root, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    """Lazily unmount every mount point below ``root``, deepest first."""
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    for point in sorted((p for p in points if p.startswith(str(root))), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _remove_chains(prefix: str) -> None:
    """Delete the iptables chains named ``<prefix>-*`` (and the jumps to them) in filter and nat."""
    if not shutil.which("iptables"):
        return
    for table in ("filter", "nat"):
        rules = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True).stdout
        for line in rules.splitlines():
            if line.startswith("-A ") and f"-j {prefix}-" in line:
                subprocess.run(["iptables", "-w", "-t", table, "-D", *shlex.split(line)[1:]], capture_output=True)
        chains = [line.split()[1] for line in rules.splitlines() if line.startswith(f"-N {prefix}-")]
        for chain in chains:
            subprocess.run(["iptables", "-w", "-t", table, "-F", chain], capture_output=True)
        for chain in chains:
            subprocess.run(["iptables", "-w", "-t", table, "-X", chain], capture_output=True)
