"""RuncBackend against the system runc: create/start through pipes and a pty, exec, errors, delete.

The test process makes itself a child subreaper for the duration of each test (the backend's
contract: the container's init and exec'd processes are reparented to the caller) and reaps
exactly the processes it created.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import subprocess
from collections.abc import Iterator

import pytest

try:  # tests/ is a package in the final layout; a plain directory before that
    from .test_shim_support import RUNC, Sandbox, open_sandbox
except ImportError:
    from test_shim_support import RUNC, Sandbox, open_sandbox  # type: ignore[no-redef]

from berth.runtime.process import RuntimeFailure, Stdio
from berth.runtime.runc import RuncBackend

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def sandbox(busybox_rootfs) -> Iterator[Sandbox]:
    with open_sandbox(busybox_rootfs) as box:
        yield box


@pytest.fixture
def subreaper() -> Iterator[None]:
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def read_all(fd: int, timeout: float = 10.0) -> bytes:
    """Read ``fd`` until EOF (or EIO for a pty)."""
    chunks = []
    while select.select([fd], [], [], timeout)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def wait_exit(pid: int) -> int:
    _, raw = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(raw)


def runc_status(box: Sandbox, cid: str) -> str:
    out = subprocess.run([RUNC, "--root", str(box.runc_root), "state", cid], capture_output=True, text=True)
    return json.loads(out.stdout)["status"] if out.returncode == 0 else "absent"


def test_create_start_with_pipes(sandbox: Sandbox, subreaper: None) -> None:
    backend = RuncBackend(sandbox.runc_root)
    cid, bundle = sandbox.bundle(["sh", "-c", "read line; echo got $line; echo oops >&2; exit 3"])
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    created = backend.create(cid, bundle, Stdio(in_r, out_w, err_w), terminal=False)
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    try:
        assert created.pty_master is None
        assert runc_status(sandbox, cid) == "created"
        backend.start(cid)
        os.write(in_w, b"hello\n")
        os.close(in_w)
        assert read_all(out_r) == b"got hello\n"
        assert read_all(err_r) == b"oops\n"
        assert wait_exit(created.pid) == 3
        assert runc_status(sandbox, cid) == "stopped"
    finally:
        os.close(out_r)
        os.close(err_r)
    backend.delete(cid)
    backend.delete(cid)  # idempotent
    assert runc_status(sandbox, cid) == "absent"


def test_terminal_receives_pty_master(sandbox: Sandbox, subreaper: None) -> None:
    backend = RuncBackend(sandbox.runc_root)
    cid, bundle = sandbox.bundle(["sh"], terminal=True)
    created = backend.create(cid, bundle, Stdio(None, 1, 2), terminal=True)
    assert created.pty_master is not None
    try:
        backend.start(cid)
        os.write(created.pty_master, b"tty; echo $((6*7)); exit 4\n")
        output = read_all(created.pty_master)
        assert b"/dev/pts/0\r\n" in output
        assert b"42\r\n" in output
        assert wait_exit(created.pid) == 4
    finally:
        os.close(created.pty_master)
        backend.delete(cid)


@pytest.mark.parametrize("args, message", [
    (["nonexist"], 'exec: "nonexist": executable file not found in $PATH'),
    (["/etc/passwd"], 'exec: "/etc/passwd": permission denied'),
])
def test_create_failure_keeps_runc_message(sandbox: Sandbox, subreaper: None, args: list[str],
                                           message: str) -> None:
    backend = RuncBackend(sandbox.runc_root)
    cid, bundle = sandbox.bundle(args)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        with pytest.raises(RuntimeFailure) as failure:
            backend.create(cid, bundle, Stdio(None, null, null), terminal=False)
    finally:
        os.close(null)
    assert failure.value.message == f"runc create failed: unable to start container process: {message}"
    assert runc_status(sandbox, cid) == "absent"


def test_exec_into_running_container(sandbox: Sandbox, subreaper: None) -> None:
    backend = RuncBackend(sandbox.runc_root)
    cid, bundle = sandbox.bundle(["sleep", "100"])
    null = os.open(os.devnull, os.O_WRONLY)
    init = backend.create(cid, bundle, Stdio(None, null, null), terminal=False)
    os.close(null)
    backend.start(cid)
    process = {"args": ["sh", "-c", "echo pid $$; hostname; exit 7"], "cwd": "/", "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
               "user": {"uid": 0, "gid": 0}}
    out_r, out_w = os.pipe()
    try:
        done = backend.exec(cid, init.pid, process, Stdio(None, out_w, out_w), terminal=False)
        os.close(out_w)
        assert read_all(out_r).decode().split("\n")[1] == cid[-12:]
        assert wait_exit(done.pid) == 7
        tty = backend.exec(cid, init.pid, dict(process, args=["tty"]), Stdio(None, 1, 2), terminal=True)
        assert tty.pty_master is not None
        assert read_all(tty.pty_master).strip().startswith(b"/dev/pts/")
        os.close(tty.pty_master)
        assert wait_exit(tty.pid) == 0
        with pytest.raises(RuntimeFailure) as failure:
            backend.exec(cid, init.pid, dict(process, args=["nope"]), Stdio(None, 1, 2), terminal=False)
        assert failure.value.message == ('exec failed: unable to start container process: '
                                         'exec: "nope": executable file not found in $PATH')
    finally:
        os.close(out_r)
        backend.delete(cid)  # --force: kills the init
    assert wait_exit(init.pid) == -9


def test_start_and_delete_errors(sandbox: Sandbox) -> None:
    backend = RuncBackend(sandbox.runc_root)
    with pytest.raises(RuntimeFailure) as failure:
        backend.start(sandbox.name())
    assert "does not exist" in failure.value.message
    backend.delete(sandbox.name())
