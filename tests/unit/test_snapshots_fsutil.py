"""fsutil and tarutil: rooted path resolution, member-name rules, walks and sizes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from berth.errors import InvalidParameter
from berth.snapshots import fsutil
from berth.snapshots.tarutil import clean_name

# (symlinks to create inside root: name -> target, path to resolve, expected result relative to root)
SECURE_JOIN = [
    ({}, "a/b", "a/b"),
    ({}, "/a/b", "a/b"),
    ({}, "../../etc/passwd", "etc/passwd"),
    ({}, "a/../../../b", "b"),
    ({}, "./a/./b/", "a/b"),
    ({}, "", ""),
    ({}, "/", ""),
    ({"abs": "/etc"}, "abs/passwd", "etc/passwd"),
    ({"rel": "../../../../etc"}, "rel/passwd", "etc/passwd"),
    ({"dir/up": ".."}, "dir/up/dir/up/x", "x"),
    ({"dir/up": ".."}, "dir/up/up/x", "up/x"),
    ({"dir/sib": "../other"}, "dir/sib/f", "other/f"),
    ({"dir/abs": "/x/y"}, "dir/abs/../z", "x/z"),
    ({"chain1": "chain2", "chain2": "/final"}, "chain1/f", "final/f"),
    ({"last": "/target"}, "last", "target"),
    ({"dangling": "/nowhere/deep"}, "dangling/f", "nowhere/deep/f"),
    ({"dir/dot": "."}, "dir/dot/dot/f", "dir/f"),
]


@pytest.mark.parametrize(("links", "path", "expected"), SECURE_JOIN)
def test_secure_join(tmp_path: Path, links: dict[str, str], path: str, expected: str) -> None:
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    for name, target in links.items():
        os.symlink(target, root / name)
    assert fsutil.secure_join(root, path) == (root / expected if expected else root)


def test_secure_join_loop(tmp_path: Path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(InvalidParameter, match="too many levels of symbolic links"):
        fsutil.secure_join(tmp_path, "a/x")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/b", "a/b"),
        ("./a/b/", "a/b"),
        ("/abs/file", "abs/file"),
        ("a/../b", "b"),
        ("./", ""),
        ("/", ""),
        (".", ""),
        ("a//b/./c", "a/b/c"),
    ],
)
def test_clean_name(name: str, expected: str) -> None:
    assert clean_name(name) == expected


@pytest.mark.parametrize("name", ["../evil", "/abs/../../evil", "a/../../evil", "..", "./../x"])
def test_clean_name_refuses_escapes(name: str) -> None:
    with pytest.raises(
        InvalidParameter, match=re.escape(f'unpacking layer: "{name}" is outside of the layer root')
    ):
        clean_name(name)


def test_walk_order_and_size(tmp_path: Path) -> None:
    for rel in ["b/z", "a-b", "a/y", "a/x"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"12345")
    os.link(tmp_path / "a/x", tmp_path / "hard")
    os.symlink("a/x", tmp_path / "sym")
    names = [rel for rel, _ in fsutil.walk(tmp_path)]
    assert names == ["a", "a/x", "a/y", "a-b", "b", "b/z", "hard", "sym"]
    # 4 files of 5 bytes (the hard link once) + the symlink's 3-byte target.
    assert fsutil.tree_size(tmp_path) == 4 * 5 + 3
