"""Shims are not mistaken for the daemon: ``pkill -f berthd``-style signals leave containers
running (regression: a SIGTERM to every process whose command line named the daemon killed the
shims, forks of berthd, and their containers with them)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _cmdlines() -> dict[int, str]:
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                pass
    return out


def test_sigterm_to_everything_named_like_the_daemon_spares_shims(bdaemon):
    cid = bdaemon.ok("run", "-d", "busybox", "sleep", "300").strip()
    shim_pid = int((bdaemon.exec_root / "shims" / cid / "shim.pid").read_text())
    assert _cmdlines()[shim_pid].startswith(f"berth-shim init {cid[:12]}")
    for pid, cmd in _cmdlines().items():  # what `pkill -f "berthd --data-root <root>"` hits
        if "berthd" in cmd and str(bdaemon.root) in cmd:
            os.kill(pid, signal.SIGTERM)
    bdaemon.proc.wait(20)
    time.sleep(0.5)
    assert os.path.exists(f"/proc/{shim_pid}")
    bdaemon.start()
    assert bdaemon.ok("inspect", "-f", "{{.State.Status}}", cid).strip() == "running"
    bdaemon.ok("rm", "-f", cid)
