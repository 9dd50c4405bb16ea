"""Path rules of ``berth cp`` ("docker cp" reference) and the local tar round trip it relies on."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from berth.cli.commands.cp import (
    CopyError,
    CopyInfo,
    asserts_directory,
    extract_archive,
    local_destination,
    local_source,
    plan_copy,
    rebase,
    rebase_name,
    source_entries,
    split_cp_arg,
    split_dir_entry,
)
from berth.cli.tarstream import TarStream


@pytest.mark.parametrize(("arg", "expected"), [
    ("c1:/tmp/x", ("c1", "/tmp/x")),
    ("c1:", ("c1", "")),
    ("c1:rel/x", ("c1", "rel/x")),
    ("/abs/with:colon", ("", "/abs/with:colon")),
    ("./rel:colon", ("", "./rel:colon")),
    ("plain", ("", "plain")),
    ("-", ("", "-")),
])
def test_split_cp_arg(arg, expected):
    assert split_cp_arg(arg) == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("/a/b", ("/a", "b")),
    ("/a/b/", ("/a", "b")),
    ("/a/b/.", ("/a/b", ".")),
    ("/a//b", ("/a", "b")),
    ("/", ("/", "/")),
    ("b", (".", "b")),
    (".", (".", ".")),
    ("", (".", ".")),
])
def test_split_dir_entry(path, expected):
    assert split_dir_entry(path) == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("/a/b/", True), ("/a/b/.", True), (".", True), ("", True), ("/a/b", False), ("b", False),
])
def test_asserts_directory(path, expected):
    assert asserts_directory(path) is expected


@pytest.mark.parametrize(("path", "resolved", "expected"), [
    ("/tmp/dlnk", "/tmp/d", ("/tmp/d", "dlnk")),
    ("/tmp/dlnk/", "/tmp/d", ("/tmp/d/", "dlnk")),
    ("/tmp/dlnk/.", "/tmp/d", ("/tmp/d/.", "")),
    ("/tmp/same", "/other/same", ("/other/same", "")),
])
def test_rebase_name(path, resolved, expected):
    assert rebase_name(path, resolved) == expected


# (source, destination, expected (dir, old root, new root) or the error)
PLANS = [
    # a file into an existing directory keeps its name
    (CopyInfo("/s/f"), CopyInfo("/d", True, True), ("/d", "f", "f")),
    # a file over an existing file, or to a new name, takes the destination's name
    (CopyInfo("/s/f"), CopyInfo("/d/g", True, False), ("/d", "f", "g")),
    (CopyInfo("/s/f"), CopyInfo("/d/new"), ("/d", "f", "new")),
    # a file to a missing path that asserts a directory
    (CopyInfo("/s/f"), CopyInfo("/d/nodir/"), "no such directory"),
    (CopyInfo("/s/f"), CopyInfo("/d/nodir/."), "no such directory"),
    # a directory into an existing directory, as a whole or its contents
    (CopyInfo("/s/d", True, True), CopyInfo("/t", True, True), ("/t", "d", "d")),
    (CopyInfo("/s/d/.", True, True), CopyInfo("/t", True, True), ("/t", ".", ".")),
    # a directory to a new path is created under that name
    (CopyInfo("/s/d", True, True), CopyInfo("/t/new"), ("/t", "d", "new")),
    (CopyInfo("/s/d/.", True, True), CopyInfo("/t/new"), ("/t", ".", "new")),
    (CopyInfo("/s/d", True, True), CopyInfo("/t/new/"), ("/t", "d", "new")),
    # a directory onto a file
    (CopyInfo("/s/d", True, True), CopyInfo("/t/f", True, False), "cannot copy directory"),
    # a followed symlink keeps the name it was given
    (CopyInfo("/s/target", True, True, "link"), CopyInfo("/t", True, True), ("/t", "link", "link")),
    (CopyInfo("/s/target", True, True, "link"), CopyInfo("/t/new"), ("/t", "link", "new")),
]


@pytest.mark.parametrize(("src", "dst", "expected"), PLANS)
def test_plan_copy(src, dst, expected):
    if isinstance(expected, str):
        with pytest.raises(CopyError, match=f"^{expected}$"):
            plan_copy(src, dst)
    else:
        assert plan_copy(src, dst) == expected


@pytest.mark.parametrize(("name", "old", "new", "expected"), [
    ("d/", "d", "new", "new/"),
    ("d/f", "d", "new", "new/f"),
    ("d", "d", "new", "new"),
    ("dd/f", "d", "new", "dd/f"),
    ("./", ".", "new", "new/"),
    ("./f", ".", "new", "new/f"),
    ("f", "f", "f", "f"),
    ("/", "/", "root", "root"),
    ("/bin/sh", "/", "root", "root/bin/sh"),
])
def test_rebase(name, old, new, expected):
    assert rebase(name, old, new) == expected


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_text("a\n")
    (src / "sub" / "b").write_text("b\n")
    os.symlink("a", src / "la")
    os.link(src / "a", src / "hard")
    os.chmod(src / "sub" / "b", 0o640)
    os.symlink("src", tmp_path / "srclink")
    return tmp_path


def _listing(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            kind = "l" if os.path.islink(path) else "d" if os.path.isdir(path) else "f"
            out[rel] = (kind, oct(st.st_mode & 0o7777), os.readlink(path) if kind == "l" else
                        (open(path).read() if kind == "f" else ""))
    return out


def _copy_local(src_info, dst_path):
    dst = local_destination(dst_path)
    target, old, new = plan_copy(src_info, dst)
    stream = TarStream(source_entries(src_info, lambda name: name), owner=None)
    data = b"".join(stream)
    extract_archive(io.BytesIO(data), target, lambda name: rebase(name, old, new))
    return data


def test_round_trip_directory_to_new_name(tree):
    (tree / "out").mkdir()
    _copy_local(local_source(str(tree / "src"), False), str(tree / "out" / "copy"))
    assert _listing(tree / "out" / "copy") == _listing(tree / "src")


def test_round_trip_contents_into_existing_directory(tree):
    (tree / "out").mkdir()
    (tree / "out" / "keep").write_text("k")
    _copy_local(local_source(str(tree / "src") + "/.", False), str(tree / "out"))
    listing = _listing(tree / "out")
    assert listing.pop("keep") == ("f", "0o644", "k")
    assert listing == _listing(tree / "src")


def test_symlink_copied_as_link_unless_followed(tree):
    _copy_local(local_source(str(tree / "srclink"), False), str(tree / "asis"))
    assert os.readlink(tree / "asis") == "src"
    followed = local_source(str(tree / "srclink"), True)
    assert followed.rebase_name == "srclink" and followed.is_dir
    (tree / "out").mkdir()
    _copy_local(followed, str(tree / "out"))
    assert _listing(tree / "out" / "srclink") == _listing(tree / "src")


def test_hard_links_are_archived_once(tree):
    data = b"".join(TarStream(source_entries(local_source(str(tree / "src"), False), lambda n: n)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["src/hard"].islnk() and members["src/hard"].linkname == "src/a"
    assert list(members) == ["src", "src/a", "src/hard", "src/la", "src/sub", "src/sub/b"]


def test_local_source_errors(tree):
    with pytest.raises(CopyError, match="^not a directory$"):
        local_source(str(tree / "src" / "a") + "/", False)
    with pytest.raises(CopyError, match=r"^lstat .*/nofile: no such file or directory$"):
        local_source(str(tree / "nofile"), False)


def test_extract_refuses_type_changes(tree):
    (tree / "out").mkdir()
    (tree / "out" / "a").mkdir()
    with pytest.raises(CopyError, match="cannot overwrite directory"):
        _copy_local(local_source(str(tree / "src" / "a"), False), str(tree / "out"))


def test_extract_keeps_entries_inside_the_destination(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "out").mkdir()
    with pytest.raises(CopyError):
        extract_archive(io.BytesIO(buf.getvalue()), str(tmp_path / "out"), lambda n: n)
    assert not (tmp_path / "escape").exists()
