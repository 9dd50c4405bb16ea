"""Context unpacking, tarsums (checked against sums dockerd 20.10 printed), COPY source rules."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from berth.build import copy as copying
from berth.build.context import open_context, read_dockerfile
from berth.build.identity import parse_chmod, parse_chown
from berth.build.sources import SourceTree
from berth.errors import InvalidParameter


def make_tar(entries: list[tuple], compress: str = "") -> bytes:
    """Entries: (name, bytes) files 0644, (name, "dir"), (name, "link", target), (name, "hard", target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:" + compress, format=tarfile.PAX_FORMAT) as tar:
        for name, kind, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1600000000
            if isinstance(kind, bytes):
                info.size, info.mode = len(kind), 0o644
                tar.addfile(info, io.BytesIO(kind))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "link": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind]
            info.mode = 0o755 if kind == "dir" else 0o777
            info.linkname = rest[0] if rest else ""
            tar.addfile(info)
    return buf.getvalue()


CONTEXT = [("Dockerfile", b"FROM busybox\n"), ("a.txt", b"hello\n"), ("d", "dir"), ("d/f", b"ff\n"),
           ("abs", "link", "/etc/passwd"), ("up", "link", "../../../etc"), ("d/g", "hard", "d/f")]


@pytest.fixture
def context(tmp_path: Path):
    root = tmp_path / "ctx"
    root.mkdir()
    return open_context(io.BytesIO(make_tar(CONTEXT, "gz")), root)


def test_sums_match_what_dockerd_printed(context):
    tree = context.tree
    # dockerd 20.10 wrote these for the same tar: COPY a.txt, COPY d, COPY a.txt d /m/.
    assert tree.source_sum("a.txt") == "file:00ec16333078d287782d462baefc8bb9eb0231dc3aefba3ca3e2f7e5cf0cadda"
    assert tree.source_sum("/a.txt") == tree.source_sum("./a.txt") == tree.source_sum("a.txt")
    assert context.dockerfile_text == "FROM busybox\n" and context.dockerfile_name == "Dockerfile"


def test_dir_and_multi_sums(tmp_path: Path):
    root = tmp_path / "ctx"
    root.mkdir()
    ctx = open_context(io.BytesIO(make_tar([("Dockerfile", b"x"), ("a.txt", b"hello\n"), ("d", "dir"),
                                            ("d/f", b"ff\n")])), root)
    d = ctx.tree.source_sum("d")
    assert d == "dir:7b09826b37202f827ee056101fcee118e0c2b9a7b98a2f642208b693327b0316"
    sources = copying.resolve_sources(ctx.tree, ["a.txt", "d"], "COPY", in_context=True)
    assert copying.sources_sum(sources) == "multi:30275e463a39f89eaf9d82f03bc40cce610d9f86f4c954327a6de547eb3a764f"


def test_unpacking_keeps_links_inside(context):
    root = context.tree.root
    assert os.readlink(root / "abs") == "/etc/passwd" and os.readlink(root / "up") == "../../../etc"
    assert os.stat(root / "d/g").st_ino == os.stat(root / "d/f").st_ino
    # Resolution through either link stays in the context: no host file is reachable.
    assert context.tree.resolve("abs") == root / "etc/passwd"
    assert context.tree.resolve("up/passwd") == root / "etc/passwd"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/../../x"])
def test_unpacking_refuses_names_outside(tmp_path: Path, name):
    with pytest.raises(InvalidParameter, match="outside of the build context"):
        open_context(io.BytesIO(make_tar([(name, b"x")])), tmp_path)


def test_symlink_parent_cannot_write_outside(tmp_path: Path):
    root = tmp_path / "ctx"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    open_context(io.BytesIO(make_tar([("Dockerfile", b"x"), ("l", "link", str(outside)), ("l/f", b"x")])), root)
    assert not (outside / "f").exists()
    assert (root / str(outside).lstrip("/") / "f").is_file()


def test_dockerfile_lookup_and_trim(tmp_path: Path):
    root = tmp_path / "ctx"
    root.mkdir()
    tar = make_tar([("dockerfile", b"FROM x\n"), (".dockerignore", b"dockerfile\n.dockerignore\n"), ("keep", b"")])
    ctx = open_context(io.BytesIO(tar), root)
    assert ctx.dockerfile_name == "dockerfile"
    assert sorted(os.listdir(root)) == ["keep"]
    with pytest.raises(InvalidParameter, match="Cannot locate specified Dockerfile: Nope"):
        read_dockerfile(root, "Nope")


@pytest.mark.parametrize("source, message", [
    ("../x", "COPY failed: forbidden path outside the build context: ../x ()"),
    ("/../a", "COPY failed: forbidden path outside the build context: ../a ()"),
    ("a/../../x", "COPY failed: forbidden path outside the build context: a/../../x ()"),
    ("nope", "COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does "
             "not exist"),
    ("abs", "COPY failed: file not found in build context or excluded by .dockerignore: stat abs: file does "
            "not exist"),
    ("*.none", "COPY failed: no source files were specified"),
])
def test_source_errors(context, source, message):
    with pytest.raises(InvalidParameter) as err:
        copying.resolve_sources(context.tree, [source], "COPY", in_context=True)
    assert err.value.message == message


