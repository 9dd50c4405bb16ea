"""Relative symlinks that climb above the root, made inside a container (``ln -s ../../../etc/x``):
dockerd keeps them in RUN and commit layers (its chrooted unpack stops ``..`` at the root), so
berth does too; the same link in an imported layer is still refused (issue #2, bad input)."""

from __future__ import annotations

import io
import tarfile
import uuid

LINKS = "mkdir -p /a/b && ln -s ../../../../etc/passwd /a/b/up && ln -s ../../../../../../bin /top"
CHECK = "readlink /a/b/up && readlink /top && head -1 /a/b/up && ls /top/busybox"
EXPECTED = "../../../../etc/passwd\n../../../../../../bin\nroot:x:0:0:root:/root:/bin/sh\n/top/busybox\n"


def test_run_step_keeps_climbing_symlinks(bdaemon):
    tag = f"climb-{uuid.uuid4().hex[:8]}"
    bdaemon.ok("build", "-q", "-t", tag, "-", input=f"FROM busybox\nRUN {LINKS}\n")
    try:
        assert bdaemon.ok("run", "--rm", tag, "sh", "-c", CHECK) == EXPECTED
    finally:
        bdaemon.cli("rmi", tag)


def test_commit_keeps_climbing_symlinks(bdaemon):
    name = f"climb-{uuid.uuid4().hex[:8]}"
    bdaemon.ok("run", "--name", name, "busybox", "sh", "-c", LINKS)
    try:
        bdaemon.ok("commit", name, name)
        assert bdaemon.ok("run", "--rm", name, "sh", "-c", CHECK) == EXPECTED
    finally:
        bdaemon.cli("rm", name)
        bdaemon.cli("rmi", name)


def test_import_still_refuses_a_climbing_symlink(bdaemon):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("a/up")
        info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tar.addfile(info)
    result = bdaemon.cli("import", "-", f"climb-{uuid.uuid4().hex[:8]}", input=data.getvalue())
    assert result.returncode == 1
    assert result.stderr == (b'Error response from daemon: unpacking layer: invalid symlink "a/up" -> '
                             b'"../../etc/passwd": breakout\n')
