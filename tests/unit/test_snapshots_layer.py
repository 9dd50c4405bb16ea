"""Layer tars in and out: whiteout conversion, metadata, hard links, sparse files, determinism.

These touch only a temporary directory (no mounts), but overlay whiteouts and trusted.* xattrs
need root.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import socket
import stat
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from berth.errors import InvalidParameter, NotFound
from berth.snapshots import fsutil
from berth.snapshots.layer import apply_layer, write_layer, write_tree

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts need root")

T0 = 1_600_000_000


def member(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs
) -> tuple[tarfile.TarInfo, bytes]:
    """A tar member: ``kind`` is a tarfile type, ``attrs`` any TarInfo attribute."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = attrs.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.mtime = attrs.pop("mtime", T0)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def apply(target: Path, data: bytes) -> int:
    target.mkdir(exist_ok=True)
    return apply_layer(target, io.BytesIO(data))


def layer_of(upper: Path, **kw) -> bytes:
    buf = io.BytesIO()
    write_layer(upper, buf, **kw)
    return buf.getvalue()


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name + ("/" if m.isdir() else "") for m in tar]


def d(name: str, **attrs) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, tarfile.DIRTYPE, **attrs)


def f(name: str, data: bytes = b"", **attrs) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, tarfile.REGTYPE, data, **attrs)


# --- OCI whiteouts -> overlay whiteouts -------------------------------------------------------

# Entry orders that must give the same overlay tree (image-spec: whiteouts apply to lower layers only,
# whatever their position among siblings). Expected: path -> "whiteout" | "opaque" | "dir" | "file".
WHITEOUT_ORDERS = [
    ("plain whiteout", [d("etc"), f("etc/.wh.passwd")], {"etc": "dir", "etc/passwd": "whiteout"}),
    ("opaque marker", [d("dir"), f("dir/.wh..wh..opq"), f("dir/new")], {"dir": "opaque", "dir/new": "file"}),
    (
        "marker after children",
        [d("dir"), f("dir/new"), f("dir/.wh..wh..opq")],
        {"dir": "opaque", "dir/new": "file"},
    ),
    ("marker, no dir entry", [f("gone/.wh..wh..opq")], {"gone": "opaque"}),
    ("whiteout then dir", [f(".wh.a"), d("a"), f("a/x")], {"a": "opaque", "a/x": "file"}),
    ("dir then whiteout", [d("a"), f("a/x"), f(".wh.a")], {"a": "opaque", "a/x": "file"}),
    ("whiteout then file", [f(".wh.a"), f("a", b"new")], {"a": "file"}),
    ("file then whiteout", [f("a", b"new"), f(".wh.a")], {"a": "file"}),
    ("whiteout then child", [f(".wh.a"), f("a/x")], {"a": "opaque", "a/x": "file"}),
    ("aufs metadata skipped", [f(".wh..wh.plnk/123.456"), f(".wh..wh.aufs")], {}),
]


def kind_of(path: Path) -> str:
    st = os.lstat(path)
    if fsutil.is_whiteout(st):
        return "whiteout"
    if stat.S_ISDIR(st.st_mode):
        return "opaque" if fsutil.is_opaque(path) else "dir"
    return "file"


@pytest.mark.parametrize(
    ("case", "members", "expected"), WHITEOUT_ORDERS, ids=[c[0] for c in WHITEOUT_ORDERS]
)
def test_oci_whiteouts_become_overlay_whiteouts(
    tmp_path: Path, case: str, members: list, expected: dict
) -> None:
    target = tmp_path / "fs"
    apply(target, tar_bytes(*members))
    found = {rel: kind_of(target / rel) for rel, _ in fsutil.walk(target)}
    assert found == expected


def test_whiteout_of_dot_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="invalid whiteout"):
        apply(tmp_path / "fs", tar_bytes(f("a/.wh...")))


# --- overlay whiteouts -> OCI whiteouts -------------------------------------------------------


