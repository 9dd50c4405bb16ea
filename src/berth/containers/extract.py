"""Extracting an archive into a container (``PUT /containers/{id}/archive``, ``docker cp`` into a
container): where it may go and how each entry is placed.

Engine API v1.41 "Extract an archive of files or folders to a directory in a container"; dockerd
20.10 as observed: the extraction point must be a directory the container can write (not a
read-only mount or rootfs); entries land through :class:`~berth.containers.fsops.ContainerFS`
(symlinks followed inside the container's root, mounts mapped to their host sources); with
``noOverwriteDirNonDir`` a directory never replaces a file nor the reverse; errors carry
dockerd's texts.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from berth.containers.fsops import ContainerFS
from berth.errors import BerthError, NotFound, SystemError_
from berth.snapshots.tarutil import ENCODING, ERRORS, clean_name, make_node, mtime_ns, xattrs_from_pax


@dataclass(frozen=True)
class ExtractOptions:
    """``noOverwriteDirNonDir``; ``chown`` = (uid, gid) for every entry (``copyUIDGID`` with a
    container user), else the tar's owners are kept; ``readonly_rootfs`` refuses entries that
    land on the rootfs (as read-only mounts are refused), whatever links led there."""

    no_overwrite_dir_non_dir: bool = False
    chown: tuple[int, int] | None = None
    readonly_rootfs: bool = False


def extraction_dir(fs: ContainerFS, path: str, ref: str, readonly_rootfs: bool) -> str:
    """The directory ``path`` names (symlinks followed) as a container path, checked writable.

    Raises NotFound, SystemError_ (``extraction point is not a directory``, ``mounted volume is
    marked read-only``, ``container rootfs is marked read-only``), dockerd's texts and codes."""
    cpath = fs.resolve(path)
    try:
        st = os.stat(fs.host(cpath))
    except FileNotFoundError:
        raise NotFound(f"Could not find the file {path} in container {ref}") from None
    except NotADirectoryError:
        raise SystemError_("extraction point is not a directory") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SystemError_("extraction point is not a directory")
    mount = fs.mount_of(cpath)
    if mount is not None and mount.read_only:
        raise SystemError_("mounted volume is marked read-only")
    if mount is None and readonly_rootfs:
        raise SystemError_("container rootfs is marked read-only")
    return cpath


def _tar_error(text: str) -> SystemError_:
    return SystemError_(f"Error processing tar file(exit status 1): {text}")


def _members(archive: Path) -> tuple[tarfile.TarFile, list[tarfile.TarInfo]]:
    try:
        tar = tarfile.open(archive, "r:*", encoding=ENCODING, errors=ERRORS)
    except (tarfile.TarError, EOFError, OSError):
        raise _tar_error("unexpected EOF") from None
    try:
        return tar, tar.getmembers()
    except (tarfile.TarError, EOFError, OSError):
        tar.close()
        raise _tar_error("unexpected EOF") from None


