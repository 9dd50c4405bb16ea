"""The build stream through a real berthd: the message framing docker clients read, quiet builds,
and a client that goes away mid-build (the build is cancelled and cleaned up)."""

from __future__ import annotations

import socket
import time

import pytest

from tests.daemon_fixture import assert_no_shims
from tests.integration.test_build_support import api_get, build, context_tar, require_containers


def test_message_framing(shared_daemon):
    result = build(shared_daemon, {"Dockerfile": "FROM busybox\nLABEL framing=1\n"}, t="framing")
    messages = result.messages
    # As dockerd 20.10 writes them: the step line and its newline apart, then the image.
    assert messages[:3] == [{"stream": "Step 1/2 : FROM busybox"}, {"stream": "\n"},
                            {"stream": f" ---> {api_get(shared_daemon, '/images/busybox/json')['Id'][7:19]}\n"}]
    image_id = api_get(shared_daemon, "/images/framing/json")["Id"]
    assert messages[-3:] == [{"aux": {"ID": image_id}}, {"stream": f"Successfully built {image_id[7:19]}\n"},
                             {"stream": "Successfully tagged framing:latest\n"}]


def test_quiet(shared_daemon):
    require_containers(shared_daemon)
    ok = build(shared_daemon, {"Dockerfile": "FROM busybox\nRUN echo quiet-out\n"}, q=1, nocache=1)
    assert len(ok.messages) == 1 and ok.messages[0]["stream"].startswith("sha256:")
    failed = build(shared_daemon, {"Dockerfile": "FROM busybox\nRUN echo quiet-out; exit 2\n"}, q=1)
    assert "quiet-out\n" in failed.output and failed.error_code == 2  # held output comes with the error


@pytest.mark.parametrize("leave_at", [
    b"Step 2/2",      # while the RUN container is being created and started
    b"started\n",     # while it runs (the step line shows sta""rted, the container prints started)
])
def test_client_going_away_cancels_the_build(bdaemon, leave_at):
    require_containers(bdaemon)
    body = context_tar({"Dockerfile": 'FROM busybox\nRUN echo sta""rted; sleep 60\n'})
    head = (f"POST /v1.41/build?nocache=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    for _ in range(3 if leave_at.startswith(b"Step") else 1):  # the first window is short: try it thrice
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(60)
            sock.connect(bdaemon.sock)
            sock.sendall(head + body)
            seen = b""
            while leave_at not in seen.replace(b'\\n', b"\n"):
                chunk = sock.recv(65536)
                assert chunk, seen
                seen += chunk
        deadline = time.time() + 30
        while time.time() < deadline:
            leftovers = list((bdaemon.root / "build").iterdir())
            if not api_get(bdaemon, "/containers/json?all=1") and not leftovers:
                break
            time.sleep(0.2)
        assert api_get(bdaemon, "/containers/json?all=1") == []
        assert list((bdaemon.root / "build").iterdir()) == []
        with open("/proc/self/mountinfo") as f:
            assert str(bdaemon.root / "build") not in f.read()
        # no shim (nor a container init it forked) left holding the daemon's files
        assert_no_shims(bdaemon)