def make_upper(upper: Path) -> None:
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/zz").write_text("new")
    fsutil.make_whiteout(upper / "etc/passwd")
    fsutil.make_whiteout(upper / "etc/-dash")
    (upper / "dir/sub").mkdir(parents=True)
    fsutil.set_opaque(upper / "dir")
    (upper / "dir/a").write_text("a")
    (upper / "sock-dir").mkdir()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(upper / "sock-dir/sock"))  # sockets have no tar type: skipped
    for rel, _ in fsutil.walk(upper):
        os.utime(upper / rel, (T0, T0), follow_symlinks=False)


def test_overlay_whiteouts_become_oci_whiteouts(tmp_path: Path) -> None:
    make_upper(tmp_path)
    data = layer_of(tmp_path)
    assert names(data) == [
        "dir/",
        "dir/.wh..wh..opq",
        "dir/a",
        "dir/sub/",
        "etc/",
        "etc/.wh.-dash",
        "etc/.wh.passwd",
        "etc/zz",
        "sock-dir/",
    ]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            if os.path.basename(m.name).startswith(".wh."):
                assert (m.type, m.size, m.mode, m.uid, m.gid, m.mtime) == (tarfile.REGTYPE, 0, 0o600, 0, 0, 0)
            assert not any(key.startswith("SCHILY.xattr.trusted.overlay") for key in m.pax_headers)
            assert (m.uname, m.gname) == ("", "")


def test_whiteouts_round_trip(tmp_path: Path) -> None:
    make_upper(tmp_path / "upper")
    data = layer_of(tmp_path / "upper")
    apply(tmp_path / "fs", data)
    assert kind_of(tmp_path / "fs/etc/passwd") == "whiteout"
    assert kind_of(tmp_path / "fs/dir") == "opaque"
    assert layer_of(tmp_path / "fs") == data


# --- determinism and round trips --------------------------------------------------------------


