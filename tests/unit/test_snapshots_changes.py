"""changes(): docker diff of an upper dir over its lowers, on hand-built overlay trees.

Trees are described as ``{path: spec}`` with spec ``"dir"``, ``"opaque"`` (an opaque dir),
``"whiteout"``, ``"file:<content>"``, ``"link:<target>"``; a ``"|mode=0o700"`` or ``"|mtime=1"``
suffix changes the metadata. Every mtime is T0 unless given, so only what a case changes differs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.snapshots import fsutil
from berth.snapshots.changes import changes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts need root")

T0 = 1_600_000_000


def build(root: Path, spec: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for path, item in spec.items():
        kind, _, extra = item.partition("|")
        attrs = dict(pair.split("=") for pair in extra.split(",") if pair)
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        if kind in ("dir", "opaque"):
            full.mkdir(exist_ok=True)
            if kind == "opaque":
                fsutil.set_opaque(full)
        elif kind == "whiteout":
            fsutil.make_whiteout(full)
        elif kind.startswith("file:"):
            full.write_text(kind[5:])
        elif kind.startswith("link:"):
            os.symlink(kind[5:], full)
        if "mode" in attrs:
            os.chmod(full, int(attrs["mode"], 8))
        if "uid" in attrs:
            os.lchown(full, int(attrs["uid"]), -1)
    for rel, _ in fsutil.walk(root):
        mtime = T0 + int(
            dict(p.split("=") for p in spec.get(rel, "").partition("|")[2].split(",") if p).get("mtime", 0)
        )
        os.utime(root / rel, (mtime, mtime), follow_symlinks=False)
    return root


SEED = {"var": "dir", "var/log": "dir", "var/log/apt": "dir", "var/log/apt/history.log": "file:one"}

CASES = [
    (
        "seed: apt-get install",
        [SEED],
        {**SEED, "var/log/apt/history.log": "file:one two", "var/log/apt/term.log": "file:x"},
        [
            ("C", "/var"),
            ("C", "/var/log"),
            ("C", "/var/log/apt"),
            ("C", "/var/log/apt/history.log"),
            ("A", "/var/log/apt/term.log"),
        ],
    ),
    (
        "delete a lower file",
        [{"etc": "dir", "etc/passwd": "file:root"}],
        {"etc": "dir", "etc/passwd": "whiteout"},
        [("C", "/etc"), ("D", "/etc/passwd")],
    ),
    (
        "whiteout hiding nothing",
        [{"etc": "dir"}],
        {"etc": "dir", "etc/ghost": "whiteout"},
        [],
    ),
    (
        "new tree at the root",
        [{}],
        {"new": "dir", "new/a": "file:a", "new/b": "dir", "new/b/c": "link:/x"},
        [("A", "/new"), ("A", "/new/a"), ("A", "/new/b"), ("A", "/new/b/c")],
    ),
    (
        "opaque dir: lower children gone",
        [{"d": "dir", "d/x": "file:x", "d/y": "dir", "d/y/z": "file:z"}],
        {"d": "opaque", "d/x": "file:x", "d/w": "file:w"},
        [("C", "/d"), ("A", "/d/w"), ("D", "/d/y")],
    ),
    (
        "metadata only",
        [{"bin": "dir", "bin/sh": "file:elf", "srv": "dir"}],
        {"bin": "dir", "bin/sh": "file:elf|mode=0o700", "srv": "dir|uid=33"},
        [("C", "/bin"), ("C", "/bin/sh"), ("C", "/srv")],
    ),
    (
        "copied up, nothing changed",
        [{"etc": "dir", "etc/hosts": "file:127.0.0.1"}],
        {"etc": "dir|mtime=60", "etc/hosts": "file:127.0.0.1"},
        [],
    ),
    (
        "same size, new mtime",
        [{"etc": "dir", "etc/hosts": "file:aaaa"}],
        {"etc": "dir", "etc/hosts": "file:bbbb|mtime=1"},
        [("C", "/etc"), ("C", "/etc/hosts")],
    ),
    (
        "lower layers merged: deleted below, added again",
        [{"a": "dir", "a/b": "whiteout"}, {"a": "dir", "a/b": "file:old"}],
        {"a": "dir", "a/b": "file:new"},
        [("C", "/a"), ("A", "/a/b")],
    ),
    (
        "lower opaque dir hides deeper layers",
        [{"d": "opaque", "d/x": "file:x"}, {"d": "dir", "d/y": "file:y"}],
        {"d": "dir", "d/y": "file:y", "d/gone": "whiteout"},
        [("C", "/d"), ("A", "/d/y")],
    ),
    (
        "file replaced by a directory",
        [{"f": "file:f"}],
        {"f": "opaque", "f/child": "file:c"},
        [("C", "/f"), ("A", "/f/child")],
    ),
    (
        "symlink retargeted",
        [{"l": "link:/a"}],
        {"l": "link:/bb"},
        [("C", "/l")],
    ),
]


@pytest.mark.parametrize(("case", "lowers", "upper", "expected"), CASES, ids=[c[0] for c in CASES])
def test_changes(tmp_path: Path, case: str, lowers: list[dict], upper: dict, expected: list) -> None:
    lower_dirs = [build(tmp_path / f"lower{i}", spec) for i, spec in enumerate(lowers)]
    assert changes(build(tmp_path / "upper", upper), lower_dirs) == expected


def test_excluded_mount_points_make_no_change(tmp_path: Path) -> None:
    lower = build(tmp_path / "lower", {"etc": "dir", "etc/hostname": "file:old"})
    upper = build(
        tmp_path / "upper",
        {
            "etc": "dir|mtime=5",
            "etc/hosts": "file:",
            "etc/hostname": "file:",
            "data": "dir",
            "data/in-volume": "file:x",
            "tmp": "dir",
            "tmp/real": "file:x",
        },
    )
    found = changes(upper, [lower], exclude={"/etc/hosts", "/etc/hostname", "/data"})
    assert found == [("A", "/tmp"), ("A", "/tmp/real")]


def test_opaque_root(tmp_path: Path) -> None:
    lower = build(tmp_path / "lower", {"a": "file:a", "b": "dir"})
    upper = build(tmp_path / "upper", {"b": "dir"})
    fsutil.set_opaque(upper)
    assert changes(upper, [lower]) == [("D", "/a")]


def test_lowers_given_as_short_links(tmp_path: Path) -> None:
    top = build(tmp_path / "top", {"x": "file:x"})
    fsutil.set_opaque(top)
    build(tmp_path / "below", {"a": "file:a"})  # reached through the l/BELOW link
    (tmp_path / "l").mkdir()
    os.symlink("../top", tmp_path / "l/TOP")
    os.symlink("../below", tmp_path / "l/BELOW")
    upper = build(tmp_path / "upper", {"a": "file:new", "x": "whiteout"})
    # /a lives only under the opaque root of the top lower: hidden, so the upper's /a is new.
    assert changes(upper, [tmp_path / "l/TOP", tmp_path / "l/BELOW"]) == [("A", "/a"), ("D", "/x")]
