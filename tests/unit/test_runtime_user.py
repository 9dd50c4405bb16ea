"""``--user`` resolution against an image's passwd/group, and path resolution inside a rootfs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.errors import SystemError_
from berth.runtime import linux
from berth.runtime.mounts import parse_options, secure_join
from berth.runtime.user import ExecUser, resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
# a comment
broken line
app:x:1000:1000:App:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
wheel:x:10:root,app
staff:x:50:app
app:x:1000:
users:x:100:daemon
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(PASSWD)
    (tmp_path / "etc/group").write_text(GROUP)
    return tmp_path


@pytest.mark.parametrize("user, expected", [
    ("", ExecUser(0, 0, (0, 10), "/root")),
    ("root", ExecUser(0, 0, (0, 10), "/root")),
    ("0", ExecUser(0, 0, (0, 10), "/root")),
    ("app", ExecUser(1000, 1000, (1000, 10, 50), "/home/app")),
    ("1000", ExecUser(1000, 1000, (1000, 10, 50), "/home/app")),
    ("daemon", ExecUser(1, 1, (1, 100), "/usr/sbin")),
    ("app:staff", ExecUser(1000, 50, (50,), "/home/app")),
    ("app:0", ExecUser(1000, 0, (0,), "/home/app")),
    ("1000:1000", ExecUser(1000, 1000, (1000,), "/home/app")),
    ("4242", ExecUser(4242, 0, (0,), "/")),
    ("4242:4343", ExecUser(4242, 4343, (4343,), "/")),
    ("4242:users", ExecUser(4242, 100, (100,), "/")),
])
def test_resolve_user(rootfs: Path, user: str, expected: ExecUser) -> None:
    assert resolve_user(rootfs, user) == expected


def test_group_add(rootfs: Path) -> None:
    assert resolve_user(rootfs, "app", ["users", "777", "wheel"]).additional_gids == (1000, 10, 50, 100, 777)


@pytest.mark.parametrize("user, group_add, message", [
    ("foo", [], "unable to find user foo: no matching entries in passwd file"),
    ("app:nogroup", [], "unable to find group nogroup: no matching entries in group file"),
    ("app", ["nogroup"], "Unable to find group nogroup"),
    ("99999999999", [], "uids and gids must be in range 0-2147483647"),
])
def test_resolve_user_errors(rootfs: Path, user: str, group_add: list[str], message: str) -> None:
    with pytest.raises(SystemError_) as info:
        resolve_user(rootfs, user, group_add)
    assert info.value.message == message


def test_missing_files(tmp_path: Path) -> None:
    assert resolve_user(tmp_path, "") == ExecUser(0, 0, (0,), "/")
    assert resolve_user(tmp_path, "1000:1000") == ExecUser(1000, 1000, (1000,), "/")
    with pytest.raises(SystemError_, match="unable to find user app"):
        resolve_user(tmp_path, "app")


def test_passwd_symlink_cannot_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("evil:x:0:0::/evil:/bin/sh\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").symlink_to("../../outside/passwd")
    with pytest.raises(SystemError_):
        resolve_user(root, "evil")
    (root / "outside").mkdir()
    (root / "outside/passwd").write_text("inside:x:5:5::/in:/bin/sh\n")
    assert resolve_user(root, "inside") == ExecUser(5, 5, (5,), "/in")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for d in ("a/b", "etc", "usr/lib"):
        (tmp_path / d).mkdir(parents=True)
    os.symlink("/etc", tmp_path / "abs")
    os.symlink("../../..", tmp_path / "a/b/up")
    os.symlink("usr/lib", tmp_path / "lib")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    return tmp_path


@pytest.mark.parametrize("path, expected", [
    ("/etc/passwd", "etc/passwd"),
    ("etc/../../../etc", "etc"),
    ("/abs/hosts", "etc/hosts"),
    ("/a/b/up/etc", "etc"),
    ("/lib/x.so", "usr/lib/x.so"),
    ("/a/./b/../b", "a/b"),
    ("/", ""),
    ("/missing/deep/file", "missing/deep/file"),
])
def test_secure_join(tree: Path, path: str, expected: str) -> None:
    assert secure_join(tree, path) == (tree / expected if expected else tree)


def test_secure_join_loop(tree: Path) -> None:
    with pytest.raises(OSError):
        secure_join(tree, "/loop1/x")


@pytest.mark.parametrize("options, flags, propagation, data", [
    (["nosuid", "noexec", "nodev"], linux.MS_NOSUID | linux.MS_NOEXEC | linux.MS_NODEV, 0, ""),
    (["rbind", "ro", "rprivate"], linux.MS_BIND | linux.MS_REC | linux.MS_RDONLY,
     linux.MS_PRIVATE | linux.MS_REC, ""),
    (["ro", "rw", "mode=755", "size=65536k"], 0, 0, "mode=755,size=65536k"),
    (["bind", "rslave"], linux.MS_BIND, linux.MS_SLAVE | linux.MS_REC, ""),
    (["noexec", "exec", "strictatime"], linux.MS_STRICTATIME, 0, ""),
])
def test_parse_options(options: list[str], flags: int, propagation: int, data: str) -> None:
    assert parse_options(options) == (flags, propagation, data)
