"""``rm -f`` racing a ``start`` of the same container: dockerd serialises them, and the removal
stops what the start ran. berth's remove used to decide "not running, nothing to stop" before it
waited for the start to finish, then deleted the records of a running container and left its
shim and process behind."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from tests.daemon_fixture import BERTH, assert_no_shims


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.06, 0.1])
def test_remove_during_start_leaves_nothing_running(bdaemon, delay):
    name = f"race-{uuid.uuid4().hex[:8]}"
    bdaemon.ok("create", "--name", name, "busybox", "sleep", "60")
    start = subprocess.Popen([BERTH, "start", name], env=bdaemon.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    removed = bdaemon.cli("rm", "-f", name)
    start.communicate(timeout=60)
    assert removed.returncode == 0, removed.stderr
    assert bdaemon.ok("ps", "-aq") == ""
    assert_no_shims(bdaemon)
