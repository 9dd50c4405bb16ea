"""The snapshotter on real overlayfs: layers, merged views, container writes, diffs, long chains.

Every mount is registered before it is made and unmounted by the fixture, even on failure.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from berth.errors import Conflict, InvalidParameter, NotFound
from berth.snapshots import fsutil
from berth.snapshots.changes import changes
from berth.snapshots.layer import write_layer
from berth.snapshots.overlay import Snapshotter

T0 = 1_600_000_000


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", linkname: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mtime = kind, linkname, len(data), T0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, data


def tar_stream(*entries: tuple) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buf.seek(0)
    return buf


def d(name: str) -> tuple:
    return entry(name, tarfile.DIRTYPE)


BASE = [
    d("etc"),
    entry("etc/passwd", data=b"root:x:0:0\n"),
    entry("etc/group", data=b"root:x:0:\n"),
    d("dir"),
    entry("dir/x", data=b"x"),
    d("dir/sub"),
    entry("dir/sub/y", data=b"y"),
    entry("keep", data=b"keep"),
    d("bin"),
    entry("bin/busybox", data=b"\x7fELF"),
    entry("bin/sh", tarfile.LNKTYPE, linkname="bin/busybox"),
    d("var"),
    d("var/log"),
    d("var/log/apt"),
    entry("var/log/apt/history.log", data=b"one\n"),
]
SECOND = [
    d("etc"),
    entry("etc/.wh.passwd"),
    d("dir"),
    entry("dir/.wh..wh..opq"),
    entry("dir/new", data=b"new"),
    entry("added", data=b"added"),
]


@pytest.fixture
def snap(tmp_path: Path) -> Snapshotter:
    return Snapshotter(tmp_path / "snapshots")


@pytest.fixture
def mount(tmp_path: Path, snap: Snapshotter) -> Iterator[Callable[..., Path]]:
    """mount(key, readonly=False) -> target; all targets are unmounted at teardown."""
    targets: list[Path] = []

    def do(key: str, readonly: bool = False) -> Path:
        target = tmp_path / "mnt" / f"{key}-{len(targets)}"
        targets.append(target)
        snap.mount(key, target, readonly=readonly)
        return target

    yield do
    for target in reversed(targets):
        Snapshotter.unmount(target)
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()


def tree(root: Path) -> dict[str, bytes | str]:
    """What a view shows: file contents, symlink targets, "dir" for directories."""
    out: dict[str, bytes | str] = {}
    for rel, st in fsutil.walk(root):
        if stat.S_ISDIR(st.st_mode):
            out[rel] = "dir"
        elif stat.S_ISLNK(st.st_mode):
            out[rel] = "-> " + os.readlink(root / rel)
        else:
            out[rel] = (root / rel).read_bytes()
    return out


def test_two_layers_merge(snap: Snapshotter, mount) -> None:
    size = snap.unpack("base", None, tar_stream(*BASE))
    assert size == snap.usage("base") == len(b"root:x:0:0\nroot:x:0:\nxykeep\x7fELFone\n")
    snap.unpack("second", "base", tar_stream(*SECOND))
    assert snap.parent("second") == "base" and snap.children("base") == ["second"]
    view = mount("second", readonly=True)
    assert sorted(os.listdir(view / "etc")) == ["group"]
    assert os.listdir(view / "dir") == ["new"]
    assert (view / "added").read_bytes() == b"added"
    assert os.stat(view / "bin/sh").st_ino == os.stat(view / "bin/busybox").st_ino
    with pytest.raises(OSError) as err:
        (view / "etc/new").write_text("x")
    assert err.value.errno == errno.EROFS
    with pytest.raises(Conflict):
        snap.mount("second", view.parent / "rw")


def test_base_layer_alone_is_a_read_only_bind(snap: Snapshotter, mount) -> None:
    snap.unpack("base", None, tar_stream(*BASE))
    view = mount("base", readonly=True)
    assert (view / "keep").read_bytes() == b"keep"
    with pytest.raises(OSError) as err:
        (view / "keep").write_text("x")
    assert err.value.errno == errno.EROFS
    with pytest.raises(Conflict, match="snapshot base is mounted"):
        snap.remove("base")


def test_container_writes_diff_and_commit(snap: Snapshotter, mount, tmp_path: Path) -> None:
    snap.unpack("base", None, tar_stream(*BASE))
    snap.unpack("second", "base", tar_stream(*SECOND))
    snap.prepare("ctr", "second")
    rootfs = mount("ctr")
    (rootfs / "etc/new").write_text("new file")
    (rootfs / "keep").write_text("changed")
    (rootfs / "etc/group").unlink()
    (rootfs / "dir/new").unlink()
    with open(rootfs / "var/log/apt/history.log", "a") as f:
        f.write("two\n")
    (rootfs / "var/log/apt/term.log").write_text("log")

    upper, lowers = snap.upper("ctr"), snap.lowers("ctr")
    assert changes(upper, lowers) == [
        ("C", "/dir"),
        ("D", "/dir/new"),
        ("C", "/etc"),
        ("D", "/etc/group"),
        ("A", "/etc/new"),
        ("C", "/keep"),
        ("C", "/var"),
        ("C", "/var/log"),
        ("C", "/var/log/apt"),
        ("C", "/var/log/apt/history.log"),
        ("A", "/var/log/apt/term.log"),
    ]
    assert snap.usage("ctr") == len("new filechangedone\ntwo\nlog")

    layer = io.BytesIO()
    write_layer(upper, layer, lower=lowers)
    with tarfile.open(fileobj=io.BytesIO(layer.getvalue())) as tar:
        assert [m.name + ("/" if m.isdir() else "") for m in tar] == [
            "dir/",
            "dir/.wh.new",
            "etc/",
            "etc/.wh.group",
            "etc/new",
            "keep",
            "var/",
            "var/log/",
            "var/log/apt/",
            "var/log/apt/history.log",
            "var/log/apt/term.log",
        ]

    # Committing: the tar as a new layer shows what the container saw.
    layer.seek(0)
    snap.unpack("third", "second", layer)
    assert tree(mount("third", readonly=True)) == tree(rootfs)
    again = io.BytesIO()
    write_layer(snap.upper("third"), again)
    assert hashlib.sha256(again.getvalue()).digest() == hashlib.sha256(layer.getvalue()).digest()


def test_scratch_snapshot(snap: Snapshotter, mount) -> None:
    snap.prepare("scratch", None)
    rootfs = mount("scratch")
    assert os.listdir(rootfs) == []
    (rootfs / "hello").write_text("hi")
    assert changes(snap.upper("scratch"), snap.lowers("scratch")) == [("A", "/hello")]


def test_read_only_active_snapshot(snap: Snapshotter, mount) -> None:
    snap.unpack("base", None, tar_stream(*BASE))
    snap.prepare("ctr", "base")
    rootfs = mount("ctr", readonly=True)
    assert (rootfs / "keep").read_bytes() == b"keep"
    with pytest.raises(OSError) as err:
        (rootfs / "keep").write_text("x")
    assert err.value.errno == errno.EROFS


def test_two_hundred_layers_mount(snap: Snapshotter, mount) -> None:
    parent = None
    for i in range(200):
        key = f"{i:03d}" + "c" * 61  # chain-ID-sized keys
        snap.unpack(
            key, parent, tar_stream(entry(f"layer{i:03d}", data=b"%d" % i), entry("top", data=b"%d" % i))
        )
        parent = key
    assert parent is not None
    # The absolute lowerdir list alone would not fit in the one-page mount data.
    assert len(":".join(str(p) for p in snap.lowers(parent))) > 4096
    view = mount(parent, readonly=True)
    assert len(os.listdir(view)) == 201
    assert (view / "top").read_bytes() == b"199" and (view / "layer000").read_bytes() == b"0"
    snap.prepare("ctr", parent)
    rootfs = mount("ctr")
    (rootfs / "top").write_text("container")
    assert changes(snap.upper("ctr"), snap.lowers("ctr")) == [("C", "/top")]


def test_remove(snap: Snapshotter, mount, tmp_path: Path) -> None:
    snap.unpack("base", None, tar_stream(*BASE))
    snap.prepare("ctr", "base")
    with pytest.raises(Conflict, match="is the parent of snapshot ctr"):
        snap.remove("base")
    rootfs = mount("ctr")
    with pytest.raises(Conflict, match="is mounted"):
        snap.remove("ctr")
    Snapshotter.unmount(rootfs)
    Snapshotter.unmount(rootfs)  # idempotent
    snap.remove("ctr")
    snap.remove("ctr")  # idempotent
    snap.remove("base")
    assert snap.keys() == []
    assert os.listdir(tmp_path / "snapshots/l") == []


def test_mounted_lower_cannot_be_removed(snap: Snapshotter, mount) -> None:
    snap.unpack("base", None, tar_stream(*BASE))
    snap.unpack("second", "base", tar_stream(*SECOND))
    mount("second", readonly=True)
    with pytest.raises(Conflict, match="snapshot second is mounted"):
        snap.remove("second")


def test_unpack_is_idempotent_and_checks_parent(snap: Snapshotter) -> None:
    class Unreadable(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("the stream of an existing snapshot must not be read")

    size = snap.unpack("base", None, tar_stream(*BASE))
    assert snap.unpack("base", None, Unreadable()) == size  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        snap.unpack("orphan", "missing", tar_stream(*SECOND))
    assert not snap.exists("orphan")
    snap.prepare("ctr", "base")
    with pytest.raises(Conflict):
        snap.prepare("ctr", "base")
    with pytest.raises(InvalidParameter, match="is active"):
        snap.prepare("child", "ctr")
    for bad in ["", "l", "../x", "a/b", ".hidden", "a:b", "a,b"]:
        with pytest.raises(InvalidParameter):
            snap.prepare(bad, None)
    assert snap.keys() == ["base", "ctr"]


def test_cleanup_after_crash(snap: Snapshotter, tmp_path: Path) -> None:
    snap.unpack("base", None, tar_stream(*BASE))
    root = tmp_path / "snapshots"
    (root / ".tmp-crashed/fs/etc").mkdir(parents=True)
    os.symlink("../gone/fs", root / "l/DANGLING")
    snap.cleanup()
    assert sorted(os.listdir(root)) == ["base", "l"]
    assert [p.name for p in (root / "l").iterdir()] == [(root / "base/link").read_text()]
    assert snap.lowers("base") == [] and snap.exists("base")


def test_busybox_container_round(snap: Snapshotter, mount, busybox_tar: Path) -> None:
    with open(busybox_tar, "rb") as f:
        size = snap.unpack("busybox", None, f)
    assert size == snap.usage("busybox") > os.path.getsize("/usr/bin/busybox")
    assert os.stat(snap.upper("busybox") / "bin/busybox").st_nlink > 100  # applets are hard links
    snap.prepare("ctr", "busybox")
    rootfs = mount("ctr")
    script = "echo extra:x:1000:1000::/:/bin/sh >> /etc/passwd && rm /etc/shadow && mkdir -p /var/log/apt"
    subprocess.run(
        ["chroot", rootfs, "/bin/sh", "-c", script + " && echo ok > /var/log/apt/term.log"], check=True
    )
    assert changes(snap.upper("ctr"), snap.lowers("ctr")) == [
        ("C", "/etc"),
        ("C", "/etc/passwd"),
        ("D", "/etc/shadow"),
        ("C", "/var"),
        ("A", "/var/log"),
        ("A", "/var/log/apt"),
        ("A", "/var/log/apt/term.log"),
    ]
    layer = io.BytesIO()
    write_layer(snap.upper("ctr"), layer)
    layer.seek(0)
    snap.unpack("committed", "busybox", layer)
    snap.prepare("next", "committed")
    view = mount("next")
    check = "grep -q ^extra: /etc/passwd && test ! -e /etc/shadow && cat /var/log/apt/term.log"
    out = subprocess.run(["chroot", view, "/bin/sh", "-c", check], check=True, capture_output=True, text=True)
    assert out.stdout == "ok\n"
