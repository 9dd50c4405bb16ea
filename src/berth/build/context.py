"""The build context on the daemon side: unpack it, find the Dockerfile, trim it.

The context arrives as a tar (maybe gzip, bzip2 or xz compressed: Engine API "ImageBuild")
and is unpacked into a directory under the data root. Unpacking is confined to that directory:
a name that climbs out (``../x``) is refused, parents are resolved with
:func:`fsutil.secure_join` so a symlink unpacked earlier never leads outside, and symlinks are
kept as they are (COPY resolves them inside the context too, so one pointing at ``/etc/passwd``
names ``<context>/etc/passwd``, never the host's file). Each entry's tarsum is computed from
the received headers while unpacking (see :mod:`berth.build.sources`).

As dockerd 20.10 does (``builder/remotecontext``), the daemon looks for the Dockerfile at the
given path (falling back to ``dockerfile`` for the default name) and removes the Dockerfile and
``.dockerignore`` from the context when ``.dockerignore`` excludes them; the client applied the
other patterns when it made the tar.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from berth.build.dockerignore import Matcher, read_patterns
from berth.build.sources import SourceTree, tarsum_header
from berth.errors import InvalidParameter, SystemError_
from berth.images.service import decompress
from berth.snapshots import fsutil
from berth.snapshots.tarutil import ENCODING, ERRORS, mtime_ns, xattrs_from_pax

DEFAULT_DOCKERFILE = "Dockerfile"
MAX_DOCKERFILE = 16 << 20
_CHUNK = 1 << 20
_SPECIAL = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}


@dataclass
class BuildContext:
    """An unpacked context: ``tree`` to copy from, the Dockerfile's ``dockerfile_text`` and the
    ``dockerfile_name`` it was read from."""

    tree: SourceTree
    dockerfile_text: str
    dockerfile_name: str


def _clean(name: str) -> str:
    """A member name relative to the context root ("" for the root). Raises InvalidParameter
    for a name that climbs out of it."""
    rel = posixpath.normpath(name.lstrip("/")) if name.strip("/") else "."
    if rel == ".." or rel.startswith("../"):
        raise InvalidParameter(f"Error processing tar file: invalid path {name!r} outside of the build context")
    return "" if rel == "." else rel


def _fields(member: tarfile.TarInfo) -> dict[str, object]:
    """The member's v1 tarsum fields as Go's tar reader reports them: directories keep their
    trailing slash (Python's reader strips it; every common writer puts one there) and the old
    ``\0`` regular-file type reads as ``0``."""
    special = member.type in (tarfile.CHRTYPE, tarfile.BLKTYPE)
    return {
        "name": member.name + "/" if member.isdir() and not member.name.endswith("/") else member.name,
        "mode": member.mode, "uid": member.uid, "gid": member.gid,
        "size": member.size if member.isreg() else 0,
        "typeflag": "0" if member.type == tarfile.AREGTYPE else member.type.decode("latin-1"),
        "linkname": member.linkname,
        "uname": member.uname, "gname": member.gname,
        "devmajor": member.devmajor if special else 0, "devminor": member.devminor if special else 0,
    }


def extract_tar(stream: BinaryIO, root: Path, *, sums: dict[str, str] | None = None,
                keep_owner: bool = True) -> int | None:
    """Unpack the (maybe compressed) tar ``stream`` into the directory ``root``, safely.

    With ``sums`` each entry's tarsum is recorded there (first entry of a name wins, as
    docker's lookup does). Owners are kept when ``keep_owner``; modes, mtimes and xattrs are.
    Directories the tar implies without listing them get mode 0755 and mtime 0, so the same
    tar always gives the same tree. ``root`` itself is left as it is; the mtime (ns) of the
    tar's own root entry (``./``), if it has one, is returned for the caller to apply.

    Raises:
        InvalidParameter: a corrupt tar or a name outside ``root``.
        SystemError_: the disk failed.
    """
    times: dict[Path, int] = {}
    root_mtime: int | None = None
    try:
        with tarfile.open(fileobj=cast(BinaryIO, decompress(stream)), mode="r|", encoding=ENCODING,
                          errors=ERRORS) as tar:
            for member in _members(tar):
                rel = _clean(member.name)
                digest = tarsum_header(_fields(member), xattrs_from_pax(member.pax_headers))
                if rel:
                    path = fsutil.secure_join(root, posixpath.dirname(rel)) / posixpath.basename(rel)
                    _make_parents(root, path.parent, times)
                    _create(tar, member, path, root, digest)
                    _set_metadata(path, member, keep_owner, times)
                elif member.isdir() and root_mtime is None:
                    root_mtime = mtime_ns(member)
                if sums is not None and rel not in sums:
                    sums[rel] = digest.hexdigest()
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT):
            raise SystemError_(f"unpacking the build context: {exc.strerror}") from None
        raise InvalidParameter(f"Error processing tar file: {exc}") from None
    for path, ns in times.items():
        if path.is_dir() and not path.is_symlink():
            os.utime(path, ns=(ns, ns), follow_symlinks=False)
    return root_mtime


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a streamed tar, ending quietly where the last member's padding or the
    end-of-archive blocks are missing: Go's archive/tar, which dockerd reads contexts with, takes
    EOF there as the end, and the docker CLI sends such a tar when it adds a Dockerfile given on
    stdin or from outside the context (``build -f -``). Each member is fully read before the next
    is asked for, so a member whose data is cut short still fails."""
    read_one = False
    while True:
        try:
            member = tar.next()
        except tarfile.ReadError as exc:
            if read_one and str(exc) == "unexpected end of data":
                return
            raise
        if member is None:
            return
        read_one = True
        yield member


def _make_parents(root: Path, directory: Path, times: dict[Path, int]) -> None:
    """Create the missing directories down to ``directory`` (inside ``root``), mtime 0 unless
    their own entry comes later."""
    missing = []
    current = directory
    while current != root and not os.path.lexists(current):
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        os.mkdir(path, 0o755)
        times.setdefault(path, 0)


def _create(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, root: Path, digest: object) -> None:
    if os.path.lexists(path) and not (member.isdir() and path.is_dir() and not path.is_symlink()):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            os.unlink(path)
    if member.isdir():
        path.mkdir(exist_ok=True)
    elif member.issym():
        os.symlink(member.linkname, path)
    elif member.islnk():
        target_rel = _clean(member.linkname)
        target = fsutil.secure_join(root, posixpath.dirname(target_rel)) / posixpath.basename(target_rel)
        os.link(target, path, follow_symlinks=False)
    elif member.type in _SPECIAL:
        os.mknod(path, _SPECIAL[member.type] | 0o600, os.makedev(member.devmajor, member.devminor))
    else:
        source = tar.extractfile(member)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            while source is not None and (chunk := source.read(_CHUNK)):
                digest.update(chunk)  # type: ignore[attr-defined]
                out.write(chunk)


def _set_metadata(path: Path, member: tarfile.TarInfo, keep_owner: bool, times: dict[Path, int]) -> None:
    if member.islnk():
        return
    if keep_owner:
        os.chown(path, member.uid, member.gid, follow_symlinks=False)
    if not member.issym():
        os.chmod(path, member.mode & 0o7777)
    for name, value in xattrs_from_pax(member.pax_headers).items():
        try:
            os.setxattr(path, name, value, follow_symlinks=False)
        except OSError:
            pass
    ns = mtime_ns(member)
    if member.isdir():
        times[path] = ns
    else:
        os.utime(path, ns=(ns, ns), follow_symlinks=False)


def read_dockerfile(root: Path, name: str) -> tuple[str, str]:
    """Read the Dockerfile ``name`` (a path in the context); returns (name used, text).

    Raises InvalidParameter ``Cannot locate specified Dockerfile: <name>`` (dockerd's wording).
    """
    for candidate in (name, name.lower()) if name == DEFAULT_DOCKERFILE else (name,):
        path = fsutil.secure_join(root, candidate)
        if path.is_file():
            if path.stat().st_size > MAX_DOCKERFILE:
                raise InvalidParameter(f"Dockerfile {candidate} is too large")
            return candidate, path.read_bytes().decode("utf-8", "replace")
    raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}")