def _existing_is_dir(fs: ContainerFS, target: str) -> bool | None:
    """Whether ``target`` (entry itself, not followed) is a directory now; None when absent."""
    host = fs.host(posixpath.join(fs.resolve(posixpath.dirname(target)), posixpath.basename(target)))
    try:
        return stat.S_ISDIR(os.lstat(host).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _check(fs: ContainerFS, dest: str, members: list[tarfile.TarInfo], options: ExtractOptions) -> None:
    """Refuse the whole archive before writing anything: names leaving ``dest``, hard links to
    outside it, and with ``noOverwriteDirNonDir`` a directory replaced by a non-directory (or the
    reverse), judged against the tree as it will be when the entry is reached."""
    planned: dict[str, bool] = {}
    for member in members:
        try:
            rel = clean_name(member.name)
        except BerthError:
            raise _tar_error(f'"{member.name}" is outside of "{dest}"') from None
        if member.islnk():
            try:
                clean_name(member.linkname)
            except BerthError:
                raise _tar_error(f'invalid hardlink "{member.linkname}" -> "{member.name}"') from None
        target = posixpath.join(dest, rel) if rel else dest
        if options.no_overwrite_dir_non_dir and rel:
            existing = planned[target] if target in planned else _existing_is_dir(fs, target)
            if existing is True and not member.isdir():
                raise _tar_error(f'cannot overwrite directory "{target}" with non-directory "{dest}"')
            if existing is False and member.isdir():
                raise _tar_error(f'cannot overwrite non-directory "{target}" with directory "{dest}"')
        planned[target] = member.isdir()


def extract_archive(fs: ContainerFS, dest: str, archive: Path, options: ExtractOptions) -> None:
    """Unpack the tar file ``archive`` (maybe compressed) into container directory ``dest``
    (blocking). The archive is checked whole first (see :func:`_check`); entries are then
    written in order, parents created 0755, an existing entry replaced unless both are
    directories, owners, modes, xattrs and times restored. Raises SystemError_ with dockerd's
    ``Error processing tar file(exit status 1): ...`` texts."""
    if archive.stat().st_size == 0:
        return
    tar, members = _members(archive)
    with tar:
        _check(fs, dest, members, options)
        directories: list[tuple[Path, tarfile.TarInfo]] = []
        for member in members:
            rel = clean_name(member.name)
            if not rel:
                continue
            try:
                path = _place(fs, dest, rel, options.readonly_rootfs)
                if _write_entry(fs, dest, tar, member, path, options):
                    directories.append((path, member))
            except OSError as exc:
                raise _tar_error(f"{posixpath.join(dest, rel)}: {os.strerror(exc.errno or errno.EIO).lower()}") from None
        for path, member in reversed(directories):
            os.utime(path, ns=(mtime_ns(member), mtime_ns(member)), follow_symlinks=False)


def _place(fs: ContainerFS, dest: str, rel: str, readonly_rootfs: bool) -> Path:
    """Host path for entry ``rel`` under ``dest``: its parent resolved in the container and
    created (0755, root) when missing. A parent on a read-only mount is refused (the host side
    of a read-only bind is writable: the mount is what makes it read-only)."""
    parent = fs.resolve(posixpath.join(dest, posixpath.dirname(rel)))
    mount = fs.mount_of(parent)
    if (mount is not None and mount.read_only) or (mount is None and readonly_rootfs):
        raise _tar_error(f"open {posixpath.join(parent, posixpath.basename(rel))}: read-only file system")
    parent_host = fs.host(parent)
    if not parent_host.exists():
        missing: list[Path] = []
        walk = parent_host
        while not walk.exists():
            missing.append(walk)
            walk = walk.parent
        for directory in reversed(missing):
            directory.mkdir(0o755)
    return parent_host / posixpath.basename(rel)


def _write_entry(fs: ContainerFS, dest: str, tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path,
                 options: ExtractOptions) -> bool:
    """Create one entry at ``path``; True for a directory (its times are set at the end)."""
    if os.path.lexists(path):
        if os.path.isdir(path) and not path.is_symlink() and member.isdir():
            pass
        elif os.path.isdir(path) and not path.is_symlink():
            shutil.rmtree(path)
        else:
            os.unlink(path)
    if member.isdir():
        if not path.exists():
            path.mkdir(0o700)
    elif member.isreg():
        source = tar.extractfile(member)
        assert source is not None
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), "wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
    elif member.issym():
        os.symlink(member.linkname, path)
    elif member.islnk():
        target = fs.resolve(posixpath.join(dest, clean_name(member.linkname)), follow_last=False)
        os.link(fs.host(target), path, follow_symlinks=False)
        return False
    elif not make_node(member, path):
        return False
    uid, gid = options.chown or (member.uid, member.gid)
    os.chown(path, uid, gid, follow_symlinks=False)
    for name, value in xattrs_from_pax(member.pax_headers).items():
        try:
            os.setxattr(path, name, value, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
    if not member.issym():
        os.chmod(path, member.mode & 0o7777)
        if not member.isdir():
            os.utime(path, ns=(mtime_ns(member), mtime_ns(member)))
    return member.isdir()
