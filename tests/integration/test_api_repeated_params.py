"""A query parameter given twice: dockerd reads the first value (Go's ``r.FormValue``). docker-py
relies on it: for a Dockerfile outside the context it sends ``dockerfile=.dockerfile.<hash>`` and
then ``dockerfile=<the Dockerfile's text>``."""

from __future__ import annotations

import json
import subprocess
import uuid

from tests.integration.test_build_support import require_containers


def test_the_first_value_wins(shared_daemon):
    label = f"rep-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        shared_daemon.ok("create", "-l", label, "busybox", "true")
    try:
        filters = json.dumps({"label": [label]})
        listed = json.loads(subprocess.run(
            ["curl", "-s", "--unix-socket", shared_daemon.sock, "-G", "http://x/v1.41/containers/json",
             "--data-urlencode", "all=1", "--data-urlencode", "limit=1", "--data-urlencode", "limit=3",
             "--data-urlencode", f"filters={filters}"], capture_output=True, text=True, check=True).stdout)
        assert len(listed) == 1
    finally:
        ids = shared_daemon.ok("ps", "-aq", "--filter", f"label={label}").split()
        shared_daemon.ok("rm", *ids)


def test_docker_py_builds_with_a_dockerfile_outside_the_context(shared_daemon, tmp_path):
    require_containers(shared_daemon)
    import docker

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "k.txt").write_text("outside\n")
    dockerfile = tmp_path / "elsewhere.Dockerfile"
    dockerfile.write_text("FROM busybox\nCOPY k.txt /k\nCMD [\"cat\", \"/k\"]\n")
    client = docker.DockerClient(base_url=shared_daemon.host, version="1.41")
    tag = f"rep-{uuid.uuid4().hex[:8]}"
    try:
        client.images.build(path=str(context), dockerfile=str(dockerfile), tag=tag)
        assert client.containers.run(tag, remove=True) == b"outside\n"
    finally:
        client.images.remove(tag)
        client.close()
