"""A start that fails before the process runs (a published port in use, a network gone) is
recorded as dockerd records it: ``State.Error`` holds the message and the exit code is 128."""

from __future__ import annotations

import socket
import uuid


def test_start_failures_are_recorded(bdaemon):
    name = f"sf-{uuid.uuid4().hex[:8]}"
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        bdaemon.ok("create", "--name", name, "-p", f"{port}:80", "busybox", "true")
        failed = bdaemon.cli("start", name)
        assert failed.returncode == 1
        message = failed.stderr.removeprefix("Error response from daemon: ").splitlines()[0]
        assert str(port) in message
        assert bdaemon.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{json .State.Error}}",
                          name).strip() == f'created 128 "{message}"'
    network = f"sf-net-{uuid.uuid4().hex[:8]}"
    bdaemon.ok("network", "create", network)
    other = f"{name}-n"
    bdaemon.ok("create", "--name", other, "--network", network, "busybox", "true")
    bdaemon.ok("network", "rm", network)
    assert bdaemon.cli("start", other).returncode == 1
    assert bdaemon.ok("inspect", "-f", "{{.State.ExitCode}} {{.State.Error}}", other).strip() == (
        f"128 network {network} not found")
    bdaemon.ok("rm", name, other)
