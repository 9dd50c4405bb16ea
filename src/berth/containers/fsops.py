"""A container's filesystem from outside: ``diff`` (changes), ``export`` and ``cp`` (archive).

Paths are resolved as the container sees them (Engine API v1.41 "Get information about files in
a container", "Get an archive of a filesystem resource", "Extract an archive of files or folders
to a directory in a container"; dockerd 20.10 as observed): symlinks are followed inside the
container's root, never out of it, and a path under a mount destination (volume, bind, the
``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf`` files of a started container) maps to the
mount's host source. ``export`` is the root filesystem alone, without the mounts.

A stopped container's rootfs is mounted for the operation and unmounted afterwards. Extracting
an archive into a container is :mod:`.extract`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from berth.containers.model import Container
from berth.errors import NotFound, SystemError_
from berth.runtime import cgroups
from berth.snapshots import fsutil
from berth.snapshots.changes import changes as layer_changes
from berth.snapshots.fsutil import MAX_SYMLINKS
from berth.snapshots.tarutil import (
    add_file,
    open_writer,
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
    with open_writer(out) as tar:
        links: dict[tuple[int, int], str] = {}
        add_file(tar, info.name, info.host, info.st, links)
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
        add_file(tar, child_name, child_host, st, links)
        if stat.S_ISDIR(st.st_mode):
            _add_tree(tar, fs, child, child_host, child_name, links)



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
