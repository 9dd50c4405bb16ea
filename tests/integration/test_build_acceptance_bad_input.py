"""Issue #4 acceptance line 5 (bad input), through the berth CLI and a real directory context.

"Bad input: an unknown instruction, an unterminated heredoc, COPY of ``../x``, a context symlink
pointing outside the context, ``COPY --from`` of a missing stage, a failing RUN (exit code
reported) — each a clear error naming the Dockerfile line; no tag moved, nothing half-written."

The line is named as docker 20.10's classic builder names it: a parse error says ``dockerfile
parse error line N``; a step that fails is the last ``Step N/M : <instruction>`` printed before
the error. Every build is tagged with a tag that already names busybox (it must not move) and
uses ``--force-rm``; afterwards the images, containers, content blobs, snapshots and the build
scratch directory are exactly as before.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.integration.test_build_support import api_get, require_containers

CASES = {
    "unknown instruction": (
        "FROM busybox\nRUN true\nFOO bar\n", 1, None,
        "Error response from daemon: dockerfile parse error line 3: unknown instruction: FOO"),
    "unterminated heredoc": (
        "FROM busybox\nRUN true\nRUN <<EOF\necho hi\n", 1, None,
        "Error response from daemon: dockerfile parse error line 3: unterminated heredoc"),
    "COPY ../x": (
        "FROM busybox\nCOPY ../x /x\n", 1, "Step 2/2 : COPY ../x /x",
        "COPY failed: forbidden path outside the build context: ../x ()"),
    # Links are followed as if the context were "/": hostetc/passwd is <context>/etc/passwd.
    "absolute symlink out of the context": (
        "FROM busybox\nCOPY hostetc/passwd /x\n", 1, "Step 2/2 : COPY hostetc/passwd /x",
        "COPY failed: file not found in build context or excluded by .dockerignore: stat hostetc/passwd: "
        "file does not exist"),
    "relative symlink out of the context": (
        "FROM busybox\nCOPY up/outside.txt /x\n", 1, "Step 2/2 : COPY up/outside.txt /x",
        "COPY failed: file not found in build context or excluded by .dockerignore: stat up/outside.txt: "
        "file does not exist"),
    # loop -> /loop is <context>/loop itself.
    "symlink loop": (
        "FROM busybox\nCOPY loop/x /x\n", 1, "Step 2/2 : COPY loop/x /x",
        "COPY failed: loop/x: too many levels of symbolic links"),
    "COPY --from a missing stage": (
        "FROM busybox AS base\nFROM busybox\nCOPY --from=nostage /a /b\n", 1,
        "Step 3/3 : COPY --from=nostage /a /b", "invalid from flag value nostage: No such image: nostage:latest"),
    "failing RUN": (
        "FROM busybox\nRUN echo partial > /p && exit 3\n", 3, "Step 2/2 : RUN echo partial > /p && exit 3",
        "The command '/bin/sh -c echo partial > /p && exit 3' returned a non-zero code: 3"),
}


def _state(daemon, tag: str) -> dict[str, object]:
    """What a failed build must leave as it was."""
    root = Path(daemon.root)
    return {
        "tag": api_get(daemon, f"/images/{tag}/json")["Id"],
        "images": sorted(image["Id"] for image in api_get(daemon, "/images/json?all=1")),
        "containers": sorted(c["Id"] for c in api_get(daemon, "/containers/json?all=1")),
        "blobs": sorted(os.listdir(root / "content" / "blobs" / "sha256")),
        "snapshots": sorted(os.listdir(root / "snapshots")),
        "build": sorted(os.listdir(root / "build")),
    }


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_clear_error_and_changes_nothing(shared_daemon, tmp_path: Path, case: str):
    """5. Each bad input is a clear error naming the Dockerfile line; no tag moved, nothing
    half-written."""
    dockerfile, code, step, message = CASES[case]
    if case == "failing RUN":
        require_containers(shared_daemon)
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    context = tmp_path / "ctx" / "deeper"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(dockerfile)
    (context / "a").write_text("a\n")
    os.symlink("/etc", context / "hostetc")
    os.symlink("/loop", context / "loop")
    os.symlink("../..", context / "up")
    tag = f"victim-{uuid.uuid4().hex[:8]}:1"
    shared_daemon.ok("tag", "busybox", tag)
    try:
        before = _state(shared_daemon, tag)
        result = shared_daemon.cli("build", "--force-rm", "-t", tag, str(context))
        assert result.returncode == code, (result.stdout, result.stderr)
        assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
        steps = [line for line in result.stdout.splitlines() if line.startswith("Step ")]
        if step is None:
            assert steps == [] and "line " in message
        else:
            assert steps[-1] == step, result.stdout
        assert _state(shared_daemon, tag) == before
    finally:
        shared_daemon.cli("rmi", tag)


def test_failing_run_keeps_its_container_without_force_rm(shared_daemon, tmp_path: Path):
    """5. As docker does, a failed RUN's container stays for inspection unless ``--force-rm``;
    still no tag, no image and no build scratch space is left."""
    require_containers(shared_daemon)
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo partial > /p && exit 5\n")
    tag = f"never-{uuid.uuid4().hex[:8]}"
    before = {image["Id"] for image in api_get(shared_daemon, "/images/json?all=1")}
    result = shared_daemon.cli("build", "-t", tag, str(tmp_path))
    assert result.returncode == 5
    left = [c for c in api_get(shared_daemon, "/containers/json?all=1") if c["Image"] == api_get(
        shared_daemon, "/images/busybox/json")["Id"] and "exit 5" in c["Command"]]
    try:
        assert len(left) == 1 and left[0]["State"] == "exited"
        assert shared_daemon.ok("diff", left[0]["Id"]).split() == ["A", "/p"]
        assert api_get(shared_daemon, f"/images/{tag}/json") is None
        assert {image["Id"] for image in api_get(shared_daemon, "/images/json?all=1")} == before
        assert os.listdir(Path(shared_daemon.root) / "build") == []
    finally:
        for container in left:
            shared_daemon.cli("rm", "-f", container["Id"])
