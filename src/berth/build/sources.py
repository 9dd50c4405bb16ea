"""Trees COPY and ADD read from, and the checksums that key the build cache on their content.

A :class:`SourceTree` is a directory (the extracted build context, an image's mounted root
filesystem, a downloaded file) plus the checksum of each entry. Checksums follow docker 20.10's
classic builder so history strings match dockerd's for the same input: each entry's sum is
"tarsum v1" of one tar entry — sha256 over ``name``, ``mode``, ``uid``, ``gid``, ``size``,
``typeflag``, ``linkname``, ``uname``, ``gname``, ``devmajor``, ``devminor`` (each written as key
then decimal value) and the sorted xattrs, then the file content; mtime is left out, so touching
a file keeps its sum (the tarsum spec, docker/pkg/tarsum "Version 1"). For a context sent as a
tar the header fields are the ones received; for other trees they come from ``lstat`` as Go's
``tar.FileInfoHeader`` fills them (host user names, the full ``st_mode``). A source directory's
sum is ``dir:`` + sha256 of its entries' sums, sorted and joined by commas; several sources give
``multi:`` over their sums in order.
"""

from __future__ import annotations

import grp
import hashlib
import os
import posixpath
import pwd
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from berth.snapshots import fsutil

_CHUNK = 1 << 20
_TYPEFLAGS = {stat.S_IFREG: "0", stat.S_IFLNK: "2", stat.S_IFCHR: "3", stat.S_IFBLK: "4",
              stat.S_IFDIR: "5", stat.S_IFIFO: "6"}


def tarsum_header(fields: dict[str, Any], xattrs: dict[str, bytes] | None = None) -> Any:
    """A sha256 object primed with one entry's v1 header fields (content is added by the caller).

    ``fields`` has the keys name, mode, uid, gid, size, typeflag, linkname, uname, gname,
    devmajor, devminor.
    """
    digest = hashlib.sha256()
    for key in ("name", "mode", "uid", "gid", "size", "typeflag", "linkname", "uname", "gname",
                "devmajor", "devminor"):
        digest.update(f"{key}{fields[key]}".encode("utf-8", "surrogateescape"))
    for name in sorted(xattrs or {}):
        digest.update(name.encode("utf-8", "surrogateescape") + (xattrs or {})[name])
    return digest


def hash_strings(prefix: str, sums: Iterable[str]) -> str:
    """docker's ``hashStringSlice``: ``<prefix>:`` + sha256 of the sums joined by commas."""
    return f"{prefix}:" + hashlib.sha256(",".join(sums).encode()).hexdigest()


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def file_sum(path: Path, name: str) -> str:
    """The v1 sum of the file at ``path`` stored as ``name`` (docker's lazy source hash)."""
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    is_dir = kind == stat.S_IFDIR
    special = kind in (stat.S_IFCHR, stat.S_IFBLK)
    fields = {
        "name": name + "/" if is_dir else name, "mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
        "size": st.st_size if kind == stat.S_IFREG else 0, "typeflag": _TYPEFLAGS.get(kind, "0"),
        "linkname": os.readlink(path) if kind == stat.S_IFLNK else "",
        "uname": _user_name(st.st_uid), "gname": _group_name(st.st_gid),
        "devmajor": os.major(st.st_rdev) if special else 0, "devminor": os.minor(st.st_rdev) if special else 0,
    }
    xattrs = {}
    try:
        xattrs["security.capability"] = os.getxattr(path, "security.capability", follow_symlinks=False)
    except OSError:
        pass
    digest = tarsum_header(fields, xattrs)
    if kind == stat.S_IFREG and st.st_size > 0:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


class SourceTree:
    """A directory COPY/ADD reads from, with the checksums of its entries.

    ``sums`` maps a cleaned relative path to its sum (a tar context); without it sums are
    computed from the files on first use. ``label`` names the tree in error messages.
    """

    def __init__(self, root: Path, sums: dict[str, str] | None = None, label: str = "build context") -> None:
        self.root = Path(root)
        self.label = label
        self._sums = sums
        self._lazy: dict[str, str] = {}

    def resolve(self, path: str) -> Path:
        """``path`` inside the tree, symlinks followed without leaving it (:func:`fsutil.secure_join`)."""
        return fsutil.secure_join(self.root, path)

    def relative(self, full: Path) -> str:
        """``full`` (inside the tree) as a ``/``-separated path relative to the root ("" for the root)."""
        rel = os.path.relpath(full, self.root)
        return "" if rel == "." else Path(rel).as_posix()

    def entry_sum(self, path: str) -> str:
        """docker's ``Source.Hash(path)``: the sum of what ``path`` resolves to; the path itself
        when the tree has no sum for it (an entry the context tar did not list)."""
        full = self.resolve(path)
        rel = self.relative(full)
        if self._sums is not None:
            return self._sums.get(rel, path)
        if rel not in self._lazy:
            if not os.path.lexists(full):
                return path
            self._lazy[rel] = file_sum(full, rel)
        return self._lazy[rel]

    def source_sum(self, path: str) -> str:
        """``file:<sum>`` for a file, ``dir:<sum>`` for a directory (its entries, itself included
        unless it is the root), as docker's ``calcCopyInfo`` computes them."""
        full = self.resolve(path)
        if not full.is_dir():
            return "file:" + self.entry_sum(path)
        rel = self.relative(full)
        sums = [self.entry_sum(rel)] if rel else []
        sums += [self.entry_sum(posixpath.join(rel, sub) if rel else sub) for sub, _ in fsutil.walk(full)]
        return hash_strings("dir", sorted(sums))
