"""A SIGTERM is berthd's normal way to stop: streams still open then (``events``, ``logs -f``,
``attach``) are ended quietly, so the daemon's log holds no traceback and no ERROR line."""

from __future__ import annotations

import queue
import subprocess
import threading
import uuid

from tests.daemon_fixture import BERTH


class Lines:
    """The lines a client prints, read by a thread (a select on a buffered pipe misses lines
    already read ahead)."""

    def __init__(self, client: subprocess.Popen) -> None:
        self.client, self.queue = client, queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.client.stdout is not None
        for line in self.client.stdout:
            self.queue.put(line)

    def next(self, timeout: float = 20) -> str:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.client.args}: no line within {timeout}s (exit {self.client.poll()})") from None


def test_sigterm_with_open_streams_logs_no_error(bdaemon, tmp_path):
    tag = uuid.uuid4().hex[:8]
    talker, sleeper = f"talk-{tag}", f"sleep-{tag}"
    bdaemon.ok("run", "-d", "--name", talker, "busybox", "sh", "-c", "while true; do echo tick; sleep 0.2; done")
    bdaemon.ok("run", "-d", "--name", sleeper, "busybox", "sleep", "300")
    clients = [subprocess.Popen([BERTH, *args], env=bdaemon.env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                stderr=open(tmp_path / f"client{i}.err", "w"), text=True, bufsize=1)
               for i, args in enumerate((["events", "--format", "{{.Action}}"], ["logs", "-f", talker],
                                         ["attach", "--no-stdin", talker]))]
    try:
        # each stream is being served: it has delivered something
        events, logs, attach = (Lines(c) for c in clients)
        assert logs.next() == "tick\n"
        assert attach.next() == "tick\n"
        bdaemon.ok("pause", sleeper)
        while events.next() != "pause\n":  # events of the clients' own attach come first
            pass
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
