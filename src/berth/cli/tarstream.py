"""Tar streams of local files, written as the docker CLI writes its build context and ``cp``
archives: ustar headers (PAX only when a field does not fit), numeric owners (0:0 by default),
mtimes in whole seconds, symlinks kept as symlinks, hard links as links, sockets skipped, no
padding to a 10 KiB record. Entries are produced lazily, so large trees stream.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

END_OF_ARCHIVE = b"\0" * (2 * tarfile.BLOCKSIZE)



@dataclass(frozen=True)
class DataEntry:
    """A tar entry made from bytes in memory (an injected Dockerfile, an amended .dockerignore)."""

    name: str
    data: bytes
    mode: int = 0o600
    mtime: int = 0


@dataclass(frozen=True)
class LocalEntry:
    """A tar entry read from the local filesystem: ``path`` stored as ``name``."""

    path: str
    name: str


Entry = LocalEntry | DataEntry


def tar_header(info: tarfile.TarInfo) -> bytes:
    """The header block(s) of ``info``: ustar when every field fits, else PAX (as Go's writer picks)."""
    if info.name.isascii() and info.linkname.isascii():
        try:
            return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        except ValueError:
            pass
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def local_tarinfo(path: str, name: str, st: os.stat_result, owner: tuple[int, int] | None) -> tarfile.TarInfo | None:
    """A TarInfo for a local file, or None for a socket (docker skips those)."""
    mode = st.st_mode
    if stat.S_ISSOCK(mode):
        return None
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(mode)
    info.mtime = int(st.st_mtime)
    info.uid, info.gid = owner if owner is not None else (st.st_uid, st.st_gid)
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        info.type, info.size = tarfile.REGTYPE, st.st_size
    return info


class TarStream:
    """Writes entries as a tar stream (an iterator of byte chunks) and counts what it wrote.

    ``written`` is the total so far; ``data_end`` the offset just past the last entry's data,
    before its padding. Raises OSError when a file changes size while it is read.
    """

    def __init__(self, entries: Iterable[Entry], owner: tuple[int, int] | None = (0, 0)) -> None:
        self.entries = entries
        self.owner = owner
        self.written = 0
        self.data_end = 0

    def __iter__(self) -> Iterator[bytes]:
        links: dict[tuple[int, int], str] = {}
        for entry in self.entries:
            if isinstance(entry, DataEntry):
                info = tarfile.TarInfo(entry.name)
                info.size, info.mode, info.mtime = len(entry.data), entry.mode, entry.mtime
                yield self._count(tar_header(info))
                yield self._count(entry.data)
                self.data_end = self.written
                yield self._count(_padding(info.size))
                continue
            yield from self._local(entry, links)
        yield self._count(END_OF_ARCHIVE)

    def _local(self, entry: LocalEntry, links: dict[tuple[int, int], str]) -> Iterator[bytes]:
        st = os.lstat(entry.path)
        info = local_tarinfo(entry.path, entry.name, st, self.owner)
        if info is None:
            return
        if info.type == tarfile.REGTYPE and st.st_nlink > 1:
            first = links.setdefault((st.st_dev, st.st_ino), entry.name)
            if first != entry.name:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
        yield self._count(tar_header(info))
        if info.type == tarfile.REGTYPE:
            yield from self._file_data(entry.path, info.size)
        self.data_end = self.written
        yield self._count(_padding(info.size))

    def _file_data(self, path: str, size: int) -> Iterator[bytes]:
        remaining = size
        with open(path, "rb") as f:
            while remaining:
                chunk = f.read(min(remaining, 1 << 20))
                if not chunk:
                    raise OSError(f"{path}: file shrank while it was archived")
                remaining -= len(chunk)
                yield self._count(chunk)

    def _count(self, chunk: bytes) -> bytes:
        self.written += len(chunk)
        return chunk
