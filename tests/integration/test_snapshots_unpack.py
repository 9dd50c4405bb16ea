"""Hostile layer tars: nothing lands outside the layer, the error says why, no snapshot is left."""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from pathlib import Path

import pytest

from berth.errors import InvalidParameter
from berth.snapshots.layer import apply_layer
from berth.snapshots.overlay import Snapshotter

T0 = 1_600_000_000


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", linkname: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mtime = kind, linkname, len(data), T0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, data


def tar_bytes(*entries: tuple) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def listing(root: Path, skip: Path) -> set[str]:
    """Every path under ``root`` except ``skip`` and what is below it."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            continue
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def host_file_state(path: str) -> tuple:
    st = os.stat(path)
    return st.st_ino, st.st_nlink, st.st_size, st.st_mtime_ns, st.st_mode


ESC = "../" * 12
MARK = f"berth-evil-{uuid.uuid4().hex[:8]}"

REFUSED = [
    (
        "dot-dot name",
        [entry("../evil", data=b"x")],
        'unpacking layer: "../evil" is outside of the layer root',
    ),
    ("deep dot-dot name", [entry(f"{ESC}tmp/{MARK}", data=b"x")], "is outside of the layer root"),
    (
        "absolute name climbing",
        [entry("/abs/../../evil", data=b"x")],
        '"/abs/../../evil" is outside of the layer root',
    ),
    (
        "hard link out",
        [entry("pw", tarfile.LNKTYPE, linkname="../../etc/passwd")],
        'unpacking layer: invalid hardlink "pw" -> "../../etc/passwd"',
    ),
    (
        "hard link climbing through a dir",
        [entry("a", tarfile.DIRTYPE), entry("pw", tarfile.LNKTYPE, linkname="a/../../etc/passwd")],
        'invalid hardlink "pw" -> "a/../../etc/passwd"',
    ),
    (
        # the link stops at the layer root ("/tmp" there), which has no tmp: dockerd's ENOENT
        "relative symlink out, then written through",
        [entry("esc", tarfile.SYMTYPE, linkname=f"{ESC}tmp"), entry(f"esc/{MARK}", data=b"x")],
        f'unpacking layer: "esc": no such file or directory (symlink "esc" -> "{ESC}tmp" leads to no directory)',
    ),
]


def test_symlinks_climbing_above_the_root_are_kept(tmp_path: Path) -> None:
    """As dockerd's chrooted unpack keeps them (``..`` stops at the root): the link is stored as
    it is, and a write through it lands inside the layer."""
    target = tmp_path / "sandbox/a/b/c/fs"
    target.mkdir(parents=True)
    layer = tar_bytes(entry("d", tarfile.DIRTYPE), entry("d/up", tarfile.SYMTYPE, linkname="../../.."),
                      entry("tmp", tarfile.DIRTYPE), entry("esc", tarfile.SYMTYPE, linkname=f"{ESC}tmp"),
                      entry(f"esc/{MARK}", data=b"inside"))
    apply_layer(target, io.BytesIO(layer))
    assert os.readlink(target / "d/up") == "../../.." and os.readlink(target / "esc") == f"{ESC}tmp"
    assert (target / "tmp" / MARK).read_bytes() == b"inside"
    assert not os.path.exists(f"/tmp/{MARK}")
    assert listing(tmp_path, target) == {"sandbox", "sandbox/a", "sandbox/a/b", "sandbox/a/b/c", "sandbox/a/b/c/fs"}


@pytest.mark.parametrize(("case", "entries", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_hostile_entries_are_refused(tmp_path: Path, case: str, entries: list, message: str) -> None:
    target = tmp_path / "sandbox/a/b/c/fs"
    target.mkdir(parents=True)
    before = listing(tmp_path, target)
    passwd = host_file_state("/etc/passwd")
    with pytest.raises(InvalidParameter) as err:
        apply_layer(target, io.BytesIO(tar_bytes(*entries)))
    assert message in str(err.value)
    assert listing(tmp_path, target) == before
    assert not os.path.exists(f"/tmp/{MARK}")
    assert host_file_state("/etc/passwd") == passwd


def test_writes_through_symlinks_stay_inside(tmp_path: Path) -> None:
    target = tmp_path / "sandbox/fs"
    target.mkdir(parents=True)
    passwd = host_file_state("/etc/passwd")
    layer = tar_bytes(
        entry("etc", tarfile.DIRTYPE),
        entry("usr/lib", tarfile.DIRTYPE),
        entry("a", tarfile.SYMTYPE, linkname="/etc"),
        entry("a/passwd", data=b"pwned\n"),
        entry("root", tarfile.SYMTYPE, linkname="/"),
        entry("root/tmp/file", data=b"inside\n"),
        entry("lib", tarfile.SYMTYPE, linkname="usr/lib"),
        entry("lib/libc.so", data=b"elf"),
        entry("h", tarfile.LNKTYPE, linkname="a/passwd"),
        entry("x", tarfile.SYMTYPE, linkname="/etc/shadow"),
        entry("x", data=b"replaces the link, does not follow it"),
    )
    apply_layer(target, io.BytesIO(layer))
    assert (target / "etc/passwd").read_bytes() == b"pwned\n"
    assert (target / "tmp/file").read_bytes() == b"inside\n"
    assert (target / "usr/lib/libc.so").read_bytes() == b"elf"
    assert os.lstat(target / "h").st_ino == os.lstat(target / "etc/passwd").st_ino
    assert not (target / "x").is_symlink() and (target / "x").read_bytes().startswith(b"replaces")
    assert os.readlink(target / "a") == "/etc"
    assert host_file_state("/etc/passwd") == passwd
    assert listing(tmp_path, target) == {"sandbox", "sandbox/fs"}


@pytest.mark.parametrize("link", ["/etc", "usr/lib", "/missing/../etc", "file"])
def test_writes_through_links_to_no_directory_are_refused(tmp_path: Path, link: str) -> None:
    """dockerd unpacks in a chroot, where writing through a link to a missing directory fails
    (ENOENT): the layer may not conjure the link's target up (issue #2, acceptance line 6)."""
    target = tmp_path / "sandbox/fs"
    target.mkdir(parents=True)
    layer = tar_bytes(entry("file", data=b"x"), entry("a", tarfile.SYMTYPE, linkname=link),
                      entry("a/passwd", data=b"pwned\n"))
    with pytest.raises(InvalidParameter, match='"a": no such file or directory'):
        apply_layer(target, io.BytesIO(layer))
    assert not (target / "etc").exists() and not (target / "usr").exists()


def test_refused_layer_leaves_no_snapshot(tmp_path: Path) -> None:
    snap = Snapshotter(tmp_path / "snapshots")
    with pytest.raises(InvalidParameter, match="invalid hardlink"):
        snap.unpack("bad", None, io.BytesIO(tar_bytes(entry("esc", tarfile.LNKTYPE, linkname="../x"))))
    assert not snap.exists("bad")
    assert sorted(os.listdir(tmp_path / "snapshots")) == ["l"]
    assert os.listdir(tmp_path / "snapshots/l") == []


def test_truncated_layer_leaves_no_snapshot(tmp_path: Path) -> None:
    snap = Snapshotter(tmp_path / "snapshots")
    data = tar_bytes(entry("big", data=b"x" * 100_000), entry("after", data=b"y"))
    with pytest.raises(InvalidParameter, match="unexpected end of data"):
        snap.unpack("cut", None, io.BytesIO(data[:50_000]))
    assert snap.keys() == []
    assert sorted(os.listdir(tmp_path / "snapshots")) == ["l"]
    assert os.listdir(tmp_path / "snapshots/l") == []
