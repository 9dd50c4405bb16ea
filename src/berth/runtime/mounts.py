"""The container's filesystem view: OCI ``mounts``, ``pivot_root``, masked and read-only paths.

Runs inside the container's init after it unshared its mount namespace (runtime-spec
config.md "Mounts", config-linux.md "Masked Paths", "Readonly Paths", "Rootfs Mount
Propagation"). Destinations are resolved inside the rootfs with :func:`secure_join`, so a
symlink in the image cannot send a mount outside it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

from berth.runtime import cgroups, linux
from berth.runtime.linux import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
)
from berth.runtime.process import RuntimeFailure

_MAX_SYMLINKS = 255

# mount(8) option -> (flags to set, flags to clear)
_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (MS_RDONLY, 0), "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0), "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0), "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0), "exec": (0, MS_NOEXEC),
    "sync": (linux.MS_SYNCHRONOUS, 0), "async": (0, linux.MS_SYNCHRONOUS),
    "dirsync": (linux.MS_DIRSYNC, 0), "remount": (MS_REMOUNT, 0),
    "mand": (linux.MS_MANDLOCK, 0), "nomand": (0, linux.MS_MANDLOCK),
    "atime": (0, linux.MS_NOATIME), "noatime": (linux.MS_NOATIME, 0),
    "diratime": (0, linux.MS_NODIRATIME), "nodiratime": (linux.MS_NODIRATIME, 0),
    "relatime": (linux.MS_RELATIME, 0), "norelatime": (0, linux.MS_RELATIME),
    "strictatime": (linux.MS_STRICTATIME, 0), "nostrictatime": (0, linux.MS_STRICTATIME),
    "lazytime": (linux.MS_LAZYTIME, 0), "nolazytime": (0, linux.MS_LAZYTIME),
    "nosymfollow": (linux.MS_NOSYMFOLLOW, 0), "symfollow": (0, linux.MS_NOSYMFOLLOW),
    "bind": (MS_BIND, 0), "rbind": (MS_BIND | MS_REC, 0),
}
PROPAGATION: dict[str, int] = {
    "private": linux.MS_PRIVATE, "rprivate": linux.MS_PRIVATE | MS_REC,
    "shared": linux.MS_SHARED, "rshared": linux.MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": linux.MS_UNBINDABLE, "runbindable": linux.MS_UNBINDABLE | MS_REC,
}
# statvfs f_flag bits (ST_*) -> mount flags a bind remount must repeat to keep them.
_ST_TO_MS = ((os.ST_RDONLY, MS_RDONLY), (os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
             (os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, linux.MS_NOATIME),
             (os.ST_NODIRATIME, linux.MS_NODIRATIME), (os.ST_RELATIME, linux.MS_RELATIME))


def secure_join(root: str | os.PathLike[str], unsafe: str) -> Path:
    """``root`` joined with ``unsafe``, every symlink resolved as if ``root`` were ``/``.

    ``..`` never climbs above ``root``; absolute link targets restart at ``root``; missing
    components are appended as they are. Raises ``OSError(ELOOP)`` after 255 links.
    """
    base = os.path.abspath(root)
    pending = [p for p in unsafe.split("/") if p]
    parts: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        candidate = os.path.join(base, *parts, part)
        try:
            target = os.readlink(candidate)
        except OSError:
            parts.append(part)
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), unsafe)
        if target.startswith("/"):
            parts = []
        pending = [p for p in target.split("/") if p] + pending
    return Path(base, *parts)


def parse_options(options: list[str]) -> tuple[int, int, str]:
    """Split mount options into (mount flags, propagation flags, filesystem data string)."""
    flags = propagation = 0
    data: list[str] = []
    for option in options:
        if option in _FLAGS:
            set_bits, clear_bits = _FLAGS[option]
            flags = (flags | set_bits) & ~clear_bits
        elif option in PROPAGATION:
            propagation |= PROPAGATION[option]
        else:
            data.append(option)
    return flags, propagation, ",".join(data)


def mounted_flags(path: str | os.PathLike[str]) -> int:
    """The per-mount flags of the mount holding ``path``, as ``MS_*`` bits."""
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _ST_TO_MS if f_flag & st)


def _make_target(dest: Path, source_is_dir: bool) -> None:
    if source_is_dir:
        dest.mkdir(parents=True, exist_ok=True)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        dest.touch(mode=0o755)


def mount_with_options(source: str | None, dest: str | os.PathLike[str], fstype: str | None, flags: int,
                       propagation: int, data: str) -> None:
    """mount(2) as parsed by :func:`parse_options`: a bind mounts first and applies its other flags
    by a remount (mount(2): a bind ignores them on the first call), another file system mounts with
    its flags and ``data``; then the ``propagation`` bits apply. Raises OSError."""
    if flags & MS_BIND:
        _bind(str(source), Path(dest), flags, propagation)
        return
    linux.mount(source, dest, fstype, flags, data or None)
    _propagate(Path(dest), propagation)


def _bind(source: str, dest: Path, flags: int, propagation: int) -> None:
    linux.mount(source, dest, None, flags & (MS_BIND | MS_REC))
    extra = flags & ~(MS_BIND | MS_REC)
    if extra:
        linux.mount(None, dest, None, extra | MS_BIND | MS_REMOUNT)
    _propagate(dest, propagation)


def _propagate(dest: Path, propagation: int) -> None:
    for bit in (linux.MS_PRIVATE, linux.MS_SHARED, MS_SLAVE, linux.MS_UNBINDABLE):
        if propagation & bit:
            linux.mount(None, dest, None, bit | (propagation & MS_REC))


def mount_entry(rootfs: Path, bundle: Path, entry: dict[str, Any], private_cgroupns: bool = True) -> None:
    """Perform one OCI ``mounts[]`` entry under ``rootfs`` (before ``pivot_root``).

    Bind sources are absolute or relative to ``bundle``; targets are created as needed (a file
    for a file source). ``type: cgroup`` mounts the container's cgroups (:func:`mount_cgroups`).
    Raises :class:`RuntimeFailure` naming source and destination, as runc does.
    """
    flags, propagation, data = parse_options(list(entry.get("options") or []))
    fstype = entry.get("type") or ("bind" if flags & MS_BIND else "")
    dest = secure_join(rootfs, entry["destination"])
    source = entry.get("source") or fstype
    try:
        if fstype == "bind" or flags & MS_BIND:
            source = str(bundle / source) if not source.startswith("/") else source
            _make_target(dest, os.path.isdir(source))
            _bind(source, dest, flags | MS_BIND, propagation)
        elif fstype == "cgroup":
            dest.mkdir(parents=True, exist_ok=True)
            mount_cgroups(dest, flags, private_cgroupns)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            _mount_fs(source, dest, fstype, flags, data)
            _propagate(dest, propagation)
    except OSError as e:
        raise RuntimeFailure(f'error mounting "{source}" to rootfs at "{entry["destination"]}": '
                             f"{linux.go_strerror(e)}") from None


def _mount_fs(source: str, dest: Path, fstype: str, flags: int, data: str) -> None:
    try:
        linux.mount(source, dest, fstype, flags, data or None)
    except OSError as e:
        # sysfs cannot be mounted without a network namespace of our own: bind the host's.
        if fstype != "sysfs" or e.errno != errno.EPERM:
            raise
        linux.mount("/sys", dest, None, MS_BIND | MS_REC)
        linux.mount(None, dest, None, MS_BIND | MS_REMOUNT | MS_REC | flags)


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup per hierarchy key (controller, ``name=x``, or ``""`` for v2)."""
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for key in controllers.split(",") if controllers else [""]:
                own[key] = path
    return own


