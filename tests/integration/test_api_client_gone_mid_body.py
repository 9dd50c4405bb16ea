"""A client that goes away in the middle of its request body (``docker build ... `` interrupted
while it uploads the context): no daemon error, no traceback, and the daemon keeps serving."""

from __future__ import annotations

import socket
import time

from tests.integration.test_build_support import context_tar


def test_upload_cut_off_is_not_a_daemon_error(bdaemon):
    body = context_tar({"Dockerfile": "FROM busybox\n", "big": "x" * 200_000})
    head = (f"POST /v1.41/build HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    for _ in range(3):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(bdaemon.sock)
            sock.sendall(head + body[: len(body) // 3])
            time.sleep(0.2)
    time.sleep(0.5)
    assert bdaemon.ok("version", "--format", "{{.Server.Os}}").strip() == "linux"
    log = bdaemon.log_path.read_text(errors="replace")
    assert [line for line in log.splitlines() if " ERROR " in line] == [], log[-3000:]
    assert "Traceback" not in log
