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


def test_sigusr1_and_sighup_leave_the_daemon_serving(bdaemon):
    """dockerd dumps its stacks on SIGUSR1 and reloads its configuration on SIGHUP, and keeps
    serving; berthd used to die of either (Python's default action). Its fork server and the
    shims, which `pkill -USR1 berthd` reaches too, are spared as well."""
    cid = bdaemon.ok("run", "-d", "busybox", "sleep", "300").strip()
    shim_pid = int((bdaemon.exec_root / "shims" / cid / "shim.pid").read_text())
    forkserver = [pid for pid, cmd in _cmdlines().items()
                  if cmd.startswith("berthd-forkserver") and _parent(pid) == bdaemon.proc.pid]
    assert len(forkserver) == 1
    for sig in (signal.SIGUSR1, signal.SIGHUP):
        for pid in (bdaemon.proc.pid, *forkserver, shim_pid):
            os.kill(pid, sig)
        time.sleep(0.3)
        assert all(os.path.exists(f"/proc/{pid}") for pid in (*forkserver, shim_pid))
        assert bdaemon.proc.poll() is None
        assert bdaemon.ok("inspect", "-f", "{{.State.Status}}", cid).strip() == "running"
    log = bdaemon.log_path.read_text(errors="replace")
    assert "=== BEGIN stack dump" in log and "SIGHUP: berthd has no configuration file to reload" in log
    assert bdaemon.ok("run", "--rm", "busybox", "echo", "still forking") == "still forking\n"  # the fork server
    bdaemon.ok("rm", "-f", cid)


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0