def test_symlink_loop_names_the_instruction(tmp_path: Path):
    """A context link that leads back to itself (``loop -> /loop``: the context is "/") is an
    error of the step, worded like the step's other failures."""
    root = tmp_path / "ctx"
    root.mkdir()
    context = open_context(io.BytesIO(make_tar([("Dockerfile", b"FROM busybox\n"), ("loop", "link", "/loop")])), root)
    with pytest.raises(InvalidParameter) as err:
        copying.resolve_sources(context.tree, ["loop/x"], "COPY", in_context=True)
    assert err.value.message == "COPY failed: loop/x: too many levels of symbolic links"


def test_wildcards_follow_go_match(tmp_path: Path):
    for name in ("a.txt", "b.txt", "c.md", "sub/x.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    tree = SourceTree(tmp_path)
    names = lambda pattern: [s.name for s in copying.resolve_sources(tree, [pattern], "COPY", in_context=True)]  # noqa: E731
    assert names("*.txt") == ["a.txt", "b.txt"]
    assert names("[ab].*") == ["a.txt", "b.txt"]
    assert names("sub/*") == ["sub/x.txt"]
    assert names("?.md") == ["c.md"]


@pytest.mark.parametrize("workdir, dest, expected", [
    ("", ".", "/"), ("/w", ".", "/w"), ("/w", "./", "/w/"), ("/w", "rel/", "/w/rel/"), ("/w", "/abs", "/abs"),
    ("/w/sub", "../x", "/w/x"),
])
def test_destination(workdir, dest, expected):
    assert copying.destination(workdir, dest) == expected


def test_several_sources_need_a_directory(context):
    sources = copying.resolve_sources(context.tree, ["a.txt", "d"], "COPY", in_context=True)
    with pytest.raises(InvalidParameter, match="When using COPY with more than one source file"):
        copying.check_destination(sources, "/x", "COPY")
    copying.check_destination(sources, "/x/", "COPY")


def test_writer_semantics(context, tmp_path: Path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "d").symlink_to("/etc")
    os.utime(rootfs / "etc", ns=(5 * 10**9, 5 * 10**9))
    writer = copying.Writer(rootfs, (1000, 1000))
    [a] = copying.resolve_sources(context.tree, ["a.txt"], "COPY", in_context=True)
    [d] = copying.resolve_sources(context.tree, ["d"], "COPY", in_context=True)
    writer.copy(a, "/etc/")        # into an existing directory
    writer.copy(a, "/new/dir/b")   # to a file path; parents created
    writer.copy(d, "/dd")          # a directory's contents
    writer.finish()
    assert (rootfs / "etc/a.txt").read_text() == "hello\n"
    assert os.stat(rootfs / "etc").st_mtime_ns == 5 * 10**9          # kept
    assert os.stat(rootfs / "new").st_mtime_ns == 0                   # created: epoch
    assert (os.stat(rootfs / "new/dir").st_mode & 0o7777) == 0o755
    st = os.stat(rootfs / "new/dir/b")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777, int(st.st_mtime)) == (1000, 1000, 0o644, 1600000000)
    assert sorted(os.listdir(rootfs / "dd")) == ["f", "g"]
    assert os.stat(rootfs / "dd/f").st_ino == os.stat(rootfs / "dd/g").st_ino


def test_writer_add_extracts_archives(tmp_path: Path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/arch.tar.xz").write_bytes(make_tar([("top", "dir"), ("top/f", b"data")], "xz"))
    (tmp_path / "src/plain.txt").write_text("not a tar")
    tree = SourceTree(tmp_path / "src")
    arch, plain = copying.resolve_sources(tree, ["arch.tar.xz", "plain.txt"], "ADD", in_context=True, extract=True)
    assert arch.extract and not plain.extract
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    writer = copying.Writer(rootfs)
    writer.copy(arch, "/opt/")
    writer.finish()
    assert (rootfs / "opt/top/f").read_bytes() == b"data"


def test_chown_and_chmod(tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:\n")
    assert parse_chown(tmp_path, "app") == (1000, 1000)
    assert parse_chown(tmp_path, "app:staff") == (1000, 50)
    assert parse_chown(tmp_path, "7:8") == (7, 8)
    prefix = "unable to convert uid/gid chown string to host mapping: "
    for spec, message in (("nosuch", "can't find uid for user nosuch: no such user: nosuch"),
                          ("1:nosuchg", "can't find gid for group nosuchg: no such group: nosuchg"),
                          ("a:b:c", "invalid chown string format: a:b:c")):
        with pytest.raises(InvalidParameter) as err:
            parse_chown(tmp_path, spec)
        assert err.value.message == prefix + message
    assert parse_chmod("755") == 0o755
    with pytest.raises(InvalidParameter):
        parse_chmod("u+x")


def test_implied_directories_are_reproducible(tmp_path: Path):
    root = tmp_path / "ctx"
    root.mkdir()
    open_context(io.BytesIO(make_tar([("Dockerfile", b"x"), ("a/b/c", b"c"), ("a", "dir")])), root)
    st_a, st_b = os.stat(root / "a"), os.stat(root / "a/b")
    assert (st_b.st_mtime_ns, st_b.st_mode & 0o7777) == (0, 0o755)   # implied by a/b/c only
    assert st_a.st_mtime_ns == 1600000000 * 10**9                     # its own entry wins