def trim_context(root: Path, dockerfile: str) -> None:
    """Remove ``.dockerignore`` and the Dockerfile from the context when ``.dockerignore``
    excludes them (dockerd's ``removeDockerfile``)."""
    ignore = root / ".dockerignore"
    if not ignore.is_file() or ignore.is_symlink():
        return
    matcher = Matcher(read_patterns(ignore.read_text(errors="replace")))
    for name in (".dockerignore", dockerfile):
        if matcher.matches(name):
            path = fsutil.secure_join(root, posixpath.dirname(name)) / posixpath.basename(name)
            if path.is_file() or path.is_symlink():
                path.unlink()


def open_context(stream: BinaryIO, root: Path, dockerfile: str = DEFAULT_DOCKERFILE) -> BuildContext:
    """Unpack a context tar into the empty directory ``root`` and read its Dockerfile.

    Blocking (run it in a worker thread). Raises InvalidParameter for a bad tar or a missing
    Dockerfile.
    """
    sums: dict[str, str] = {}
    extract_tar(stream, root, sums=sums)
    return context_from_directory(root, dockerfile, sums)


def context_from_directory(root: Path, dockerfile: str, sums: dict[str, str] | None = None,
                           label: str = "build context") -> BuildContext:
    """A context from a directory already on disk (``sums`` None: checksums from the files)."""
    name, text = read_dockerfile(root, dockerfile)
    trim_context(root, name)
    return BuildContext(SourceTree(root, sums, label), text, name)
