"""Directory mtimes after COPY and ADD (berth's rule, see ``berth.build.copy``).

dockerd 20.10's classic builder stamps the build's current time on every directory a COPY or
ADD creates or writes into (measured: ``COPY sub/ /app/sub/``, ``ADD a.tar.gz /extract/`` and
their created parents all show the time of the build). berth keeps layers reproducible instead:
the destination of a directory copy takes the source directory's mtime, an archive's destination
the mtime of the archive's root entry (``./``), and only the parents a step had to create
besides get mtime 0. Mtimes never change a step's cache identity.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import uuid

from tests.integration.test_build_support import build, post_build, require_containers, run_output

SUB, INNER, FILE, ARCHIVE_ROOT, ARCHIVE_DIR, EXISTING = (1600000000, 1500000000, 1550000000, 1450000000,
                                                         1400000000, 1300000000)


def archive(root_mtime: int | None) -> bytes:
    """A gzip tar with ``./d/x.txt`` (and a ``./`` root entry when ``root_mtime`` is given)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = ([("./", tarfile.DIRTYPE, root_mtime)] if root_mtime is not None else []) + [
            ("./d", tarfile.DIRTYPE, ARCHIVE_DIR), ("./d/x.txt", tarfile.REGTYPE, ARCHIVE_DIR)]
        for name, kind, mtime in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mtime, info.mode = kind, mtime, 0o755 if kind == tarfile.DIRTYPE else 0o644
            data = b"x\n" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


DOCKERFILE = """\
FROM busybox
LABEL mark={mark}
RUN mkdir /existing && touch -d @{existing} /existing
COPY sub/ /app/sub/
COPY sub /app2
COPY sub/ /app3/deep/er/
COPY sub /existing/
ADD root.tar.gz /extract/
ADD noroot.tar.gz /extract2/deep/
COPY f.txt /newdir/
COPY sub f.txt /mixed/
"""
PATHS = {"/app": 0, "/app/sub": SUB, "/app/sub/inner": INNER, "/app/sub/f.txt": FILE, "/app2": SUB,
         "/app3": 0, "/app3/deep": 0, "/app3/deep/er": SUB, "/existing": SUB, "/extract": ARCHIVE_ROOT,
         "/extract/d": ARCHIVE_DIR, "/extract2": 0, "/extract2/deep": 0, "/extract2/deep/d": ARCHIVE_DIR,
         "/newdir": 0, "/newdir/f.txt": FILE, "/mixed": SUB, "/mixed/f.txt": FILE, "/mixed/inner": INNER}


def context(mark: str, shift: int = 0) -> bytes:
    """The context tar; ``shift`` moves every directory mtime (the files' stay as they are)."""
    buf = io.BytesIO()
    entries = [("Dockerfile", DOCKERFILE.format(mark=mark, existing=EXISTING).encode(), FILE),
               ("sub", None, SUB + shift), ("sub/f.txt", b"a\n", FILE), ("sub/inner", None, INNER + shift),
               ("sub/inner/g.txt", b"b\n", FILE), ("f.txt", b"c\n", FILE),
               ("root.tar.gz", archive(ARCHIVE_ROOT), FILE), ("noroot.tar.gz", archive(None), FILE)]
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mtime in entries:
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_directory_copies_take_their_sources_mtime(bdaemon):
    require_containers(bdaemon)
    mark = uuid.uuid4().hex
    first = post_build(bdaemon.host, context(mark))
    assert first.error is None, first.output
    shown = run_output(bdaemon, first.image_id, "stat", "-c", "%n %Y", *PATHS)
    assert dict(line.rsplit(" ", 1) for line in shown.splitlines()) == {p: str(t) for p, t in PATHS.items()}
    # other directory mtimes: every step is still a cache hit
    again = post_build(bdaemon.host, context(mark, shift=1000))
    assert again.output.count(" ---> Using cache\n") == 10 and again.image_id == first.image_id
    # and the same context without the cache gives the same layers
    fresh = post_build(bdaemon.host, context(mark), {"nocache": 1})
    assert fresh.error is None, fresh.output
    layers = [bdaemon.ok("image", "inspect", "-f", "{{json .RootFS.Layers}}", i) for i in (first.image_id,
                                                                                           fresh.image_id)]
    assert layers[0] == layers[1]


def test_copy_of_the_context_root_keeps_mtime_zero(bdaemon):
    """The docker CLI sends no entry for the context root, so it has no mtime to copy."""
    require_containers(bdaemon)
    result = build(bdaemon, {"Dockerfile": f"FROM busybox\nLABEL m={uuid.uuid4().hex}\nCOPY . /ctx/\n",
                             "a.txt": "a\n"})
    assert result.error is None, result.output
    assert run_output(bdaemon, result.image_id, "stat", "-c", "%Y", "/ctx").strip() == "0"