def _bind_cgroup(source: str, target: Path, flags: int) -> None:
    linux.mount(source, target, None, MS_BIND)
    linux.mount(None, target, None, MS_BIND | MS_REMOUNT | flags)


def mount_cgroups(dest: Path, flags: int, private_ns: bool) -> None:
    """``type: cgroup`` (runc's semantics): cgroup2 itself on a unified host; otherwise a tmpfs
    holding one mount per v1 hierarchy. Each shows the container's own cgroup: the namespace
    root with a private cgroup namespace, else a bind of the container's directory."""
    points = cgroups.mount_points()
    own = _own_cgroups()
    if cgroups.is_v2_only():
        if private_ns:
            linux.mount("cgroup2", dest, "cgroup2", flags)
        else:
            _bind_cgroup(points[""] + own.get("", "/"), dest, flags)
        return
    linux.mount("tmpfs", dest, "tmpfs", flags & ~MS_RDONLY, "mode=755")
    hierarchies: dict[str, list[str]] = {}
    for key, point in points.items():
        if key:
            hierarchies.setdefault(point, []).append(key)
    for point, keys in hierarchies.items():
        target = dest / os.path.basename(point)
        target.mkdir(exist_ok=True)
        if private_ns:
            source = keys[0].removeprefix("name=") if keys[0].startswith("name=") else "cgroup"
            linux.mount(source, target, "cgroup", flags, ",".join(keys))
        else:
            _bind_cgroup(point + own.get(keys[0], "/"), target, flags)


def prepare_root(rootfs: Path, propagation: str = "") -> None:
    """Make ``/`` ``propagation`` (default rprivate) and make ``rootfs`` a mount point of its own."""
    linux.mount(None, "/", None, PROPAGATION.get(propagation or "rprivate", linux.MS_PRIVATE | MS_REC))
    linux.mount(str(rootfs), rootfs, None, MS_BIND | MS_REC)


def pivot_root(rootfs: Path) -> None:
    """Make ``rootfs`` the root and detach the old root (pivot_root(2), ``pivot_root(".", ".")``)."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY)
    new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY)
    try:
        os.fchdir(new_root)
        linux.pivot_root(".", ".")
        os.fchdir(old_root)
        # The old root sits on top of the new one; slave it so its unmount cannot propagate.
        linux.mount(None, ".", None, MS_SLAVE | MS_REC)
        linux.umount2(".", MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old_root)
        os.close(new_root)


def mask_paths(paths: list[str]) -> None:
    """Hide each path: a read-only empty tmpfs on directories, ``/dev/null`` on files."""
    for path in paths:
        try:
            is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
        except FileNotFoundError:
            continue
        if is_dir:
            linux.mount("tmpfs", path, "tmpfs", MS_RDONLY, None)
        else:
            linux.mount("/dev/null", path, None, MS_BIND)


def readonly_paths(paths: list[str]) -> None:
    """Bind each existing path onto itself and remount it read-only, keeping its other flags."""
    for path in paths:
        try:
            linux.mount(path, path, None, MS_BIND | MS_REC)
        except FileNotFoundError:
            continue
        linux.mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | mounted_flags(path))


def remount_readonly(path: str = "/") -> None:
    """Remount the bind mount at ``path`` read-only (``root.readonly``)."""
    linux.mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | mounted_flags(path))
