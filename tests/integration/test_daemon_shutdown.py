"""A SIGTERM is berthd's normal way to stop: streams still open then (``events``, ``logs -f``,
``attach``) are ended quietly, so the daemon's log holds no traceback and no ERROR line."""

from __future__ import annotations

import subprocess
import uuid

from tests.daemon_fixture import BERTH
from tests.integration.containers_support import wait_for


def test_sigterm_with_open_streams_logs_no_error(bdaemon):
    tag = uuid.uuid4().hex[:8]
    talker, sleeper = f"talk-{tag}", f"sleep-{tag}"
    bdaemon.ok("run", "-d", "--name", talker, "busybox", "sh", "-c", "while true; do echo tick; sleep 0.2; done")
    bdaemon.ok("run", "-d", "--name", sleeper, "busybox", "sleep", "300")
    clients = [subprocess.Popen([BERTH, *args], env=bdaemon.env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
               for args in (["events"], ["logs", "-f", talker], ["attach", sleeper])]
    try:
        assert clients[1].stdout is not None and clients[1].stdout.readline() == "tick\n"
        bdaemon.ok("pause", sleeper)
        bdaemon.ok("unpause", sleeper)
        wait_for(lambda: all(f"/{path}" in bdaemon.log_path.read_text(errors="replace") for path in ("events", "attach")),
                 what="streams served")
        assert bdaemon.stop() == 0
        for client in clients:
            client.wait(timeout=20)
        log = bdaemon.log_path.read_text(errors="replace")
        assert "Traceback" not in log, log[-6000:]
        assert not [line for line in log.splitlines() if " ERROR " in line or " CRITICAL " in line], log[-6000:]
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.wait()
        bdaemon.start()
