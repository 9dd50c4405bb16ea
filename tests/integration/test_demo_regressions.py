"""Regressions found by walking the seed course with the demo (issue #7), each checked against what
dockerd 20.10 does for the same commands."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def context(tmp_path):
    def make(name: str, text: str):
        path = tmp_path / name
        path.mkdir()
        (path / "Dockerfile").write_text(text)
        return path
    return make


def test_rmi_of_a_tag_whose_image_is_a_parent_only_untags(shared_daemon, context):
    """The course builds ``cowsay`` then ``mycowsay`` from the same first steps, so cowsay's image
    is mycowsay's parent; ``rmi cowsay`` then prints ``Untagged: cowsay:latest`` and succeeds
    (dockerd ignores the child conflict of an image it only untagged), and the parent stays."""
    tag = uuid.uuid4().hex[:8]
    first = context("a", "FROM busybox\nRUN echo a > /a\n")
    second = context("b", "FROM busybox\nRUN echo a > /a\nCMD [\"cat\", \"/a\"]\n")
    parent_tag, child_tag = f"demo-parent-{tag}", f"demo-child-{tag}"
    try:
        parent_id = shared_daemon.ok("build", "-q", "-t", parent_tag, str(first)).strip()
        shared_daemon.ok("build", "-q", "-t", child_tag, str(second))
        done = shared_daemon.cli("rmi", parent_tag)
        assert (done.returncode, done.stdout, done.stderr) == (0, f"Untagged: {parent_tag}:latest\n", "")
        assert shared_daemon.ok("image", "inspect", "--format", "{{.Id}}", parent_id).strip() == parent_id
        assert shared_daemon.ok("run", "--rm", child_tag) == "a\n"
    finally:
        shared_daemon.cli("rmi", "-f", child_tag, parent_tag)
        shared_daemon.cli("image", "prune", "-f")


def test_push_names_the_repository_and_says_why_it_cannot(shared_daemon):
    """The course's ``docker push mydockeraccount/cowsay``: offline there is no registry, so push
    fails, as dockerd does, in-stream after naming the repository (it used to be an HTTP 405
    ``method not allowed``); a repository with no local tag gets dockerd's message."""
    repo = f"mydockeraccount/cowsay-{uuid.uuid4().hex[:8]}"
    missing = shared_daemon.cli("push", repo)
    assert missing.returncode == 1
    assert missing.stdout.endswith(f"The push refers to repository [docker.io/{repo}]\n")
    assert missing.stderr.strip().endswith(f"An image does not exist locally with the tag: {repo}")
    shared_daemon.ok("tag", "busybox", f"{repo}:latest")
    try:
        offline = shared_daemon.cli("push", repo)
        assert offline.returncode == 1
        assert offline.stdout.endswith(f"The push refers to repository [docker.io/{repo}]\n")
        assert offline.stderr.strip().endswith(f"berth has no registry to push {repo} to (offline)")
    finally:
        shared_daemon.cli("rmi", f"{repo}:latest")
