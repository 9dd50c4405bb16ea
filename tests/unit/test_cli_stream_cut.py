"""A daemon that goes away in the middle of a streamed answer: the CLI ends with docker's message
and status 1, never a Python traceback. A unix socket in the test's directory plays the daemon (a loopback TCP one for a reset, which
only TCP has)."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from berth.cli.main import main

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENT = b'{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{}},"time":1,"timeNano":1}\n'
CHUNK = b"%x\r\n%s\r\n" % (len(EVENT), EVENT)

CASES = [  # (what the daemon sends before it goes away, reset instead of close, stderr)
    (HEAD, False, "unexpected EOF\n"),
    (HEAD + CHUNK, False, "unexpected EOF\n"),
    (HEAD + CHUNK[:20], False, "unexpected EOF\n"),
    (HEAD + CHUNK, True, "error during connect: [Errno 104] Connection reset by peer\n"),
]


def fake_daemon(path: str, answer: bytes, reset: bool) -> tuple[str, threading.Thread]:
    """Serve one request with ``answer`` and go away; returns the ``-H`` address and the thread."""
    if reset:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        host = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    else:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        host = f"unix://{path}"
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        with server, conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(answer)
            if reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return host, thread


@pytest.mark.parametrize("answer,reset,stderr", CASES)
def test_events_when_the_daemon_goes_away(tmp_path, capsys, answer, reset, stderr):
    host, thread = fake_daemon(str(tmp_path / "d.sock"), answer, reset)
    status = main(["-H", host, "events", "--format", "{{.Action}}"])
    thread.join(5)
    out, err = capsys.readouterr()
    assert (status, err) == (1, stderr)
    assert out == ("start\n" if CHUNK in answer else "")


def test_a_daemon_gone_before_answering(tmp_path, capsys):
    """No status line at all: Go's ``*url.Error`` text, as docker prints it."""
    path = str(tmp_path / "d.sock")
    host, thread = fake_daemon(path, b"", False)
    status = main(["-H", host, "ps", "-q"])
    thread.join(5)
    quoted = path.replace("/", "%2F")
    assert (status, capsys.readouterr().err) == (
        1, f'error during connect: Get "http://{quoted}/v1.41/containers/json": EOF\n')
