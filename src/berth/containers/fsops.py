"""A container's filesystem from outside: ``diff`` (changes), ``export`` and ``cp`` (archive).

Paths are resolved as the container sees them (Engine API v1.41 "Get information about files in
a container", "Get an archive of a filesystem resource", "Extract an archive of files or folders
to a directory in a container"; dockerd 20.10 as observed): symlinks are followed inside the
container's root, never out of it, and a path under a mount destination (volume, bind, the
``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf`` files of a started container) maps to the
mount's host source. ``export`` is the root filesystem alone, without the mounts.

A stopped container's rootfs is mounted for the operation and unmounted afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from berth.containers.model import Container
from berth.errors import BerthError, NotFound, SystemError_
from berth.runtime import cgroups
from berth.snapshots import fsutil
from berth.snapshots.changes import changes as layer_changes
from berth.snapshots.fsutil import MAX_SYMLINKS
from berth.snapshots.tarutil import (
    ENCODING,
    ERRORS,
    clean_name,
    header,
    mtime_ns,
    pax_from_xattrs,
    xattrs_from_pax,
)
from berth.timeutil import rfc3339_nano

ETC_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
KINDS = {"C": 0, "A": 1, "D": 2}
# Go's os.FileMode bits (io/fs), which the path-stat header carries.
GO_MODE_DIR, GO_MODE_SYMLINK, GO_MODE_DEVICE, GO_MODE_PIPE = 1 << 31, 1 << 27, 1 << 26, 1 << 25
GO_MODE_SOCKET, GO_MODE_SETUID, GO_MODE_SETGID, GO_MODE_CHARDEV, GO_MODE_STICKY = \
    1 << 24, 1 << 23, 1 << 22, 1 << 21, 1 << 20


def go_file_mode(mode: int) -> int:
    """``st_mode`` as Go's ``os.FileMode`` (permission bits plus type and special bits)."""
    out = mode & 0o777
    kind = stat.S_IFMT(mode)
    out |= {stat.S_IFDIR: GO_MODE_DIR, stat.S_IFLNK: GO_MODE_SYMLINK, stat.S_IFIFO: GO_MODE_PIPE,
            stat.S_IFSOCK: GO_MODE_SOCKET, stat.S_IFBLK: GO_MODE_DEVICE,
            stat.S_IFCHR: GO_MODE_DEVICE | GO_MODE_CHARDEV}.get(kind, 0)
    for bit, go_bit in ((stat.S_ISUID, GO_MODE_SETUID), (stat.S_ISGID, GO_MODE_SETGID), (stat.S_ISVTX, GO_MODE_STICKY)):
        if mode & bit:
            out |= go_bit
    return out


def path_stat_header(name: str, st: os.stat_result, link_target: str) -> str:
    """The ``X-Docker-Container-Path-Stat`` value: base64 of Go's JSON of ``PathStat``."""
    text = json.dumps({"name": name, "size": st.st_size, "mode": go_file_mode(st.st_mode),
                       "mtime": rfc3339_nano(st.st_mtime_ns), "linkTarget": link_target},
                      separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)  # Go's encoder is HTML-safe
    return base64.b64encode(text.encode()).decode()


def archive_name(path: str) -> str:
    """The name docker gives ``path`` in the stat header and as the tar's top entry:
    the base name, ``.`` for a path ending in ``/.``, ``/`` for the root."""
    clean = posixpath.normpath("/" + path)
    if path.endswith("/.") or path == ".":
        return "."
    return posixpath.basename(clean) or "/"


@dataclass(frozen=True)
class MountEntry:
    """A mount as the archive endpoints see it: container ``destination`` -> host ``source``."""

    destination: str
    source: Path
    read_only: bool


def mount_table(c: Container, bundle: Path) -> list[MountEntry]:
    """The mounts of ``c`` that have a host source (volumes, binds, the etc files once written)."""
    out = [MountEntry(posixpath.normpath(str(m["Destination"])), Path(str(m["Source"])), not m.get("RW", True))
           for m in c.mounts if m.get("Type") in ("volume", "bind") and m.get("Source") and m.get("Destination")]
    ro = bool(c.host_config.get("ReadonlyRootfs"))
    for path in ETC_FILES:
        source = bundle / posixpath.basename(path)
        if source.exists() and all(m.destination != path for m in out):
            out.append(MountEntry(path, source, ro))
    return out


