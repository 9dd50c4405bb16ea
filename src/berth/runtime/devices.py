"""Device nodes: the container's ``/dev`` contents and the host's devices for ``--privileged``.

Every container gets the runtime-spec's default devices (config-linux.md "Default Devices":
null, zero, full, random, urandom, tty, ptmx as a link to ``pts/ptmx``) plus the symlinks runc
adds (``fd``, ``stdin``, ``stdout``, ``stderr``, ``core``), then the spec's ``linux.devices``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from berth.runtime.mounts import secure_join

# (name, major, minor): char devices, mode 0666, owned by root.
DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
)
DEV_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"), ("pts/ptmx", "ptmx"),
)
# Directories of /dev that hold mounts or per-process links, not devices.
_SKIP_HOST_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}
_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def make_node(rootfs: Path, device: dict[str, Any]) -> None:
    """Create one OCI ``linux.devices[]`` node (``path``, ``type``, ``major``, ``minor``,
    ``fileMode``, ``uid``, ``gid``) inside ``rootfs``, replacing what was there."""
    path = secure_join(rootfs, device["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    kind = _TYPES[device["type"]]
    mode = device.get("fileMode", 0o666) & 0o7777
    number = os.makedev(device.get("major", 0), device.get("minor", 0)) if kind != stat.S_IFIFO else 0
    os.mknod(path, mode | kind, number)
    os.chmod(path, mode)
    os.chown(path, device.get("uid", 0), device.get("gid", 0))


def populate_dev(rootfs: Path, devices: list[dict[str, Any]], with_kcore: bool) -> None:
    """Create the default devices, ``linux.devices`` and the standard symlinks in ``rootfs/dev``."""
    for name, major, minor in DEFAULT_DEVICES:
        make_node(rootfs, {"path": f"/dev/{name}", "type": "c", "major": major, "minor": minor})
    for device in devices:
        make_node(rootfs, device)
    links = DEV_SYMLINKS + ((("/proc/kcore", "core"),) if with_kcore else ())
    for target, name in links:
        link = secure_join(rootfs, f"/dev/{name}")
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every char and block device under ``root`` as OCI ``linux.devices[]`` entries (sorted).

    Skips the mounts and links that are not devices (``pts``, ``shm``, ``fd``, ``mqueue``) and
    ``/dev/console``, which the runtime provides itself.
    """
    found: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == root and d in _SKIP_HOST_DIRS)]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path == os.path.join(root, "console"):
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else ""
            if not kind:
                continue
            found.append({
                "path": "/dev" + path[len(root):], "type": kind, "major": os.major(st.st_rdev),
                "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
                "uid": st.st_uid, "gid": st.st_gid,
            })
    return sorted(found, key=lambda d: d["path"])
