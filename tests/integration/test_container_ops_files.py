"""The container filesystem view behind ``docker cp`` and ``docker diff``, on real directories (no
daemon): lookups that follow symlinks inside the root and cross into mounts, the archive tar, and
extraction (owners, modes, devices, links, refusals that leave nothing written). Needs root
(chown, mknod); everything lives under pytest's tmp_path.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from berth.containers import extract, fsops
from berth.errors import NotFound, SystemError_


@pytest.fixture
def tree(tmp_path: Path) -> tuple[fsops.ContainerFS, Path, Path]:
    """rootfs with /tmp/d/f, links /tmp/lnk -> /tmp/d/f, /tmp/dlnk -> d, /tmp/up -> ../../../etc,
    /tmp/loop -> loop; a volume at /data and a read-only bind of a file at /etc/hosts."""
    root, volume = tmp_path / "rootfs", tmp_path / "volume"
    (root / "tmp" / "d").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "data").mkdir()
    (root / "tmp" / "d" / "f").write_text("hi\n")
    (root / "etc" / "hosts").write_text("")
    os.symlink("/tmp/d/f", root / "tmp" / "lnk")
    os.symlink("d", root / "tmp" / "dlnk")
    os.symlink("../../../etc", root / "tmp" / "up")
    os.symlink("loop", root / "tmp" / "loop")
    volume.mkdir()
    (volume / "v").write_text("in volume\n")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    mounts = [fsops.MountEntry("/data", volume, False), fsops.MountEntry("/etc/hosts", hosts, True)]
    return fsops.ContainerFS(root, mounts), root, volume


@pytest.mark.parametrize(("path", "follow", "expected"), [
    ("/tmp/lnk", True, "/tmp/d/f"), ("/tmp/lnk", False, "/tmp/lnk"), ("/tmp/dlnk/f", True, "/tmp/d/f"),
    ("/tmp/up/hosts", True, "/etc/hosts"), ("/../../tmp/d", True, "/tmp/d"), ("tmp/./d/../d", True, "/tmp/d"),
    ("/nope/x", True, "/nope/x"), ("/", True, "/"),
])
def test_resolve_stays_inside_the_root(tree, path, follow, expected):
    fs, _, _ = tree
    assert fs.resolve(path, follow_last=follow) == expected


def test_resolve_loop_and_mount_mapping(tree):
    fs, root, volume = tree
    with pytest.raises(SystemError_, match="too many levels of symbolic links"):
        fs.resolve("/tmp/loop")
    assert (fs.host("/data/v"), fs.host("/data"), fs.host("/tmp/d")) == (volume / "v", volume, root / "tmp" / "d")
    assert fs.mount_of("/datax") is None and fs.mount_of("/data/x").destination == "/data"


@pytest.mark.parametrize(("path", "name", "mode", "link"), [
    ("/tmp/d", "d", 2147484141, ""), ("/tmp/lnk", "lnk", 134218239, "/tmp/d/f"), ("/tmp/dlnk/", "dlnk", 2147484141, ""),
    ("/tmp/d/.", ".", 2147484141, ""), ("/data/v", "v", 420, ""), ("/etc/hosts", "hosts", 420, ""),
    ("/tmp/up", "up", 134218239, "/etc"),
])
def test_stat_path(tree, path, name, mode, link):
    fs, root, _ = tree
    os.chmod(root / "tmp" / "d", 0o755)
    for f in (fs.host("/data/v"), fs.host("/etc/hosts")):
        os.chmod(f, 0o644)
    info = fsops.stat_path(fs, path, "box")
    header = json.loads(base64.b64decode(info.header))
    assert (info.name, header["name"], header["mode"], header["linkTarget"]) == (name, name, mode, link)


@pytest.mark.parametrize(("path", "error", "message"), [
    ("/nope", NotFound, "Could not find the file /nope in container box"),
    ("/nope/x", NotFound, "Could not find the file /nope/x in container box"),
    ("/tmp/d/f/x", SystemError_, "not a directory"),
    ("/tmp/d/f/", SystemError_, "not a directory"),
])
def test_stat_path_errors(tree, path, error, message):
    fs, _, _ = tree
    with pytest.raises(error, match=message):
        fsops.stat_path(fs, path, "box")


def _names(fs: fsops.ContainerFS, path: str) -> list[str]:
    out = io.BytesIO()
    fsops.write_archive(fs, fsops.stat_path(fs, path, "box"), out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        return tar.getnames()


@pytest.mark.parametrize(("path", "names"), [
    ("/tmp/d", ["d", "d/f"]), ("/tmp/d/.", [".", "./f"]), ("/tmp/dlnk", ["dlnk"]), ("/tmp/dlnk/", ["dlnk", "dlnk/f"]),
    ("/data", ["data", "data/v"]),
])
def test_archive_names(tree, path, names):
    fs, _, _ = tree
    assert _names(fs, path) == names


def test_archive_descends_into_mounts(tree):
    fs, _, _ = tree
    out = io.BytesIO()
    fsops.write_archive(fs, fsops.stat_path(fs, "/", "box"), out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        # the top entry is "/" (tarfile drops a directory name's trailing slash when reading)
        assert tar.getnames()[:3] == ["", "/data", "/data/v"]
        assert tar.extractfile("/data/v").read() == b"in volume\n"
        assert tar.extractfile("/etc/hosts").read() == b"127.0.0.1 localhost\n"


def _tar(tmp_path: Path, entries: list[tuple[str, str, bytes | str]], name: str = "in.tar") -> Path:
    """A tar of (name, kind, data-or-linkname) with kind f (file), d (dir), l (symlink), h (hard link)."""
    path = tmp_path / name
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, kind, data in entries:
            info = tarfile.TarInfo(member)
            info.mtime, info.uid, info.gid, info.mode = 1_000_000_000, 1234, 4321, 0o640
            if kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o750
                tar.addfile(info)
            elif kind in ("l", "h"):
                info.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
                info.linkname = str(data)
                tar.addfile(info)
            else:
                raw = data if isinstance(data, bytes) else data.encode()
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
    return path


def test_extract_restores_metadata_and_follows_links_inside(tree, tmp_path):
    fs, root, volume = tree
    archive = _tar(tmp_path, [("new", "d", ""), ("new/f", "f", "x\n"), ("new/hl", "h", "new/f"),
                              ("new/sl", "l", "/etc/hosts"), ("dlnk/g", "f", "through link\n"), ("sub/deep", "f", "")])
    extract.extract_archive(fs, fs.resolve("/tmp"), archive, extract.ExtractOptions())
    f = root / "tmp" / "new" / "f"
    st = os.lstat(f)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), int(st.st_mtime), st.st_nlink) == (1234, 4321, 0o640,
                                                                                                1_000_000_000, 2)
    assert stat.S_IMODE(os.lstat(root / "tmp" / "new").st_mode) == 0o750
    assert int(os.lstat(root / "tmp" / "new").st_mtime) == 1_000_000_000
    assert os.readlink(root / "tmp" / "new" / "sl") == "/etc/hosts"
    assert (root / "tmp" / "d" / "g").read_text() == "through link\n"
    assert stat.S_IMODE(os.lstat(root / "tmp" / "sub").st_mode) == 0o755   # a missing parent
    extract.extract_archive(fs, "/data", _tar(tmp_path, [("w", "f", "into volume\n")], "v.tar"),
                          extract.ExtractOptions(chown=(65534, 65534)))
    assert (volume / "w").read_text() == "into volume\n" and os.lstat(volume / "w").st_uid == 65534


@pytest.mark.parametrize(("entries", "options", "message"), [
    ([("ok", "f", "1"), ("../../escape", "f", "")], extract.ExtractOptions(),
     'Error processing tar file\\(exit status 1\\): "../../escape" is outside of "/tmp"'),
    ([("ok", "f", "1"), ("hl", "h", "../../etc/passwd")], extract.ExtractOptions(), "invalid hardlink"),
    ([("ok", "f", "1"), ("d", "f", "")], extract.ExtractOptions(no_overwrite_dir_non_dir=True),
     'cannot overwrite directory "/tmp/d" with non-directory "/tmp"'),
    ([("ok", "f", "1"), ("lnk", "d", "")], extract.ExtractOptions(no_overwrite_dir_non_dir=True),
     'cannot overwrite non-directory "/tmp/lnk" with directory "/tmp"'),
    ([("ok", "d", ""), ("ok", "f", "")], extract.ExtractOptions(no_overwrite_dir_non_dir=True),
     'cannot overwrite directory "/tmp/ok" with non-directory "/tmp"'),
])
def test_extract_refuses_before_writing(tree, tmp_path, entries, options, message):
    fs, root, _ = tree
    before = sorted(p.name for p in (root / "tmp").iterdir())
    with pytest.raises(SystemError_, match=message):
        extract.extract_archive(fs, "/tmp", _tar(tmp_path, entries), options)
    assert sorted(p.name for p in (root / "tmp").iterdir()) == before


def test_extract_replaces_and_rejects_garbage(tree, tmp_path):
    fs, root, _ = tree
    extract.extract_archive(fs, "/tmp", _tar(tmp_path, [("d", "f", "now a file\n")]), extract.ExtractOptions())
    assert (root / "tmp" / "d").read_text() == "now a file\n"
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"notatar\n")
    with pytest.raises(SystemError_, match="^Error processing tar file\\(exit status 1\\): unexpected EOF$"):
        extract.extract_archive(fs, "/tmp", garbage, extract.ExtractOptions())
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    extract.extract_archive(fs, "/tmp", empty, extract.ExtractOptions())


@pytest.mark.parametrize(("path", "readonly", "error", "message"), [
    ("/tmp/dlnk", False, None, "/tmp/d"), ("/nodir", False, NotFound, "Could not find the file /nodir in container box"),
    ("/tmp/d/f", False, SystemError_, "^extraction point is not a directory$"),
    ("/tmp/lnk", False, SystemError_, "^extraction point is not a directory$"),
    ("/tmp", True, SystemError_, "^container rootfs is marked read-only$"), ("/data", True, None, "/data"),
])
def test_extraction_dir(tree, path, readonly, error, message):
    fs, _, _ = tree
    if error is None:
        assert extract.extraction_dir(fs, path, "box", readonly) == message
    else:
        with pytest.raises(error, match=message):
            extract.extraction_dir(fs, path, "box", readonly)


def test_read_only_mount_refused(tmp_path):
    (tmp_path / "root" / "mnt").mkdir(parents=True)
    fs = fsops.ContainerFS(tmp_path / "root", [fsops.MountEntry("/mnt", tmp_path, True)])
    with pytest.raises(SystemError_, match="^mounted volume is marked read-only$"):
        extract.extraction_dir(fs, "/mnt", "box", False)


def test_changes_show_mount_points_not_their_content(tmp_path):
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    for d in ("etc", "bin", "tmp"):
        (lower / d).mkdir(parents=True)
    (lower / "bin" / "ls").write_text("ls")
    (lower / "etc" / "hosts").write_text("")
    (upper / "data" / "x").mkdir(parents=True)
    (upper / "tmp").mkdir()
    (upper / "tmp" / "new").write_text("1")
    (upper / "etc").mkdir()
    (upper / "etc" / "hosts").write_text("changed by a bind mount")
    (upper / "bin").mkdir()
    os.mknod(upper / "bin" / "ls", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    rows = fsops.container_changes(upper, [lower], ["/data"])
    assert rows == [{"Path": "/bin", "Kind": 0}, {"Path": "/bin/ls", "Kind": 2}, {"Path": "/data", "Kind": 1},
                    {"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/new", "Kind": 1}]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fsops.container_changes(empty, [lower], []) is None


def test_extract_never_writes_through_links_into_read_only_places(tmp_path):
    root, ro_source = tmp_path / "root", tmp_path / "ro"
    (root / "tmp").mkdir(parents=True)
    (root / "mnt").mkdir()
    ro_source.mkdir()
    fs = fsops.ContainerFS(root, [fsops.MountEntry("/mnt", ro_source, True)])
    archive = tmp_path / "in.tar"
    with tarfile.open(archive, "w") as tar:
        link = tarfile.TarInfo("l")
        link.type, link.linkname = tarfile.SYMTYPE, "/mnt"
        tar.addfile(link)
        tar.addfile(tarfile.TarInfo("l/x"), io.BytesIO(b""))
    with pytest.raises(SystemError_, match="open /mnt/x: read-only file system"):
        extract.extract_archive(fs, "/tmp", archive, extract.ExtractOptions())
    assert list(ro_source.iterdir()) == []
    with pytest.raises(SystemError_, match="open /tmp/l: read-only file system"):
        extract.extract_archive(fs, "/tmp", archive, extract.ExtractOptions(readonly_rootfs=True))
