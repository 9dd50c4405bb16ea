"""A build context tar with no end-of-archive blocks and no padding after its last file: the
docker CLI sends one when it adds a Dockerfile given on stdin or from outside the context
(``docker build -f - .``); dockerd (Go's archive/tar) takes EOF there as the end, so berth does.
A file whose data is cut short is still refused."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import uuid

import pytest

from tests.integration.test_build_support import post_build, require_containers, run_output


def unterminated(files: dict[str, bytes], cut: int = 0) -> bytes:
    """A tar of ``files`` without its trailing zero blocks or the last file's padding, then
    ``cut`` more bytes off."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(content), 1_600_000_000
            tar.addfile(info, io.BytesIO(content))
    end = 0
    for member in tarfile.open(fileobj=io.BytesIO(data.getvalue())):
        end = member.offset_data + member.size
    return data.getvalue()[:end - cut]


def test_a_context_without_end_blocks_builds(shared_daemon):
    require_containers(shared_daemon)
    tag = f"unterm-{uuid.uuid4().hex[:8]}"
    body = unterminated({"k.txt": b"key\n", "Dockerfile": b"FROM busybox\nCOPY k.txt /k\n"})
    assert len(body) % 512 != 0
    result = post_build(shared_daemon.host, body, {"t": tag})
    assert result.error is None, result.output
    assert run_output(shared_daemon, tag, "cat", "/k") == "key\n"
    shared_daemon.ok("rmi", tag)


def test_a_file_cut_short_is_still_refused(shared_daemon):
    body = unterminated({"Dockerfile": b"FROM busybox\n", "k.txt": b"x" * 3000}, cut=100)
    result = post_build(shared_daemon.host, body, {"t": f"unterm-{uuid.uuid4().hex[:8]}"})
    assert result.error is not None and "Error processing tar file" in result.error


@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")
def test_docker_cli_build_with_dockerfile_on_stdin(shared_daemon, tmp_path):
    require_containers(shared_daemon)
    (tmp_path / "k.txt").write_text("from stdin\n")
    tag = f"unterm-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(["docker", "-H", shared_daemon.host, "build", "-q", "-t", tag, "-f", "-", "."],
                          input="FROM busybox\nCOPY k.txt /k\n", cwd=tmp_path, capture_output=True, text=True,
                          env={**shared_daemon.env, "DOCKER_BUILDKIT": "0"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert run_output(shared_daemon, tag, "cat", "/k") == "from stdin\n"
    shared_daemon.ok("rmi", tag)
