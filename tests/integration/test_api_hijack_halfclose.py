"""Regression: a hijacked exec whose client half-closes at once (the docker CLI does when it has
no stdin to send) must stream the whole output and leave the exit code recorded before the
stream ends. berthd's connection tasks were only weakly referenced by asyncio; after the client's
EOF nothing else held them and the garbage collector destroyed them mid-exec: the docker CLI saw
an empty stream and exec inspect said ``Running: true, ExitCode: null`` (exit status 0).
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import socket

ROUNDS = 30


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def call(sock: str, method: str, path: str, body: dict | None = None) -> dict:
    conn = _Unix(sock)
    try:
        conn.request(method, "/v1.41" + path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        data = conn.getresponse().read()
    finally:
        conn.close()
    return json.loads(data) if data.strip() else {}


def exec_half_closed(sock: str, container: str) -> tuple[bytes, dict]:
    """Create and start an exec like the docker CLI without -i: upgrade, then shut our side."""
    exec_id = call(sock, "POST", f"/containers/{container}/exec",
                   {"AttachStdout": True, "AttachStderr": True, "Cmd": ["sh", "-c", "echo hi; exit 3"]})["Id"]
    body = b'{"Detach":false,"Tty":false}'
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(sock)
        s.sendall(f"POST /v1.41/exec/{exec_id}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data, call(sock, "GET", f"/exec/{exec_id}/json")


def test_half_closed_exec_streams_everything_and_records_the_exit_code(shared_daemon):
    name = "hc" + socket.gethostname()[:4] + str(id(shared_daemon))[-6:]
    shared_daemon.ok("run", "-d", "--name", name, "busybox", "sleep", "600")
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: exec_half_closed(shared_daemon.sock, name), range(ROUNDS)))
        for stream, info in results:
            assert stream.endswith(b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"), stream[-120:]
            assert (info["Running"], info["ExitCode"]) == (False, 3)
    finally:
        shared_daemon.cli("rm", "-f", name)
