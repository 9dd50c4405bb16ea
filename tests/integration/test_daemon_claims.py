"""A second berthd that shares the exec root, a unix socket or the default bridge of a running
one is refused before it touches anything (as dockerd refuses a second daemon on its pid file):
it exits 1 naming what is taken, and the first daemon keeps its socket and its bridge."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.daemon_fixture import BERTHD, Daemon, _ping


def _bridge_addresses(name: str) -> list[str]:
    out = subprocess.run(["ip", "-j", "addr", "show", "dev", name], capture_output=True, text=True)
    if out.returncode != 0:
        return []
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out.stdout) for a in link["addr_info"]
            if a.get("family") == "inet"]


def _second(first: Daemon, other: Path, shared: str) -> tuple[list[str], str]:
    """The command line of a second daemon on another data root sharing ``shared`` with ``first``,
    and the refusal it must print."""
    tag = uuid.uuid4().hex[:8]
    exec_root, bridge = f"/run/bt-{tag}", f"bt{tag[:6]}"
    host = f"unix://{exec_root}/berth.sock"
    expected = {"exec-root": f"berthd: another berthd is running on exec root {first.exec_root}\n",
                "host": f"berthd: another daemon is listening on {first.host}: refusing to replace its socket\n",
                "bridge": f"berthd: another berthd is running with bridge bt{first.tag[:6]}\n"}[shared]
    if shared == "exec-root":
        exec_root, host = str(first.exec_root), f"unix://{exec_root}/other.sock"
    elif shared == "host":
        host = first.host
    else:
        bridge = f"bt{first.tag[:6]}"
    return [BERTHD, "--data-root", str(other), "--exec-root", exec_root, "-H", host, "--bridge-name", bridge], expected


@pytest.mark.parametrize("shared", ["exec-root", "host", "bridge"])
def test_second_daemon_sharing_a_resource_is_refused(daemon, tmp_path, shared):
    bridge = f"bt{daemon.tag[:6]}"
    addresses = _bridge_addresses(bridge)
    assert addresses, f"first daemon has no address on {bridge}"
    sock_inode = os.stat(daemon.sock).st_ino
    argv, expected = _second(daemon, tmp_path / "other", shared)
    exec_root = Path(argv[argv.index("--exec-root") + 1])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        try:
            _, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.communicate(timeout=20)
            pytest.fail(f"second berthd sharing the {shared} kept running")
        assert (proc.returncode, stderr) == (1, expected)
        assert _ping(daemon.sock)
        assert os.stat(daemon.sock).st_ino == sock_inode
        assert _bridge_addresses(bridge) == addresses
        assert daemon.cli("ps").returncode == 0
        if exec_root != daemon.exec_root:
            assert not any(exec_root.iterdir()), "the refused daemon left state in its exec root"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if exec_root != daemon.exec_root:
            shutil.rmtree(exec_root, ignore_errors=True)


def test_daemon_replaces_a_stale_socket_and_frees_its_bridge_on_exit(tmp_path):
    for base in ("first", "second"):
        (tmp_path / base).mkdir()
    first = Daemon(tmp_path / "first")
    first.exec_root.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(first.sock)  # closed without unlink: what a killed daemon leaves
    try:
        first.start()
        assert _ping(first.sock)
        assert first.stop() == 0
        # The bridge is free again: a new daemon on another data root may take the same name.
        second = Daemon(tmp_path / "second", extra_args=["--bridge-name", f"bt{first.tag[:6]}"])
        try:
            second.start()
            assert _ping(second.sock)
        finally:
            second.cleanup()
    finally:
        first.cleanup()
