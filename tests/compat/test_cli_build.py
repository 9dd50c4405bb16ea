"""``berth build`` against a real dockerd, side by side with ``DOCKER_BUILDKIT=0 docker build``: the
output lines must be identical except image and container IDs. Images are tagged after the test run
and removed afterwards (their untagged parents go with them)."""

from __future__ import annotations

import functools
import http.server
import io
import os
import re
import subprocess
import sys
import tarfile
import threading
import uuid

import pytest

BERTH = [sys.executable, "-m", "berth.cli.main"]
DOCKERFILE = 'FROM busybox\nRUN echo hello > /hello\nCOPY a.txt /a.txt\nCOPY . /ctx/\nCMD ["cat", "/hello"]\n'


def offline(args: tuple[str, ...]) -> list[str]:
    """``build``/``run`` without a network: nothing here needs one, and the tests then do not depend
    on the shared dockerd's default bridge."""
    return [args[0], "--network", "none", *args[1:]] if args and args[0] in ("build", "run") else list(args)


def berth(dockerd, *args: str, input: str | bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "BERTH_HOST": dockerd.host}
    return subprocess.run([*BERTH, *offline(args)], input=input, capture_output=True,
                          text=not isinstance(input, bytes), env=env, cwd=cwd, timeout=300)


def docker(dockerd, *args: str, input: str | bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *offline(args)], input=input, capture_output=True,
                          text=not isinstance(input, bytes), env=dockerd.env, cwd=cwd, timeout=300)


def normalized(text: str, *tags: str) -> list[str]:
    """Output lines with IDs and the given tags replaced (they differ between two builds)."""
    for tag in tags:
        text = text.replace(tag, "TAG")
    return re.sub(r"\b[0-9a-f]{12}\b", "ID", text).splitlines()


def without_notice(stderr: str) -> str:
    """docker 28's legacy-builder deprecation notice removed from its stderr."""
    return re.sub(r"DEPRECATED: The legacy builder.*?environment-variable\.\n\n", "", stderr, flags=re.S)


@pytest.fixture
def uid():
    return "gt" + uuid.uuid4().hex[:10]


@pytest.fixture
def images(dockerd):
    names: list[str] = []
    yield names
    for name in reversed(names):
        dockerd.docker("rmi", "-f", name)


@pytest.fixture
def context(tmp_path):
    root = tmp_path / "ctx"
    (root / "sub").mkdir(parents=True)
    (root / "skip").mkdir()
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "a.txt").write_text("a\n")
    (root / "sub" / "s").write_text("s\n")
    (root / "skip" / "x").write_text("x\n")
    (root / "ignored.txt").write_text("i\n")
    os.symlink("a.txt", root / "sub" / "link")
    (root / ".dockerignore").write_text("ignored.txt\nskip\n")
    return root


def test_build_matches_docker(dockerd, uid, images, context):
    ours_tag, theirs_tag = f"{uid}-ours:1", f"{uid}-theirs:1"
    images += [ours_tag, theirs_tag]
    theirs = docker(dockerd, "build", "--no-cache", "-t", theirs_tag, str(context))
    ours = berth(dockerd, "build", "--no-cache", "-t", ours_tag, str(context))
    assert (ours.returncode, ours.stderr) == (theirs.returncode, without_notice(theirs.stderr)) == (0, "")
    assert normalized(ours.stdout, ours_tag) == normalized(theirs.stdout, theirs_tag)
    first, blank, step = ours.stdout.split("\n")[:3]  # text mode read docker's "\r\r\n" as two line ends
    assert re.fullmatch(r"Sending build context to Docker daemon  \d+\.\d+kB", first)
    assert (blank, step) == ("", "Step 1/5 : FROM busybox")
    assert ours.stdout.splitlines()[-1] == f"Successfully tagged {ours_tag}"
    ran = docker(dockerd, "run", "--rm", ours_tag)
    assert (ran.returncode, ran.stdout) == (0, "hello\n")
    listing = docker(dockerd, "run", "--rm", ours_tag, "sh", "-c", "cd /ctx && ls -A . sub && readlink sub/link")
    assert listing.stdout.split() == [".:", ".dockerignore", "Dockerfile", "a.txt", "sub", "sub:", "link", "s", "a.txt"]


def test_quiet_and_iidfile(dockerd, uid, images, context, tmp_path):
    tag = f"{uid}-q:1"
    images.append(tag)
    iidfile = tmp_path / "iid"
    iidfile.write_text("stale")
    ours = berth(dockerd, "build", "-q", "--iidfile", str(iidfile), "-t", tag, str(context))
    assert ours.returncode == 0 and ours.stderr == ""
    image_id = dockerd.docker("image", "inspect", "-f", "{{.Id}}", tag).stdout.strip()
    assert ours.stdout == f"{image_id}\n"
    assert iidfile.read_text() == image_id


