"""The build cache through a real berthd: hits on rebuild, mtimes ignored, content and build-arg
changes miss from the step that sees them, --no-cache, restarts, --cache-from."""

from __future__ import annotations

import json
import uuid

from tests.integration.test_build_support import build, context_tar, inspect, post_build, require_containers

DOCKERFILE = """\
FROM busybox
ARG A=1
ENV MARK={mark}
COPY a.txt /a.txt
RUN cat /a.txt > /copy.txt
COPY b.txt /b.txt
RUN echo "a=$A" > /arg.txt
CMD ["cat", "/copy.txt"]
"""


def _files(mark: str, a: str = "one\n", b: str = "two\n") -> dict[str, str]:
    return {"Dockerfile": DOCKERFILE.format(mark=mark), "a.txt": a, "b.txt": b}


def _hits(result) -> list[bool]:
    """For each step after FROM: was it a cache hit?"""
    chunks = result.output.split("Step ")[2:]
    return [" ---> Using cache\n" in chunk for chunk in chunks]


def test_rebuild_hits_touch_hits_content_misses(bdaemon):
    require_containers(bdaemon)
    mark = uuid.uuid4().hex
    first = build(bdaemon, _files(mark), t="cache:1")
    assert first.error is None, first.output
    assert _hits(first) == [False] * 7
    again = build(bdaemon, _files(mark), t="cache:2")
    assert _hits(again) == [True] * 7 and again.image_id == first.image_id
    assert "Running in" not in again.output
    # Only mtimes differ: COPY compares content and metadata, never times.
    touched = post_build(bdaemon.host, context_tar(_files(mark), mtime=1700000000))
    assert _hits(touched) == [True] * 7
    # A change in b.txt misses at its COPY and every step after it.
    changed = build(bdaemon, _files(mark, b="changed\n"))
    assert _hits(changed) == [True, True, True, True, False, False, False]
    # A mode change is a metadata change: a miss too.
    chmod = post_build(bdaemon.host, context_tar(_files(mark), modes={"a.txt": 0o600}))
    assert _hits(chmod) == [True, True, False, False, False, False, False]


def test_build_arg_change_misses_from_first_use(bdaemon):
    require_containers(bdaemon)
    mark = uuid.uuid4().hex
    build(bdaemon, _files(mark), buildargs={"A": "1"})
    other = build(bdaemon, _files(mark), buildargs={"A": "2"})
    # ARG itself, ENV and COPY hit; the first RUN has A in its environment (and its history shows
    # "|1 A=2"): it misses, and so does everything after it.
    assert _hits(other) == [True, True, True, False, False, False, False]
    assert other.error is None, other.output


def test_no_cache_runs_everything(bdaemon):
    require_containers(bdaemon)
    mark = uuid.uuid4().hex
    first = build(bdaemon, _files(mark))
    fresh = build(bdaemon, _files(mark), nocache=1)
    assert _hits(fresh) == [False] * 7 and fresh.image_id != first.image_id
    # --no-cache builds still feed the cache.
    assert _hits(build(bdaemon, _files(mark))) == [True] * 7


def test_cache_survives_daemon_restart(bdaemon):
    require_containers(bdaemon)
    mark = uuid.uuid4().hex
    first = build(bdaemon, _files(mark))
    bdaemon.restart()
    again = build(bdaemon, _files(mark))
    assert _hits(again) == [True] * 7 and again.image_id == first.image_id


def test_cache_from_a_loaded_image(bdaemon):
    require_containers(bdaemon)
    mark = uuid.uuid4().hex
    first = build(bdaemon, _files(mark), t="cachesrc:1")
    saved = bdaemon.cli("save", "cachesrc:1", input=b"").stdout
    bdaemon.ok("rmi", "cachesrc:1")  # takes the intermediate images (the local cache) with it
    assert inspect(bdaemon, first.image_id) is None
    bdaemon.ok("load", input=saved)
    loaded = inspect(bdaemon, "cachesrc:1")
    assert loaded["Parent"] == ""
    again = build(bdaemon, _files(mark), cachefrom=json.dumps(["cachesrc:1"]))
    assert _hits(again) == [True] * 7, (again.output, again.body)
    assert again.image_id == loaded["Id"] and "Running in" not in again.output

