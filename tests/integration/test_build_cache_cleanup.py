"""Build cache rows go with their images: removing a built image and its intermediate images
(``rmi`` of the tag, or ``image prune -a``) leaves no ``build_cache`` row naming a missing image,
and a rebuild still works and then hits the cache again. A database holding stale rows from
before (an older berth) is cleaned when the daemon starts."""

from __future__ import annotations

import sqlite3
import uuid

from tests.integration.test_build_support import build, require_containers

DOCKERFILE = """\
FROM busybox
ENV MARK={mark}
COPY a.txt /a.txt
RUN cat /a.txt > /copy.txt
LABEL step=4
CMD ["cat", "/copy.txt"]
"""


def cache_rows(daemon) -> list[tuple[str, str]]:
    """``(image_id, parent)`` of every build cache row, read from the daemon's database."""
    with sqlite3.connect(f"file:{daemon.root / 'berth.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT image_id, parent FROM build_cache").fetchall()


def image_ids(daemon) -> set[str]:
    return set(daemon.ok("images", "-a", "-q", "--no-trunc").split())


def hits(result) -> list[bool]:
    return [" ---> Using cache\n" in chunk for chunk in result.output.split("Step ")[2:]]


def test_rows_leave_with_their_images_and_the_cache_still_hits(bdaemon):
    require_containers(bdaemon)
    files = {"Dockerfile": DOCKERFILE.format(mark=uuid.uuid4().hex), "a.txt": "one\n"}
    tag = f"cachegc-{uuid.uuid4().hex[:8]}:1"
    first = build(bdaemon, files, t=tag)
    assert first.error is None, first.output
    assert len(cache_rows(bdaemon)) == 5
    bdaemon.ok("rmi", tag)
    assert image_ids(bdaemon) == {bdaemon.ok("image", "inspect", "-f", "{{.Id}}", "busybox").strip()}
    assert cache_rows(bdaemon) == []
    again = build(bdaemon, files, t=tag)
    assert again.error is None and hits(again) == [False] * 5, again.output
    live = image_ids(bdaemon)
    assert {image for image, _ in cache_rows(bdaemon)} <= live and len(cache_rows(bdaemon)) == 5
    third = build(bdaemon, files, t=tag)
    assert hits(third) == [True] * 5 and third.image_id == again.image_id
    # image prune -a removes the tag's chain too (no container uses it): its rows go with it
    bdaemon.ok("image", "prune", "-a", "-f")
    assert cache_rows(bdaemon) == []


def test_stale_rows_from_before_are_dropped_at_start(bdaemon):
    require_containers(bdaemon)
    files = {"Dockerfile": DOCKERFILE.format(mark=uuid.uuid4().hex), "a.txt": "two\n"}
    built = build(bdaemon, files, t=f"cachegc-{uuid.uuid4().hex[:8]}:1")
    assert built.error is None, built.output
    bdaemon.stop()
    with sqlite3.connect(bdaemon.root / "berth.db") as db:
        db.execute("INSERT INTO build_cache (parent, key, image_id) VALUES ('', 'sha256:stale', "
                   "'sha256:" + "0" * 64 + "')")
    bdaemon.start()
    rows = cache_rows(bdaemon)
    assert len(rows) == 5 and {image for image, _ in rows} <= image_ids(bdaemon)
    assert hits(build(bdaemon, files)) == [True] * 5