def populate(root: Path, order: list[str]) -> None:
    """The same tree whatever the creation ``order`` of its top-level parts."""
    for part in order:
        if part == "bin":
            (root / "bin").mkdir(parents=True)
            (root / "bin/busybox").write_bytes(b"\x7fELF" + bytes(3000))
            os.chmod(root / "bin/busybox", 0o4755)
            os.link(root / "bin/busybox", root / "bin/sh")
            os.symlink("/bin/busybox", root / "bin/ls")
        elif part == "etc":
            (root / "etc/deep/er").mkdir(parents=True)
            (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
            os.chown(root / "etc/passwd", 1234, 5678)
            os.setxattr(root / "etc/passwd", "user.note", b"\xff\x00binary")
        elif part == "dev":
            (root / "dev").mkdir(parents=True)
            os.mknod(root / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
            os.mkfifo(root / "dev/fifo", 0o600)
        elif part == "long":
            (root / ("n" * 150)).mkdir(parents=True)
            (root / ("n" * 150) / ("m" * 120)).write_text("x")
        elif part == "raw":
            root.mkdir(exist_ok=True)
            (root / os.fsdecode(b"caf\xe9")).write_text("latin-1 name")
    for rel, _ in fsutil.walk(root):
        os.utime(root / rel, (T0, T0), follow_symlinks=False)


ORDER = ["bin", "etc", "dev", "long", "raw"]


def test_write_layer_is_deterministic(tmp_path: Path) -> None:
    populate(tmp_path / "one", ORDER)
    populate(tmp_path / "two", list(reversed(ORDER)))
    first = hashlib.sha256(layer_of(tmp_path / "one")).hexdigest()
    assert hashlib.sha256(layer_of(tmp_path / "one")).hexdigest() == first
    assert hashlib.sha256(layer_of(tmp_path / "two")).hexdigest() == first


def test_round_trip_keeps_diff_id_and_metadata(tmp_path: Path) -> None:
    populate(tmp_path / "src", ORDER)
    data = layer_of(tmp_path / "src")
    size = apply(tmp_path / "fs", data)
    assert size == fsutil.tree_size(tmp_path / "fs") == fsutil.tree_size(tmp_path / "src")
    assert hashlib.sha256(layer_of(tmp_path / "fs")).digest() == hashlib.sha256(data).digest()
    fs = tmp_path / "fs"
    busybox, sh = os.lstat(fs / "bin/busybox"), os.lstat(fs / "bin/sh")
    assert (busybox.st_ino, stat.S_IMODE(busybox.st_mode)) == (sh.st_ino, 0o4755)
    assert os.readlink(fs / "bin/ls") == "/bin/busybox"
    passwd = os.lstat(fs / "etc/passwd")
    assert (passwd.st_uid, passwd.st_gid, passwd.st_mtime) == (1234, 5678, T0)
    assert os.getxattr(fs / "etc/passwd", "user.note") == b"\xff\x00binary"
    assert os.lstat(fs / "dev/null").st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO(os.lstat(fs / "dev/fifo").st_mode)
    assert os.lstat(fs / "etc/deep").st_mtime == T0  # set after its children were written
    assert (fs / os.fsdecode(b"caf\xe9")).read_text() == "latin-1 name"


def test_hard_link_entries(tmp_path: Path) -> None:
    populate(tmp_path / "src", ["bin"])
    with tarfile.open(fileobj=io.BytesIO(layer_of(tmp_path / "src"))) as tar:
        links = {m.name: m.linkname for m in tar if m.islnk()}
    assert links == {"bin/sh": "bin/busybox"}


def test_file_capability_from_schily_and_libarchive_records(tmp_path: Path) -> None:
    # vfs_cap_data revision 2, effective, permitted = CAP_NET_RAW (capability.h)
    cap = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
    ping = f("bin/ping", b"\x7fELF", mode=0o755)
    ping[0].pax_headers = {"SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape")}
    arping = f("bin/arping", b"\x7fELF", mode=0o755)
    # libarchive: url-encoded name, base64 value without padding
    arping[0].pax_headers = {
        "LIBARCHIVE.xattr.security%2Ecapability": base64.b64encode(cap).decode().rstrip("=")
    }
    apply(tmp_path / "fs", tar_bytes(d("bin"), ping, arping))
    assert os.getxattr(tmp_path / "fs/bin/ping", "security.capability") == cap
    assert os.getxattr(tmp_path / "fs/bin/arping", "security.capability") == cap
    with tarfile.open(fileobj=io.BytesIO(layer_of(tmp_path / "fs"))) as tar:
        record = tar.getmember("bin/ping").pax_headers["SCHILY.xattr.security.capability"]
    assert record.encode("utf-8", "surrogateescape") == cap


def test_overlay_xattrs_from_a_layer_are_ignored(tmp_path: Path) -> None:
    sneaky = d("dir")
    sneaky[0].pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/etc"}
    apply(tmp_path / "fs", tar_bytes(sneaky))
    assert "trusted.overlay.redirect" not in os.listxattr(tmp_path / "fs/dir")


def test_nanosecond_mtime_from_pax(tmp_path: Path) -> None:
    entry = f("file", b"x")
    entry[0].pax_headers = {"mtime": "1600000000.123456789"}
    apply(tmp_path / "fs", tar_bytes(entry))
    assert os.lstat(tmp_path / "fs/file").st_mtime_ns == 1_600_000_000_123_456_789


@pytest.mark.parametrize("fmt", ["posix", "gnu"])
def test_sparse_files_stay_sparse(tmp_path: Path, fmt: str) -> None:
    if not shutil.which("tar"):
        pytest.skip("GNU tar is not installed")
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as out:
        out.seek(8 << 20)
        out.write(b"middle")
        out.seek(16 << 20)
        out.write(b"end")
    archive = tmp_path / "layer.tar"
    subprocess.run(["tar", f"--format={fmt}", "--sparse", "-C", src, "-cf", archive, "sparse"], check=True)
    size = apply(tmp_path / "fs", archive.read_bytes())
    out_path = tmp_path / "fs/sparse"
    assert size == out_path.stat().st_size == (16 << 20) + 3
    assert out_path.read_bytes() == (src / "sparse").read_bytes()
    assert out_path.stat().st_blocks * 512 < 1 << 20


def test_hard_link_to_earlier_entry_and_to_symlink(tmp_path: Path) -> None:
    layer = tar_bytes(
        f("a", b"data"),
        member("b", tarfile.LNKTYPE, linkname="a"),
        member("s", tarfile.SYMTYPE, linkname="/nowhere"),
        member("t", tarfile.LNKTYPE, linkname="s"),
    )
    assert apply(tmp_path / "fs", layer) == 4 + len("/nowhere")
    fs = tmp_path / "fs"
    assert os.lstat(fs / "a").st_ino == os.lstat(fs / "b").st_ino
    assert os.lstat(fs / "s").st_ino == os.lstat(fs / "t").st_ino
    assert os.readlink(fs / "t") == "/nowhere"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([member("b", tarfile.LNKTYPE, linkname="later"), f("later")], "no such entry earlier in the layer"),
        ([d("dir"), member("b", tarfile.LNKTYPE, linkname="dir")], "not a file"),
        (
            [member("b", tarfile.LNKTYPE, linkname="../../etc/passwd")],
            'invalid hardlink "b" -> "../../etc/passwd"',
        ),
        ([f("file"), f("file/child")], '"file" is not a directory'),
        ([member("./", tarfile.REGTYPE)], "is not a directory"),
    ],
)
def test_bad_entries_are_refused(tmp_path: Path, members: list, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        apply(tmp_path / "fs", tar_bytes(*members))


# --- truncated and corrupt streams ------------------------------------------------------------


def two_files() -> bytes:
    return tar_bytes(f("first", b"1" * 700), f("second", b"2" * 3000), fmt=tarfile.USTAR_FORMAT)


def corrupt_second_header(data: bytes) -> bytes:
    at = 512 + 1024  # header 1 + two data blocks of "first"
    return data[:at] + b"garbage!" + data[at + 8 :]


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:3000], "unexpected end of data"),  # inside the data of "second"
        (lambda b: b[: 512 + 1024 + 100], "unexpected end of tar stream"),  # inside its header
        (lambda b: b[:600], "unexpected end of data"),  # inside the data of "first"
        (corrupt_second_header, "invalid tar header at offset 1536"),
        (lambda b: b"x" * 512, "invalid header"),
    ],
)
def test_truncated_or_corrupt_tar_raises(tmp_path: Path, mangle, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        apply(tmp_path / "fs", mangle(two_files()))


def test_empty_stream_is_an_empty_layer(tmp_path: Path) -> None:
    # docker import of a 0-byte file makes an image whose one layer is empty (diff ID e3b0c442...)
    assert apply(tmp_path / "fs", b"") == 0
    assert list((tmp_path / "fs").iterdir()) == []


def test_tar_without_end_blocks_is_accepted(tmp_path: Path) -> None:
    # Go's archive/tar (so docker) accepts a stream that stops cleanly after the last member.
    data = two_files()
    end = 512 + 1024 + 512 + 3072
    assert apply(tmp_path / "fs", data[:end]) == 3700


# --- write_tree -------------------------------------------------------------------------------


def tree_names(root: Path, **kw) -> list[str]:
    buf = io.BytesIO()
    write_tree(root, buf, **kw)
    return names(buf.getvalue())


def test_write_tree(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "var/log").mkdir(parents=True)
    (root / "var/log/syslog").write_text("x")
    os.symlink("/var", root / "link")
    assert tree_names(root) == ["link", "var/", "var/log/", "var/log/syslog"]
    assert tree_names(root, paths=["/var/log"], rename={"/var/log": "log"}) == ["log/", "log/syslog"]
    assert tree_names(root, paths=["/var/log/"]) == ["var/log/", "var/log/syslog"]
    assert tree_names(root, paths=["/var/log"], rename={"/var/log": ""}) == ["syslog"]
    # The parent is resolved inside the rootfs: /link/log is /var/log, the name stays as asked.
    assert tree_names(root, paths=["/link/log/syslog"], rename={"/link/log/syslog": "syslog"}) == ["syslog"]
    assert tree_names(root, paths=["/../../var/log/syslog"]) == ["var/log/syslog"]
    with pytest.raises(NotFound):
        tree_names(root, paths=["/nope"])
