"""``berth run`` (attached) when berthd dies under it: docker's CLI ends with status 125 and
"error waiting for container: unexpected EOF" (cli/command/container/utils.go waitExitOrRemoved)."""

from __future__ import annotations

import signal
import subprocess
import uuid

from tests.daemon_fixture import BERTH


def test_attached_run_exits_125_when_the_daemon_dies(bdaemon):
    name = f"gone-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([BERTH, "run", "--name", name, "busybox", "sh", "-c", "echo up; sleep 30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=bdaemon.env)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        bdaemon.stop(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 125
        assert stderr == "error waiting for container: unexpected EOF\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        bdaemon.start()
        bdaemon.cli("rm", "-f", name)
