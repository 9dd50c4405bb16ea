"""``docker diff``: what a container's upper dir changed compared with the layers below it.

Kinds are docker's (Engine API "Get changes on a container's filesystem"): ``A`` added, ``C``
changed, ``D`` deleted. The rules, decided from how docker reports overlay containers:

* an upper entry whose path is not visible through the lowers is ``A`` (and so is everything
  under it);
* an overlay whiteout hiding a visible lower entry is ``D``;
* an upper entry visible below is ``C`` when its type, mode, owner or rdev differ, or, for a
  non-directory, its size or mtime (docker ignores size and mtime on directories: adding a file
  changes them, and a mount point created for a volume must not make its parent look changed);
* an opaque upper directory visible below hides the lower children it does not have: each is
  ``D`` (only the top of a deleted subtree is reported, like ``rm -rf`` shows once);
* every directory above a reported change is ``C`` (except ``/`` and directories that are ``A``),
  even when its own metadata did not change, as ``docker diff`` shows ``C /var``, ``C /var/log``
  above ``A /var/log/apt/term.log``.

Lowers are merged the way overlayfs does (overlayfs.rst "Directories"): the first lower holding
a name wins, a whiteout ends the search, a non-directory hides deeper layers and an opaque
directory stops the merge of its subtree.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from berth.snapshots import fsutil


def changes(upper: Path, lowers: list[Path], *, exclude: set[str] | None = None) -> list[tuple[str, str]]:
    """List the changes of ``upper`` over ``lowers`` as ``(kind, absolute path)``, sorted by path.

    Args:
        upper: the container's upper (diff) directory.
        lowers: the lower directories, top first (``Snapshotter.lowers``).
        exclude: absolute paths left out with everything under them: mount points such as
            volumes, ``/etc/hosts``, ``/etc/resolv.conf``; they make no parent ``C`` either.

    Returns:
        e.g. ``[("C", "/var"), ("C", "/var/log"), ("A", "/var/log/apt/term.log")]``, ordered
        by path component by component (parents first).
    """
    found: dict[str, str] = {}
    merged: list[Path] = []
    for lower in lowers:
        # Snapshotter.lowers gives l/<short> symlinks; the opaque xattr is on the directory.
        merged.append(Path(os.path.realpath(lower)))
        if fsutil.is_opaque(merged[-1]):
            break
    _diff_dir(upper, "", merged, exclude or set(), found)
    if fsutil.is_opaque(upper):
        _hidden_children("", merged, upper, exclude or set(), found)
    for path in list(found):
        parent = os.path.dirname(path)
        while parent != "/" and parent not in found:
            found[parent] = "C"
            parent = os.path.dirname(parent)
    return sorted(((kind, path) for path, kind in found.items()), key=lambda item: _path_key(item[1]))


def _path_key(path: str) -> list[bytes]:
    return [fsutil.name_key(part) for part in path.split("/")]


def _diff_dir(upper: Path, path: str, lowers: list[Path], exclude: set[str], found: dict[str, str]) -> None:
    """Compare the upper directory at ``path`` ("" for the root) with the merged ``lowers``."""
    for entry in fsutil.sorted_entries(upper / path.lstrip("/")):
        child = f"{path}/{entry.name}"
        if child in exclude:
            continue
        st = entry.stat(follow_symlinks=False)
        below, child_lowers = _lookup(lowers, entry.name)
        if fsutil.is_whiteout(st):
            if below is not None:
                found[child] = "D"
            continue
        if below is None:
            _all_added(upper, child, st, exclude, found)
            continue
        if _differs(st, below):
            found[child] = "C"
        if stat.S_ISDIR(st.st_mode):
            if fsutil.is_opaque(entry.path) and stat.S_ISDIR(below.st_mode):
                found[child] = "C"
                _hidden_children(child, child_lowers, upper, exclude, found)
            _diff_dir(upper, child, child_lowers, exclude, found)


def _lookup(lowers: list[Path], name: str) -> tuple[os.stat_result | None, list[Path]]:
    """The lower entry ``name`` visible through ``lowers`` and the directories merged under it."""
    visible: os.stat_result | None = None
    merged: list[Path] = []
    for lower in lowers:
        path = lower / name
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if fsutil.is_whiteout(st):
            break
        if not stat.S_ISDIR(st.st_mode):
            if visible is None:
                visible = st
            break
        if visible is None:
            visible = st
        merged.append(path)
        if fsutil.is_opaque(path):
            break
    return visible, merged


def _differs(st: os.stat_result, below: os.stat_result) -> bool:
    if (st.st_mode, st.st_uid, st.st_gid, st.st_rdev) != (
        below.st_mode,
        below.st_uid,
        below.st_gid,
        below.st_rdev,
    ):
        return True
    if stat.S_ISDIR(st.st_mode):
        return False
    return st.st_size != below.st_size or st.st_mtime_ns != below.st_mtime_ns


def _all_added(upper: Path, path: str, st: os.stat_result, exclude: set[str], found: dict[str, str]) -> None:
    found[path] = "A"
    if not stat.S_ISDIR(st.st_mode):
        return
    for sub, sub_st in fsutil.walk(upper, path.lstrip("/")):
        full = "/" + sub
        if fsutil.is_whiteout(sub_st) or any(full == x or full.startswith(x + "/") for x in exclude):
            continue
        found[full] = "A"


def _hidden_children(
    path: str,
    lowers: list[Path],
    upper: Path,
    exclude: set[str],
    found: dict[str, str],
) -> None:
    """Report as ``D`` the names the merged ``lowers`` show at ``path`` that the upper lacks."""
    present = {entry.name for entry in fsutil.sorted_entries(upper / path.lstrip("/"))}
    seen: set[str] = set()
    for lower in lowers:
        for entry in fsutil.sorted_entries(lower):
            if entry.name in seen:
                continue
            seen.add(entry.name)
            child = f"{path}/{entry.name}"
            hidden = fsutil.is_whiteout(entry.stat(follow_symlinks=False))
            if not hidden and entry.name not in present and child not in exclude:
                found[child] = "D"
