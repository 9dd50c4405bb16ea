"""Copy-up: fill an empty volume from the image content at its mount point.

docker's rule (docs: "Volumes", "Populate a volume using a container"): when a container
mounts an empty volume over a directory of its image, the directory's content is copied into
the volume first, with owners, modes, times, extended attributes, hard links, symlinks and
special files, and the volume's root takes the owner and mode of that directory. A volume that
already holds anything is left alone; ``nocopy`` turns this off (the caller decides).

``source`` lies inside a container rootfs: nothing here follows a symlink, and paths under it
are resolved by the caller with :func:`berth.snapshots.fsutil.secure_join`.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from berth.snapshots.fsutil import read_xattrs, sorted_entries


def copy_up(source: Path, target: Path) -> bool:
    """Copy the tree under the directory ``source`` into the empty directory ``target``.

    Returns False (and changes nothing) when ``source`` is not a directory, ``target`` is not
    empty or lies inside ``source``; True after copying, ``target`` then owned and moded like ``source``.

    Raises:
        OSError: a file could not be read or written (the partial copy is left: the caller
            decides; an empty volume stays empty only when the very first entry failed).
    """
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    with os.scandir(target) as it:
        if next(it, None) is not None:
            return False
    real_source, real_target = os.path.realpath(source), os.path.realpath(target)
    if os.path.commonpath([real_source, real_target]) == real_source:
        return False  # the volume lies inside the tree to copy: copying would never end
    hardlinks: dict[tuple[int, int], str] = {}
    _copy_children(source, target, hardlinks)
    _copy_metadata(source, target, st)
    return True


def _copy_children(src_dir: Path, dst_dir: Path, hardlinks: dict[tuple[int, int], str]) -> None:
    for entry in sorted_entries(src_dir):
        src, dst = src_dir / entry.name, dst_dir / entry.name
        st = entry.stat(follow_symlinks=False)
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1 and key in hardlinks:
            os.link(hardlinks[key], dst, follow_symlinks=False)
            continue
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(dst, 0o700)
            _copy_children(src, dst, hardlinks)
        elif stat.S_ISREG(st.st_mode):
            _copy_file(src, dst)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            os.mknod(dst, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev)
        else:
            continue  # sockets belong to a process, not to content: docker's tar skips them too
        _copy_metadata(src, dst, st)
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            hardlinks[key] = str(dst)


def _copy_file(src: Path, dst: Path) -> None:
    fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd_in, "rb", closefd=False) as fin, os.fdopen(fd_out, "wb", closefd=False) as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def _copy_metadata(src: Path, dst: Path, st: os.stat_result) -> None:
    """Owner, xattrs, mode (after chown, which clears setuid bits) and times of ``src``."""
    link = stat.S_ISLNK(st.st_mode)
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    for name, value in read_xattrs(src).items():
        try:
            os.setxattr(dst, name, value, follow_symlinks=False)
        except OSError as exc:
            # user.* xattrs are refused on symlinks; a target filesystem may lack xattrs.
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
    if not link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