class ContainerFS:
    """Path lookups in a container's filesystem: ``rootfs`` (mounted) plus its ``mounts``.

    Container paths are absolute and clean (``/a/b``). Lookups are not atomic against a container
    changing its files meanwhile (as with dockerd, which resolves from the host the same way).
    """

    def __init__(self, rootfs: Path, mounts: list[MountEntry]) -> None:
        self.rootfs = rootfs
        self.mounts = sorted(mounts, key=lambda m: len(m.destination), reverse=True)

    def mount_of(self, cpath: str) -> MountEntry | None:
        """The innermost mount holding ``cpath``, or None (the rootfs)."""
        for m in self.mounts:
            if cpath == m.destination or cpath.startswith(m.destination.rstrip("/") + "/"):
                return m
        return None

    def host(self, cpath: str) -> Path:
        """Host path of the clean container path ``cpath`` (no symlinks followed)."""
        m = self.mount_of(cpath)
        if m is None:
            return self.rootfs.joinpath(*cpath.split("/")[1:]) if cpath != "/" else self.rootfs
        rest = cpath[len(m.destination):].strip("/")
        return m.source / rest if rest else m.source

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """``path`` with its symlinks followed inside the container (``..`` stops at ``/``);
        missing components are kept as given. Raises InvalidParameter after 40 links (ELOOP)."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        resolved: list[str] = []
        followed = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/" + "/".join([*resolved, name])
            host = self.host(candidate)
            if (not parts and not follow_last) or not host.is_symlink():
                resolved.append(name)
                continue
            followed += 1
            if followed > MAX_SYMLINKS:
                raise SystemError_(f"{path}: too many levels of symbolic links")
            target = os.readlink(host)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
        return "/" + "/".join(resolved)


# ----- archive GET / HEAD ------------------------------------------------------------------
@dataclass(frozen=True)
class PathInfo:
    """A resolved archive path: its ``name``, container path, host path, lstat and stat header."""

    name: str
    cpath: str
    host: Path
    st: os.stat_result
    header: str


def stat_path(fs: ContainerFS, path: str, ref: str) -> PathInfo:
    """Resolve the archive ``path`` of container ``ref``: a trailing ``/`` or ``/.`` follows a
    final symlink, otherwise the entry itself is described. Raises NotFound (``Could not find
    the file X in container Y``) or SystemError_ (``lstat ...: not a directory``)."""
    follow = path.endswith("/") or path.endswith("/.") or path in (".", "")
    if follow:
        cpath = fs.resolve(path)
    else:
        parent, base = posixpath.split(posixpath.normpath("/" + path))
        cpath = posixpath.join(fs.resolve(parent), base) if base else "/"
    host = fs.host(cpath)
    try:
        st = os.lstat(host)
    except FileNotFoundError:
        raise NotFound(f"Could not find the file {path} in container {ref}") from None
    except NotADirectoryError:
        raise SystemError_(f"lstat {host}: not a directory") from None
    if follow and path not in (".", "") and not stat.S_ISDIR(st.st_mode):
        raise SystemError_(f"lstat {host}{'/.' if path.endswith('/.') else '/'}: not a directory")
    link = fs.resolve(cpath) if stat.S_ISLNK(st.st_mode) else ""
    name = archive_name(path)
    return PathInfo(name, cpath, host, st, path_stat_header(name, st, link))


def write_archive(fs: ContainerFS, info: PathInfo, out: BinaryIO) -> None:
    """Write ``info``'s file or tree as a tar to ``out``, its top entry named ``info.name``,
    descending into the mounts met on the way (blocking)."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding=ENCODING, errors=ERRORS) as tar:
        links: dict[tuple[int, int], str] = {}
        _add(tar, info.name, info.host, info.st, links)
        if stat.S_ISDIR(info.st.st_mode):
            _add_tree(tar, fs, info.cpath, info.host, info.name, links)


def _add_tree(tar: tarfile.TarFile, fs: ContainerFS, cpath: str, host: Path, name: str,
              links: dict[tuple[int, int], str]) -> None:
    for entry in fsutil.sorted_entries(host):
        child = posixpath.join(cpath, entry.name)
        mount = next((m for m in fs.mounts if m.destination == child), None)
        child_host = mount.source if mount else host / entry.name
        try:
            st = os.stat(child_host) if mount else entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        child_name = f"{name.rstrip('/')}/{entry.name}"
        _add(tar, child_name, child_host, st, links)
        if stat.S_ISDIR(st.st_mode):
            _add_tree(tar, fs, child, child_host, child_name, links)


