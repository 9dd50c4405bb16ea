"""The build stream through a real berthd: the message framing docker clients read, quiet builds,
and a client that goes away mid-build (the build is cancelled and cleaned up)."""

from __future__ import annotations

import socket
import time

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


def test_client_going_away_cancels_the_build(bdaemon):
    require_containers(bdaemon)
    body = context_tar({"Dockerfile": "FROM busybox\nRUN echo started; sleep 60\n"})
    head = (f"POST /v1.41/build HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(bdaemon.sock)
        sock.sendall(head + body)
        seen = b""
        while b"started" not in seen:
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
