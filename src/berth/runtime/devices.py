"""Device nodes: the container's ``/dev`` contents, the host's devices for ``--privileged``, and
the devices and cgroup rules of ``--device`` and ``--device-cgroup-rule`` (``docker run`` reference,
"Add host device to container").

Every container gets the runtime-spec's default devices (config-linux.md "Default Devices":
null, zero, full, random, urandom, tty, ptmx as a link to ``pts/ptmx``) plus the symlinks runc
adds (``fd``, ``stdin``, ``stdout``, ``stderr``, ``core``), then the spec's ``linux.devices``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from berth.errors import InvalidParameter, SystemError_
from berth.goquote import quote
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


def _device_entry(path: str, st: os.stat_result) -> dict[str, Any] | None:
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else ""
    if not kind:
        return None
    return {"path": path, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}


def devices_from_path(host: str, inside: str, permissions: str = "rwm") -> tuple[list[dict[str, Any]],
                                                                              list[dict[str, Any]]]:
    """``--device HOST:INSIDE:PERMISSIONS`` as OCI ``linux.devices[]`` entries and the cgroup rules
    allowing them (``access`` = ``permissions``, a subset of ``rwm``).

    ``host`` is followed if it is a symlink; a directory maps every device below it (``--device
    /dev/snd``), with ``inside`` in place of ``host`` in their paths. Node mode and owner are the
    host's. Raises :class:`SystemError_` with dockerd's message, e.g. ``error gathering device
    information while adding custom device "/dev/x": no such file or directory``.
    """
    resolved = os.path.realpath(host)
    try:
        st = os.stat(resolved)
    except OSError as exc:
        raise SystemError_(f"error gathering device information while adding custom device {quote(host)}: "
                           f"{os.strerror(exc.errno or 0).lower()}") from exc
    found: list[dict[str, Any]] = []
    single = _device_entry(inside, st)
    if single is not None:
        found.append(single)
    elif stat.S_ISDIR(st.st_mode):
        for dirpath, _dirnames, filenames in os.walk(resolved):
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                try:
                    entry = _device_entry(inside + path[len(resolved):], os.lstat(path))
                except OSError:
                    continue
                if entry is not None:
                    found.append(entry)
    if not found:
        raise SystemError_(f"error gathering device information while adding custom device {quote(host)}: "
                           "not a device node")
    rules = [{"allow": True, "type": d["type"], "major": d["major"], "minor": d["minor"], "access": permissions}
             for d in found]
    return found, rules


def parse_cgroup_rule(text: str) -> dict[str, Any]:
    """A ``--device-cgroup-rule`` (``c 42:* rmw``, ``a *:* rwm``) as an OCI ``resources.devices[]`` allow
    rule (``*`` becomes -1). Raises :class:`InvalidParameter` ``invalid device cgroup format 'X'``
    (the docker CLI's check)."""
    parts = text.split()
    numbers = parts[1].split(":") if len(parts) == 3 else []
    valid = (len(parts) == 3 and parts[0] in ("a", "b", "c") and len(numbers) == 2
             and all(n == "*" or n.isdigit() for n in numbers)
             and 0 < len(parts[2]) <= 3 and set(parts[2]) <= set("rwm") and len(set(parts[2])) == len(parts[2]))
    if not valid:
        raise InvalidParameter(f"invalid device cgroup format '{text}'")
    major, minor = (-1 if n == "*" else int(n) for n in numbers)
    return {"allow": True, "type": parts[0], "major": major, "minor": minor, "access": parts[2]}
