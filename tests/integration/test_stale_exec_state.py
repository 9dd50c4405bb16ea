"""An exec shim that ended while no daemon was there to read it (a health probe or ``exec`` cut
off by a daemon crash) left its state directory for good; the next berthd removes it, and keeps
those of containers and of shims still running."""

from __future__ import annotations

import json
import signal
import uuid


def test_boot_removes_ended_exec_shim_dirs(bdaemon):
    cid = bdaemon.ok("run", "-d", "busybox", "sleep", "300").strip()
    bdaemon.stop(signal.SIGKILL)
    shims = bdaemon.exec_root / "shims"
    stale = shims / uuid.uuid4().hex
    stale.mkdir()
    (stale / "exit.json").write_text(json.dumps({"exit_code": 1}))
    bdaemon.start()
    assert not stale.exists()
    assert (shims / cid).is_dir()
    assert bdaemon.ok("exec", cid, "echo", "ok") == "ok\n"
    bdaemon.ok("rm", "-f", cid)
