"""Bad input through a real berthd: HTTP errors before the stream (bad Dockerfile, options), step
errors in the stream with docker's wording, and nothing half-made left behind."""

from __future__ import annotations

import pytest

from tests.integration.test_build_support import api_get, build, context_tar, post_build


@pytest.mark.parametrize("files, params, message", [
    ({"Dockerfile": "FROM busybox\nFOO bar\n"}, {}, "dockerfile parse error line 2: unknown instruction: FOO"),
    ({"Dockerfile": "FROM busybox\nRUN <<EOF\necho hi\n"}, {}, "dockerfile parse error line 2: unterminated heredoc"),
    ({"Dockerfile": ""}, {}, "the Dockerfile (Dockerfile) cannot be empty"),
    ({"Dockerfile": "RUN true\n"}, {}, "no build stage in current context"),
    ({"x": "y"}, {}, "Cannot locate specified Dockerfile: Dockerfile"),
    ({"Dockerfile": "FROM busybox AS a\n"}, {"target": "b"}, "failed to reach build target b in Dockerfile"),
    # dockerd's classic builder says so in the stream when it reaches the second FROM; refused whole here
    ({"Dockerfile": "FROM busybox AS a\nRUN true\nFROM busybox AS a\n"}, {}, "a stage name already used"),
    ({"Dockerfile": "FROM busybox\n"}, {"t": "Bad:Tag"}, "invalid reference format: repository name must be lowercase"),
    ({"Dockerfile": "FROM busybox\n"}, {"version": "2"}, "BuildKit is not supported by berth: build with DOCKER_BUILDKIT=0"),
])
def test_rejected_before_the_stream(shared_daemon, files, params, message):
    result = post_build(shared_daemon.host, context_tar(files), params)
    assert (result.status, result.body.get("message")) == (400, message)


def test_corrupt_context_is_rejected(shared_daemon):
    result = post_build(shared_daemon.host, b"\x1f\x8bnot really gzip")
    assert result.status == 400


@pytest.mark.parametrize("dockerfile, message", [
    ("FROM busybox\nCOPY ../x /x\n", "COPY failed: forbidden path outside the build context: ../x ()"),
    ("FROM busybox\nCOPY a b /x\n",
     "When using COPY with more than one source file, the destination must be a directory and end with a /"),
    ("FROM busybox\nCOPY *.nothing /x/\n", "COPY failed: no source files were specified"),
    ("FROM busybox\nCOPY --chown=nosuch a /x\n",
     "unable to convert uid/gid chown string to host mapping: can't find uid for user nosuch: no such user: nosuch"),
    ("FROM busybox\nSTOPSIGNAL FOO\n", "Invalid signal: FOO"),
    ("FROM busybox\nENV A=${B:?oops}\n", 'failed to process "${B:?oops}": B: oops'),
    ("FROM busybox\nWORKDIR /bin/busybox\n", "Cannot mkdir: /bin/busybox is not a directory"),
    ("FROM nonexistent-img-zz\n", "pull access denied for nonexistent-img-zz, repository does not exist or may "
                                  "require 'docker login': No such image: nonexistent-img-zz:latest"),
    ("FROM scratch\n", "No image was generated. Is your Dockerfile empty?"),
    ("FROM busybox\nRUN --mount=type=cache,target=/c true\n",
     "the --mount option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build "
     "images with BuildKit enabled"),
])
def test_step_errors(shared_daemon, dockerfile, message):
    result = build(shared_daemon, {"Dockerfile": dockerfile, "a": "1", "b": "2"})
    assert result.status == 200 and result.error == message, result.output


def test_failed_build_leaves_no_image_or_tag(bdaemon):
    images_before = {image["Id"] for image in api_get(bdaemon, "/images/json?all=1")}
    result = build(bdaemon, {"Dockerfile": "FROM busybox\nCOPY ../x /x\n"}, t="never:1")
    assert result.error is not None
    assert api_get(bdaemon, "/images/never:1/json") is None
    assert {image["Id"] for image in api_get(bdaemon, "/images/json?all=1")} == images_before
    build_dir = bdaemon.root / "build"
    assert not build_dir.exists() or list(build_dir.iterdir()) == []
    snapshots = bdaemon.root / "snapshots"
    assert not [p.name for p in snapshots.iterdir() if p.name.startswith("build-")]
