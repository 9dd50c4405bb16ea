"""``docker commit`` pauses the container only while it diffs (dockerd's default ``--pause``): a
berthd killed in the middle of a commit must not leave the container paused for good (nor one
killed while ``cp`` froze a running container), while a pause the user made survives any daemon
restart."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import uuid

import pytest

from berth.runtime import cgroups
from tests.integration.containers_support import popen, state, wait_for


def _frozen(cid: str) -> bool:
    return cgroups.is_frozen(f"/berth/{cid}")


def _mark_commit_pause(db_path, cid: str) -> None:
    """What a daemon killed while committing leaves: the record says paused by a commit."""
    with sqlite3.connect(db_path) as db:
        (text,) = db.execute("SELECT record FROM containers WHERE id = ?", (cid,)).fetchone()
        record = json.loads(text)
        record["state"].update(status="paused", commit_paused=True)
        db.execute("UPDATE containers SET record = ? WHERE id = ?", (json.dumps(record), cid))
    db.close()


def _check_restored(bdaemon, running: dict[str, str], user_paused: str, user_id: str) -> None:
    for name, cid in running.items():
        assert state(bdaemon, name) == "running"
        assert not _frozen(cid)
        assert bdaemon.cli("exec", name, "true", timeout=30).returncode == 0
        status = bdaemon.ok("ps", "--filter", f"name={name}", "--format", "{{.Status}}")
        assert status.startswith("Up") and "(Paused)" not in status, status
    assert state(bdaemon, user_paused) == "paused"
    assert _frozen(user_id)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_restore_thaws_a_commit_pause_and_keeps_a_user_pause(bdaemon, sig):
    tag = uuid.uuid4().hex[:8]
    committed, copied, user_paused = f"cm-{tag}", f"cp-{tag}", f"up-{tag}"
    running = {name: bdaemon.ok("run", "-d", "--name", name, "busybox", "sleep", "300").strip()
               for name in (committed, copied)}
    user_id = bdaemon.ok("run", "-d", "--name", user_paused, "busybox", "sleep", "300").strip()
    bdaemon.ok("pause", user_paused)
    bdaemon.stop(sig)
    _mark_commit_pause(bdaemon.root / "berth.db", running[committed])
    for cid in running.values():  # the copied one's record still says running, as cp leaves it
        cgroups.freeze(f"/berth/{cid}")
    bdaemon.start()
    _check_restored(bdaemon, running, user_paused, user_id)
    bdaemon.restart()
    _check_restored(bdaemon, running, user_paused, user_id)
    bdaemon.ok("unpause", user_paused)


def test_daemon_killed_during_commit_leaves_the_container_running(bdaemon):
    tag = uuid.uuid4().hex[:8]
    name = f"big-{tag}"
    cid = bdaemon.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
                     "head -c 200000000 /dev/urandom > /big && echo ready && sleep 300").strip()
    wait_for(lambda: "ready" in bdaemon.cli("logs", name).stdout, timeout=60, what="the big file")
    commit = popen(bdaemon, "commit", name, f"big-{tag}:img")
    try:
        deadline = time.monotonic() + 30
        while state(bdaemon, name) != "paused":
            if commit.poll() is not None or time.monotonic() > deadline:
                pytest.skip("the commit ended before it could be interrupted")
        bdaemon.stop(signal.SIGKILL)
    finally:
        commit.kill()
        commit.wait()
    bdaemon.start()
    assert state(bdaemon, name) == "running"
    assert not _frozen(cid)
    assert bdaemon.cli("exec", name, "true", timeout=30).returncode == 0
