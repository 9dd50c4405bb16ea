"""Filesystem primitives for the snapshotter: rooted path resolution, overlay whiteouts, walks, mounts.

Overlay whiteouts follow the kernel's overlayfs documentation ("Whiteouts and opaque
directories"): a deleted name is a character device with device number 0/0, a directory that
hides everything below it carries the xattr ``trusted.overlay.opaque`` = ``y``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from berth.errors import InvalidParameter, SystemError_

OPAQUE_XATTR = "trusted.overlay.opaque"
OVERLAY_XATTR_PREFIX = "trusted.overlay."

# Linux gives up after 40 symlinks in one lookup (MAXSYMLINKS); so do we.
MAX_SYMLINKS = 40

MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)


def secure_join(root: Path, path: str) -> Path:
    """Resolve ``path`` inside ``root`` as if ``root`` were ``/`` (a chroot-style lookup).

    Symlinks met on the way are followed component by component; an absolute link target
    restarts from ``root``, and ``..`` never climbs above ``root``. Components that do not exist
    are kept literally (so the result may name something to create). The last component is
    followed too when it is a symlink; resolve ``dirname`` and append the base name when the
    entry itself is wanted. The result always lies inside ``root``.

    Args:
        root: the directory acting as ``/``.
        path: a path inside it, absolute or relative (both mean the same).

    Raises:
        InvalidParameter: more than 40 symlinks on the way (ELOOP, path_resolution(7)).

    Race: the lookup is not atomic; callers use it on trees nobody else changes meanwhile.
    """
    parts = deque(path.split("/"))
    resolved: list[str] = []
    followed = 0
    while parts:
        name = parts.popleft()
        if name in ("", "."):
            continue
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, name)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(name)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(name)
            continue
        followed += 1
        if followed > MAX_SYMLINKS:
            raise InvalidParameter(f"{path}: too many levels of symbolic links")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts.extendleft(reversed(target.split("/")))
    return root.joinpath(*resolved)


def is_whiteout(st: os.stat_result) -> bool:
    """True when ``st`` describes an overlay whiteout (character device 0/0)."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def make_whiteout(path: Path) -> None:
    """Create an overlay whiteout (character device 0/0, mode 0) at ``path`` (needs CAP_MKNOD)."""
    os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))


def is_opaque(path: Path | str) -> bool:
    """True when the directory ``path`` carries ``trusted.overlay.opaque=y``."""
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def set_opaque(path: Path) -> None:
    """Mark the directory ``path`` opaque for overlayfs (needs CAP_SYS_ADMIN for trusted.*)."""
    os.setxattr(path, OPAQUE_XATTR, b"y", follow_symlinks=False)


def read_xattrs(path: Path | str) -> dict[str, bytes]:
    """Extended attributes of ``path`` (not following symlinks), sorted by name.

    ``trusted.overlay.*`` is overlayfs bookkeeping and is left out. A filesystem without xattr
    support gives ``{}``.
    """
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    values: dict[str, bytes] = {}
    for name in sorted(names):
        if name.startswith(OVERLAY_XATTR_PREFIX):
            continue
        try:
            values[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return values


def name_key(name: str) -> bytes:
    """Sort key for a file name: its bytes, so the order does not depend on the locale."""
    return os.fsencode(name)


def sorted_entries(directory: Path | str) -> list[os.DirEntry[str]]:
    """Entries of ``directory`` sorted by name bytes."""
    with os.scandir(directory) as it:
        return sorted(it, key=lambda e: name_key(e.name))


def walk(root: Path, rel: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """Yield ``(relative path, lstat)`` for everything below ``root/rel``, depth first.

    Parents come before their children and siblings are in name-byte order; ``root/rel`` itself
    is not yielded. Symlinks are never followed.
    """
    base = root / rel if rel else root
    for entry in sorted_entries(base):
        child = f"{rel}/{entry.name}" if rel else entry.name
        st = entry.stat(follow_symlinks=False)
        yield child, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk(root, child)


def tree_size(root: Path) -> int:
    """Bytes used by the tree at ``root`` the way docker counts a layer or a container's SizeRw.

    The sum of ``st_size`` over every non-directory entry (files, symlinks), hard links counted
    once; directories count 0.
    """
    seen: set[tuple[int, int]] = set()
    total = 0
    for _, st in walk(root):
        if stat.S_ISDIR(st.st_mode):
            continue
        if st.st_nlink > 1:
            inode = (st.st_dev, st.st_ino)
            if inode in seen:
                continue
            seen.add(inode)
        total += st.st_size
    return total


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename or creation inside it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path: Path) -> None:
    """Flush the whole filesystem holding ``path`` (syncfs(2)): cheaper than fsync per file."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    """mount(2). Raises OSError with the kernel's errno."""
    rc = _libc.mount(
        source.encode(),
        os.fsencode(target),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        os.fsencode(data) if data is not None else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def unmount(target: Path) -> None:
    """Unmount everything stacked on ``target``; idempotent.

    A busy mount is detached lazily (MNT_DETACH, umount(2)); a path that is not a mount point
    or does not exist is left alone.

    Raises:
        SystemError_: the kernel refused for another reason (e.g. EPERM).
    """
    path = os.fsencode(str(target))
    for _ in range(64):
        if _libc.umount2(path, 0) == 0:
            continue
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT, errno.ENOTDIR):
            return
        if err == errno.EBUSY and _libc.umount2(path, MNT_DETACH) == 0:
            continue
        err = ctypes.get_errno()
        raise SystemError_(f"unmount {target}: {os.strerror(err)}")
    raise SystemError_(f"unmount {target}: too many stacked mounts")


if __name__ == "__main__":
    # Entry point for mounts whose option string only fits with paths relative to a directory:
    # the parent runs us with that directory as cwd (a chdir in the threaded daemon would race).
    import sys

    try:
        mount(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    except OSError as exc:
        print(exc.strerror, file=sys.stderr)
        sys.exit(1)
