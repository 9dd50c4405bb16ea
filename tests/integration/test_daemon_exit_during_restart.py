"""berthd stopped (SIGTERM) while a restart policy is restarting a container: the restart is
either finished before the daemon exits or left to the next daemon, never cut in half (a shim
spawned but not recorded, the network released into a closed database); the next daemon
restarts the container (docker: "always" keeps restarting across daemon restarts), also after
a SIGKILL in the middle of a start."""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from tests.daemon_fixture import assert_no_shims
from tests.integration.containers_support import wait_for


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_daemon_exit_during_policy_restarts(bdaemon, sig):
    """SIGTERM: the start in flight finishes first, or none begins. SIGKILL: the start is cut
    anywhere; the next daemon removes what it left (shim, created process, runtime state) before
    starting the container again, instead of failing with "container with id exists"."""
    name = f"rx-{uuid.uuid4().hex[:8]}"
    cid = bdaemon.ok("run", "-d", "--name", name, "--restart", "always", "busybox", "sh", "-c",
                     "sleep 0.3; exit 3").strip()
    runtime_state = bdaemon.exec_root / "runtime" / "berth" / cid  # exists from create to exit
    for round_ in range(3):
        count = int(bdaemon.ok("inspect", "-f", "{{.RestartCount}}", name))
        wait_for(lambda: not runtime_state.exists(), 20, "the container to exit")
        # the policy restart begins: the runtime state is back, the start not yet recorded
        deadline = time.monotonic() + 30
        while not runtime_state.exists():
            assert time.monotonic() < deadline, "the policy restart did not begin"
            time.sleep(0.001)
        time.sleep(0.01 * round_)  # land at different points of the start
        assert bdaemon.stop(sig) in (0, -signal.SIGKILL)
        log = bdaemon.log_path.read_text(errors="replace")
        bad = [line for line in log.splitlines() if " ERROR " in line or " CRITICAL " in line]
        assert bad == [], "\n".join(line for line in log.splitlines() if "pyroute2" not in line)[-6000:]
        bdaemon.start()
        wait_for(lambda count=count: int(bdaemon.ok("inspect", "-f", "{{.RestartCount}}", name)) > count, 20,
                 "the next daemon to restart it")
    bdaemon.ok("rm", "-f", name)
    assert_no_shims(bdaemon)

