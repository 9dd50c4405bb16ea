"""How the demo finds or starts berthd (contrib/demo/daemon.py), with stand-ins for berthd: a unix
socket answering ``/_ping``, and programs that exit at once or never answer."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from contrib.demo.daemon import DaemonPlace, answers, ensure_berthd, stop_hint


def place(tmp_path: Path, bridge: str = "berth0") -> DaemonPlace:
    return DaemonPlace(tmp_path / "data", tmp_path / "run", tmp_path / "run" / "berth.sock",
                       tmp_path / "log" / "berthd.log", bridge)


def test_command_line_and_stop_hint(tmp_path):
    p = place(tmp_path)
    assert p.host == f"unix://{tmp_path}/run/berth.sock"
    assert p.argv("berthd") == ["berthd", "--data-root", f"{tmp_path}/data", "--exec-root", f"{tmp_path}/run",
                                "-H", p.host]
    assert place(tmp_path, "bx0").argv("berthd")[-2:] == ["--bridge-name", "bx0"]
    assert stop_hint(p) == f"kill $(cat {tmp_path}/data/berthd.lock)"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "berthd.lock").write_text("4242\n")  # what berthd writes in its lock file
    assert (p.pid(), stop_hint(p)) == (4242, "kill 4242")


@pytest.fixture
def pinged(tmp_path):
    """A unix socket answering every connection with ``HTTP/1.1 200 OK`` (like ``GET /_ping``)."""
    path = tmp_path / "run" / "berth.sock"
    path.parent.mkdir(parents=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    server.close()


def test_a_daemon_that_answers_is_reused(tmp_path, pinged):
    assert answers(pinged)
    assert ensure_berthd(place(tmp_path), "/nonexistent/berthd") is False
    assert not (tmp_path / "log").exists()


def test_nothing_answers_on_a_missing_socket(tmp_path):
    assert answers(tmp_path / "nothing.sock") is False


def test_a_daemon_that_exits_is_reported_with_its_log(tmp_path):
    script = tmp_path / "fake-berthd"
    script.write_text("#!/bin/sh\necho 'cannot bind: address in use' >&2\nexit 3\n")
    os.chmod(script, 0o755)
    with pytest.raises(RuntimeError, match=r"(?s)exited with status 3.*cannot bind: address in use"):
        ensure_berthd(place(tmp_path), str(script))
    assert "cannot bind" in (tmp_path / "log" / "berthd.log").read_text()


def test_a_daemon_that_never_answers_times_out_and_is_stopped(tmp_path):
    script = tmp_path / "fake-berthd"
    script.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\nexec sleep 30\n")
    os.chmod(script, 0o755)
    with pytest.raises(RuntimeError, match="did not answer"):
        ensure_berthd(place(tmp_path), str(script), timeout=0.5)
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