def test_failing_step(dockerd, uid, context):
    (context / "bad.Dockerfile").write_text("FROM busybox\nRUN echo about to fail && exit 3\n")
    args = ["build", "--force-rm", "-f", str(context / "bad.Dockerfile"), str(context)]
    theirs, ours = docker(dockerd, *args), berth(dockerd, *args)
    assert ours.returncode == theirs.returncode == 3
    assert ours.stderr == without_notice(theirs.stderr) == (
        "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3\n")
    assert normalized(ours.stdout) == normalized(theirs.stdout)
    quiet_ours, quiet_theirs = berth(dockerd, *args[:1], "-q", *args[1:]), docker(dockerd, *args[:1], "-q", *args[1:])
    assert quiet_ours.returncode == 3 and quiet_ours.stdout == ""
    assert normalized(quiet_ours.stderr) == normalized(without_notice(quiet_theirs.stderr))


@pytest.mark.parametrize("variant", ["outside", "stdin", "stdin-only", "stdin-tar", "subdir"])
def test_context_sizes_match_docker(dockerd, uid, images, context, tmp_path, variant):
    """The "Sending build context" line for each way of giving the Dockerfile and the context."""
    dockerfile = 'FROM busybox\nCMD ["true"]\n'
    (tmp_path / "outside.Dockerfile").write_text(dockerfile)
    (context / "sub" / "Dockerfile.sub").write_text(dockerfile)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.GNU_FORMAT) as archive:
        archive.add(context, ".")
    cases = {
        "outside": (["-f", str(tmp_path / "outside.Dockerfile"), str(context)], b""),
        "stdin": (["-f", "-", str(context)], dockerfile.encode()),
        "stdin-only": (["-"], dockerfile.encode()),
        "stdin-tar": (["-"], tar.getvalue()),
        "subdir": (["-f", str(context / "sub" / "Dockerfile.sub"), str(context)], b""),
    }
    args, stdin = cases[variant]
    ours_tag, theirs_tag = f"{uid}-ours:1", f"{uid}-theirs:1"
    images += [ours_tag, theirs_tag]
    ours = berth(dockerd, "build", "--no-cache", "-t", ours_tag, *args, input=stdin)
    theirs = docker(dockerd, "build", "--no-cache", "-t", theirs_tag, *args, input=stdin)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout.split(b"\n")[0] == theirs.stdout.split(b"\n")[0]
    assert normalized(ours.stdout.decode(), ours_tag) == normalized(theirs.stdout.decode(), theirs_tag)


def test_stdin_pax_tar_is_a_dockerfile_as_for_docker(dockerd, context):
    """docker reads a tar whose first header is a PAX header as a Dockerfile (its check sees 512
    bytes only), and the daemon then refuses that "Dockerfile"; berth does the same."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.add(context / "Dockerfile", "Dockerfile")
    ours = berth(dockerd, "build", "-", input=tar.getvalue())
    theirs = docker(dockerd, "build", "-", input=tar.getvalue())
    assert ours.returncode == theirs.returncode == 1
    assert ours.stdout.split(b"\n")[0] == theirs.stdout.split(b"\n")[0]


@pytest.mark.parametrize(("args", "message"), [
    (["gt-no-such-dir"], 'unable to prepare context: path "gt-no-such-dir" not found\n'),
    (["-f", "gt-no-such-file", "."], "unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                                     "lstat {cwd}/gt-no-such-file: no such file or directory\n"),
])
def test_context_errors(dockerd, context, args, message):
    ours = berth(dockerd, "build", *args, cwd=context)
    theirs = docker(dockerd, "build", *args, cwd=context)
    assert (ours.returncode, ours.stdout, ours.stderr) == (1, "", message.format(cwd=context))
    assert (theirs.returncode, without_notice(theirs.stderr)) == (1, ours.stderr)


def test_build_args_labels_and_target(dockerd, uid, images, tmp_path, monkeypatch):
    (tmp_path / "Dockerfile").write_text("FROM busybox AS first\nARG GREETING\nARG FROM_ENV\n"
                                         "RUN echo \"$GREETING $FROM_ENV\" > /greeting\n"
                                         "FROM first AS second\nRUN false\n")
    tag = f"{uid}-args:1"
    images.append(tag)
    monkeypatch.setenv("FROM_ENV", "from-env")
    ours = berth(dockerd, "build", "--build-arg", "GREETING=hi", "--build-arg", "FROM_ENV", "--label", f"suite={uid}",
                 "--target", "first", "-t", tag, str(tmp_path))
    assert ours.returncode == 0, ours.stderr
    ran = docker(dockerd, "run", "--rm", tag, "cat", "/greeting")
    assert ran.stdout == "hi from-env\n"
    assert dockerd.docker("image", "inspect", "-f", "{{.Config.Labels.suite}}", tag).stdout.strip() == uid


def test_remote_tarball_context(dockerd, uid, images, context, tmp_path):
    """A URL context is fetched by the daemon (``remote=``); the server here listens on loopback only."""
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "ctx.tar.gz", "w:gz") as archive:
        archive.add(context, ".")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    tag = f"{uid}-remote:1"
    images.append(tag)
    try:
        ours = berth(dockerd, "build", "-t", tag, f"http://127.0.0.1:{server.server_port}/ctx.tar.gz")
    finally:
        server.shutdown()
        server.server_close()
    assert ours.returncode == 0, ours.stderr
    assert "Sending build context" not in ours.stdout
    assert ours.stdout.splitlines()[-1] == f"Successfully tagged {tag}"
    assert docker(dockerd, "run", "--rm", tag).stdout == "hello\n"
