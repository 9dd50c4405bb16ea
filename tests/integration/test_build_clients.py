"""Real clients against berthd's ``POST /build``: the docker CLI's classic builder
(``DOCKER_BUILDKIT=0``) and docker-py, each sending its own context tar."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.test_build_support import created_by, inspect

DOCKERFILE = "FROM busybox\nARG WHO=world\nCOPY greeting.txt /greeting.txt\nLABEL who=$WHO\nWORKDIR /srv\n"


def _context(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "greeting.txt").write_text("hello\n")
    (root / "ignored.txt").write_text("no\n")
    (root / ".dockerignore").write_text("ignored.txt\n")
    return root


@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")
def test_docker_cli_classic_builder(shared_daemon, tmp_path: Path):
    tag = f"cli-{uuid.uuid4().hex[:8]}:1"
    env = {**os.environ, "DOCKER_HOST": shared_daemon.host, "DOCKER_BUILDKIT": "0"}
    run = subprocess.run(["docker", "build", "-t", tag, "--build-arg", "WHO=cli", str(_context(tmp_path))],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Step 5/5 : WORKDIR /srv" in run.stdout and f"Successfully tagged {tag}" in run.stdout
    assert inspect(shared_daemon, tag)["Config"]["Labels"] == {"who": "cli"}
    assert created_by(shared_daemon, tag)[-2:] == ["/bin/sh -c #(nop)  LABEL who=cli", "/bin/sh -c #(nop) WORKDIR /srv"]
    quiet = subprocess.run(["docker", "build", "-q", str(_context(tmp_path / "q"))], env=env, capture_output=True,
                           text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stdout.strip() == inspect(shared_daemon, quiet.stdout.strip())["Id"]


def test_docker_py(shared_daemon, tmp_path: Path):
    import docker

    client = docker.APIClient(base_url=shared_daemon.host, version="1.41")
    tag = f"dockerpy-{uuid.uuid4().hex[:8]}"
    lines = list(client.build(path=str(_context(tmp_path)), tag=tag, rm=True, decode=True))
    assert any("Successfully tagged" in line.get("stream", "") for line in lines), lines
    image = client.inspect_image(tag)
    assert image["Config"]["WorkingDir"] == "/srv" and image["Config"]["Labels"] == {"who": "world"}
    with pytest.raises(docker.errors.APIError) as err:
        list(client.build(fileobj=_bad_dockerfile(), custom_context=True))
    assert "dockerfile parse error line 2: unknown instruction: NOPE" in str(err.value)


def _bad_dockerfile():
    from io import BytesIO

    from tests.integration.test_build_support import context_tar

    return BytesIO(context_tar({"Dockerfile": "FROM busybox\nNOPE x\n"}))
