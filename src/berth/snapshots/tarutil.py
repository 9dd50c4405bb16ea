"""Tar details shared by the layer reader and writer: names, xattr records, headers, stream ends.

Formats: POSIX.1-2001 pax (``pax(1)``, "pax Interchange Format"), the ``SCHILY.xattr.<name>``
records written by star, GNU tar and Go's archive/tar, and libarchive's
``LIBARCHIVE.xattr.<url-encoded name>`` records with base64 values (libarchive tar(5)).
"""

from __future__ import annotations

import base64
import binascii
import os
import posixpath
import stat
import tarfile
import urllib.parse
from collections import deque
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO

from berth.errors import InvalidParameter
from berth.snapshots.fsutil import read_xattrs

SCHILY_XATTR = "SCHILY.xattr."
LIBARCHIVE_XATTR = "LIBARCHIVE.xattr."
ENCODING = "utf-8"
# Names that are not valid UTF-8 survive a round trip as lone surrogates.
ERRORS = "surrogateescape"


def clean_name(name: str) -> str:
    """Normalise a member name to a path relative to the layer root ("" is the root itself).

    A leading ``/`` is dropped first (layer paths are relative to the layer root, image-spec
    layer.md "Distributable Format"), then ``.`` and ``..`` are folded lexically.

    Raises:
        InvalidParameter: the name climbs out of the root, e.g. ``../x`` or ``/a/../../x``
            (docker refuses such entries as a breakout).
    """
    rel = posixpath.normpath(name.lstrip("/")) if name.strip("/") else "."
    if rel == ".." or rel.startswith("../"):
        raise InvalidParameter(f'unpacking layer: "{name}" is outside of the layer root')
    return "" if rel == "." else rel


def xattrs_from_pax(pax_headers: Mapping[str, str]) -> dict[str, bytes]:
    """Extended attributes carried by a member's pax records, name -> raw value."""
    xattrs: dict[str, bytes] = {}
    for key, value in pax_headers.items():
        if key.startswith(SCHILY_XATTR):
            xattrs[key[len(SCHILY_XATTR) :]] = value.encode(ENCODING, ERRORS)
        elif key.startswith(LIBARCHIVE_XATTR):
            name = urllib.parse.unquote(key[len(LIBARCHIVE_XATTR) :])
            try:
                xattrs[name] = base64.b64decode(value + "=" * (-len(value) % 4))
            except (binascii.Error, ValueError):
                raise InvalidParameter(f"unpacking layer: bad {key} record") from None
    return xattrs


def pax_from_xattrs(xattrs: dict[str, bytes]) -> dict[str, str]:
    """``SCHILY.xattr.*`` pax records for ``xattrs``, in name order (deterministic output)."""
    return {SCHILY_XATTR + name: xattrs[name].decode(ENCODING, ERRORS) for name in sorted(xattrs)}


def mtime_ns(member: tarfile.TarInfo) -> int:
    """Modification time of ``member`` in nanoseconds, exact when a pax ``mtime`` record exists."""
    record = member.pax_headers.get("mtime")
    if record is not None:
        try:
            return int(Decimal(record) * 1_000_000_000)
        except InvalidOperation:
            pass
    return int(member.mtime * 1_000_000_000)


_TYPES = {
    stat.S_IFREG: tarfile.REGTYPE,
    stat.S_IFDIR: tarfile.DIRTYPE,
    stat.S_IFLNK: tarfile.SYMTYPE,
    stat.S_IFCHR: tarfile.CHRTYPE,
    stat.S_IFBLK: tarfile.BLKTYPE,
    stat.S_IFIFO: tarfile.FIFOTYPE,
}


def header(name: str, st: os.stat_result, *, linkname: str = "", hardlink: bool = False) -> tarfile.TarInfo:
    """A tar header for a file with status ``st`` stored as ``name``.

    Owners are numeric only (empty uname/gname) and mtime is truncated to whole seconds, as
    docker writes layers; sockets have no tar type and must be skipped by the caller.

    Args:
        name: member name, relative, without trailing slash.
        st: the file's lstat.
        linkname: symlink target, or the earlier member name for a hard link.
        hardlink: store a hard link to ``linkname`` instead of the content.
    """
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    if hardlink:
        info.type, info.linkname = tarfile.LNKTYPE, linkname
        return info
    info.type = _TYPES[stat.S_IFMT(st.st_mode)]
    if info.type == tarfile.REGTYPE:
        info.size = st.st_size
    elif info.type == tarfile.SYMTYPE:
        info.linkname = linkname
    elif info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return info


