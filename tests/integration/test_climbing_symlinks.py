"""Relative symlinks that climb above the root (``ln -s ../../../etc/x``): dockerd keeps them in
every layer (its chrooted unpack stops ``..`` at the root), so berth does too — in RUN and commit
layers, and through save/load and export/import, where refusing them would break the round trip."""

from __future__ import annotations

import uuid

LINKS = "mkdir -p /a/b && ln -s ../../../../etc/passwd /a/b/up && ln -s ../../../../../../bin /top"
CHECK = "readlink /a/b/up && readlink /top && head -1 /a/b/up && ls /top/busybox"
EXPECTED = "../../../../etc/passwd\n../../../../../../bin\nroot:x:0:0:root:/root:/bin/sh\n/top/busybox\n"


def test_run_step_and_save_load_keep_climbing_symlinks(bdaemon, tmp_path):
    tag = f"climb-{uuid.uuid4().hex[:8]}"
    bdaemon.ok("build", "-q", "-t", tag, "-", input=f"FROM busybox\nRUN {LINKS}\n")
    try:
        assert bdaemon.ok("run", "--rm", tag, "sh", "-c", CHECK) == EXPECTED
        image_id = bdaemon.ok("inspect", "-f", "{{.Id}}", tag)
        bdaemon.ok("save", "-o", str(tmp_path / "img.tar"), tag)
        bdaemon.ok("rmi", tag)
        assert bdaemon.ok("load", "-i", str(tmp_path / "img.tar")) == f"Loaded image: {tag}:latest\n"
        assert bdaemon.ok("inspect", "-f", "{{.Id}}", tag) == image_id
        assert bdaemon.ok("run", "--rm", tag, "sh", "-c", CHECK) == EXPECTED
    finally:
        bdaemon.cli("rmi", tag)


def test_commit_and_export_import_keep_climbing_symlinks(bdaemon, tmp_path):
    name = f"climb-{uuid.uuid4().hex[:8]}"
    bdaemon.ok("run", "--name", name, "busybox", "sh", "-c", LINKS)
    try:
        bdaemon.ok("commit", name, name)
        assert bdaemon.ok("run", "--rm", name, "sh", "-c", CHECK) == EXPECTED
        bdaemon.ok("export", "-o", str(tmp_path / "fs.tar"), name)
        bdaemon.ok("import", str(tmp_path / "fs.tar"), f"{name}-flat")
        assert bdaemon.ok("run", "--rm", f"{name}-flat", "sh", "-c", CHECK) == EXPECTED
    finally:
        bdaemon.cli("rm", name)
        bdaemon.cli("rmi", name, f"{name}-flat")
