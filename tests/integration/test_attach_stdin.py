"""Piped (non-TTY) stdin reaches the container's process byte for byte, through ``run -i`` and
``exec -i``, from the berth CLI and the real docker CLI. dockerd watches for the detach keys
(ctrl-p ctrl-q, bytes 0x10 0x11) only on a TTY session; binary input that happens to contain them
must neither be cut short nor end the session."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess

import pytest

from tests.daemon_fixture import BERTH
from tests.integration.containers_support import named

DOCKER = shutil.which("docker")

PAYLOADS = {  # name -> bytes sent on stdin
    "detach keys inside": b"abc\x10\x11xyz",
    "first key last": b"abc\x10",
    "random 200 KiB": random.Random(7).randbytes(200 * 1024) + b"\x10\x11" + b"tail",
}


@pytest.fixture
def box(shared_daemon):
    with named(shared_daemon, "stdin") as new:
        name = new()
        shared_daemon.ok("run", "-d", "--name", name, "busybox", "sleep", "600")
        yield name


def clients() -> list[str]:
    return [BERTH] + ([DOCKER] if DOCKER else [])


@pytest.mark.parametrize("client", clients(), ids=os.path.basename)
@pytest.mark.parametrize("payload", PAYLOADS, ids=str)
def test_piped_stdin_passes_untouched(shared_daemon, box, client, payload):
    data = PAYLOADS[payload]
    expected = f"{hashlib.md5(data).hexdigest()}  -\n".encode()
    env = {**os.environ, "DOCKER_HOST": shared_daemon.host, "BERTH_HOST": shared_daemon.host}
    for argv in (["run", "--rm", "-i", "busybox", "md5sum"], ["exec", "-i", box, "md5sum"]):
        result = subprocess.run([client, *argv], input=data, capture_output=True, env=env, timeout=60)
        assert (argv[0], result.returncode, result.stdout, result.stderr) == (argv[0], 0, expected, b"")