def _add(tar: tarfile.TarFile, name: str, path: Path, st: os.stat_result, links: dict[tuple[int, int], str]) -> None:
    if stat.S_ISSOCK(st.st_mode):
        return  # tar has no socket type
    if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
        inode = (st.st_dev, st.st_ino)
        if inode in links:
            tar.addfile(header(name, st, linkname=links[inode], hardlink=True))
            return
        links[inode] = name
    info = header(name, st, linkname=os.readlink(path) if stat.S_ISLNK(st.st_mode) else "")
    info.pax_headers = pax_from_xattrs(fsutil.read_xattrs(path))
    if not stat.S_ISREG(st.st_mode):
        tar.addfile(info)
        return
    with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
        tar.addfile(info, f)


# ----- archive PUT -------------------------------------------------------------------------
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
    elif member.ischr() or member.isblk():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(path, 0o600)
    else:
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


# ----- changes and export ------------------------------------------------------------------
def container_changes(upper: Path, lowers: list[Path], mount_destinations: list[str]) -> list[dict[str, Any]] | None:
    """``GET /containers/{id}/changes``: ``[{"Path", "Kind"}]`` (0 changed, 1 added, 2 deleted),
    None when there is nothing (docker's ``null``). The etc files are left out; mount points show
    as dockerd shows them, what is below them does not (it belongs to the mount)."""
    found = layer_changes(upper, lowers, exclude=set(ETC_FILES))
    inside = tuple(d.rstrip("/") + "/" for d in mount_destinations if d != "/")
    rows = [{"Path": path, "Kind": KINDS[kind]} for kind, path in found if not path.startswith(inside)]
    return rows or None


def export_rootfs(rootfs: Path, out: BinaryIO) -> None:
    """``GET /containers/{id}/export``: the whole root filesystem as a tar, names relative to
    ``/``, no mounts (blocking)."""
    from berth.snapshots.layer import write_tree

    write_tree(rootfs, out)



class RootfsLeases:
    """Holds a container's filesystem still while file operations use it.

    The rootfs is mounted on the first lease if it was not (unmounted after the last one unless
    the container runs by then), and a running container is frozen meanwhile: lookups resolve
    paths from the host, so a process swapping a directory for a symlink between a lookup and
    its use could otherwise lead them out of the container (docker's CVE-2018-15664). Volumes
    the local driver mounts (``-o type=...``) are held mounted too, through ``volumes``
    (:meth:`berth.volumes.service.VolumeService.hold_for_files`), so a stopped container's
    files there are the volume's, not the empty directory under its mount point.
    """

    def __init__(self, runner: Any, volumes: Any = None) -> None:
        self.runner = runner
        self.volumes = volumes
        self._users: dict[str, int] = {}
        self._mounted_by_us: set[str] = set()
        self._frozen_by_us: set[str] = set()
        self._volumes_held: set[str] = set()

    async def acquire(self, c: Container) -> Path:
        """The mounted rootfs of ``c`` (release it with :meth:`release`)."""
        self._users[c.id] = self._users.get(c.id, 0) + 1
        rootfs = self.runner.rootfs(c.id)
        try:
            if not os.path.ismount(rootfs):
                await asyncio.to_thread(self.runner.mount_rootfs, c.id)
                self._mounted_by_us.add(c.id)
            if self.volumes is not None and c.id not in self._volumes_held:
                await self.volumes.hold_for_files(c)
                self._volumes_held.add(c.id)
            if c.state.status == "running" and c.id not in self._frozen_by_us:
                self._frozen_by_us.add(c.id)
                await asyncio.to_thread(cgroups.freeze, c.cgroup_path)
        except BaseException:
            await self.release(c)
            raise
        return rootfs

    async def release(self, c: Container) -> None:
        """Drop one lease; the last one thaws the container (unless it was paused meanwhile) and
        unmounts a rootfs mounted here when the container is not running."""
        self._users[c.id] -= 1
        if self._users[c.id]:
            return
        del self._users[c.id]
        if c.id in self._frozen_by_us:
            self._frozen_by_us.discard(c.id)
            if c.state.status != "paused":
                await asyncio.to_thread(_thaw, c.cgroup_path)
        if c.id in self._volumes_held:
            self._volumes_held.discard(c.id)
            await self.volumes.release_for_files(c)
        if c.id in self._mounted_by_us:
            self._mounted_by_us.discard(c.id)
            if not c.state.running:
                await asyncio.to_thread(self.runner.unmount_rootfs, c.id)


def _thaw(cgroup_path: str) -> None:
    try:
        cgroups.thaw(cgroup_path)
    except (OSError, KeyError):
        pass  # the container ended meanwhile: its cgroup is gone