def open_writer(out: BinaryIO) -> tarfile.TarFile:
    """A streaming PAX tar writer on ``out``; names that are not UTF-8 are kept byte for byte."""
    return tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding=ENCODING, errors=ERRORS)


def add_file(tar: tarfile.TarFile, name: str, path: Path, st: os.stat_result,
             links: dict[tuple[int, int], str], data: Path | None = None) -> None:
    """Append the file at ``path`` (``st`` its lstat) to ``tar`` as ``name``, with its xattrs as
    ``SCHILY.xattr.*`` records. The second and later names of an inode (``links`` maps inodes to
    the first name written, per archive) become hard links; sockets are skipped, as docker skips
    them (tar has no type for them). ``data`` is where a regular file's content is read when it
    is not at ``path`` (an overlay metacopy's lower file)."""
    if stat.S_ISSOCK(st.st_mode):
        return
    if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
        inode = (st.st_dev, st.st_ino)
        if inode in links:
            tar.addfile(header(name, st, linkname=links[inode], hardlink=True))
            return
        links[inode] = name
    info = header(name, st, linkname=os.readlink(path) if stat.S_ISLNK(st.st_mode) else "")
    info.pax_headers = pax_from_xattrs(read_xattrs(path))
    if not stat.S_ISREG(st.st_mode):
        tar.addfile(info)
        return
    fd = os.open(data or path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        tar.addfile(info, f)


def make_node(member: tarfile.TarInfo, path: str | os.PathLike[str]) -> bool:
    """Create the device node or FIFO ``member`` describes at ``path`` (mode 0600 until the
    caller applies the member's); False, with nothing made, for any other member type."""
    if member.ischr() or member.isblk():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(path, 0o600)
    else:
        return False
    return True


def marker(name: str) -> tarfile.TarInfo:
    """An empty regular member used as a whiteout or opaque marker (fixed metadata: reproducible)."""
    info = tarfile.TarInfo(name)
    info.mode = 0o600
    info.uname = info.gname = ""
    return info


class TrackedStream:
    """A read-only stream wrapper that remembers how many bytes it gave and the last ones.

    ``tarfile`` in stream mode stops quietly at a truncated or corrupt header once it is past the
    first member; :meth:`check_end` tells those cases apart from a proper end of archive.
    """

    def __init__(self, raw: BinaryIO, read_size: int = tarfile.RECORDSIZE) -> None:
        """Wrap ``raw``, read by tarfile in chunks of ``read_size`` bytes (its ``bufsize``)."""
        self._raw = raw
        # tarfile stops at most one chunk past the header it could not use: keep that much.
        self._keep = read_size + 2 * tarfile.BLOCKSIZE
        self.consumed = 0
        self._tail: deque[tuple[int, bytes]] = deque()
        self._tail_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._tail.append((self.consumed, data))
            self.consumed += len(data)
            self._tail_bytes += len(data)
            while self._tail_bytes - len(self._tail[0][1]) >= self._keep:
                self._tail_bytes -= len(self._tail.popleft()[1])
        return data

    def _block(self, offset: int) -> bytes:
        out = bytearray()
        for start, data in self._tail:
            lo = max(offset - start, 0)
            hi = min(offset + tarfile.BLOCKSIZE - start, len(data))
            if lo < hi:
                out += data[lo:hi]
        return bytes(out)

    def check_end(self, offset: int) -> None:
        """Check that the archive ended well at ``offset`` (where tarfile found no next header).

        A zero block (the end-of-archive marker) or the end of the stream exactly there is a
        proper end, as Go's archive/tar accepts; anything else raises.

        Raises:
            InvalidParameter: truncated or corrupt header.
        """
        left = self.consumed - offset
        if left == 0:
            return
        if left < tarfile.BLOCKSIZE:
            raise InvalidParameter("unpacking layer: unexpected end of tar stream")
        if self._block(offset).count(0) != tarfile.BLOCKSIZE:
            raise InvalidParameter(f"unpacking layer: invalid tar header at offset {offset}")
