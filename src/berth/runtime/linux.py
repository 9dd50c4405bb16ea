"""Thin ctypes wrappers for the Linux system calls the stdlib (3.11) lacks.

unshare(2), setns(2), mount(2), umount2(2), pivot_root(2), prctl(2), capget/capset(2),
seccomp(2). Each raises ``OSError`` with the errno and the call's name, like ``os`` functions.
Constants are the kernel's UAPI values (``linux/sched.h``, ``linux/mount.h``, ``linux/prctl.h``,
``linux/capability.h``, ``linux/seccomp.h``).
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Any

# clone/unshare flags (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# OCI linux.namespaces[].type -> clone flag and /proc/<pid>/ns/<name>
NAMESPACES: dict[str, tuple[int, str]] = {
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "mount": (CLONE_NEWNS, "mnt"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "user": (CLONE_NEWUSER, "user"),
}

# mount flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

# prctl options (linux/prctl.h)
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_FILTER = 1

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# Syscalls glibc does not wrap (or wraps only in newer versions), by machine.
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {"pivot_root": 155, "seccomp": 317},
    "aarch64": {"pivot_root": 41, "seccomp": 277},
}

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.syscall.restype = ctypes.c_long


def _check(result: int, name: str, *paths: Any) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}", *[str(p) for p in paths[:1]])
    return result


def _b(value: str | os.PathLike[str] | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def go_strerror(err: OSError) -> str:
    """An errno's text as Go (so runc and docker) prints it: ``no such file or directory``."""
    text = os.strerror(err.errno) if err.errno else str(err)
    return text[:1].lower() + text[1:]


def syscall_number(name: str) -> int:
    """Number of ``name`` (``pivot_root``, ``seccomp``) on this machine; ``OSError`` if unknown."""
    numbers = _SYSCALLS.get(platform.machine())
    if not numbers:
        raise OSError(f"unsupported machine {platform.machine()}")
    return numbers[name]


def unshare(flags: int) -> None:
    """unshare(2) with ``CLONE_NEW*`` flags."""
    _check(libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): join the namespace open at ``fd`` (``nstype`` 0 accepts any type)."""
    _check(libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str | os.PathLike[str], fstype: str | None = None,
          flags: int = 0, data: str | None = None) -> None:
    """mount(2). ``source``/``fstype``/``data`` may be ``None``."""
    _check(libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), "mount", target)


def umount2(target: str | os.PathLike[str], flags: int = 0) -> None:
    """umount2(2); ``MNT_DETACH`` for a lazy unmount."""
    _check(libc.umount2(_b(target), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2); ``pivot_root(".", ".")`` stacks the old root on the new one (see the man page)."""
    nr = syscall_number("pivot_root")
    _check(libc.syscall(nr, _b(new_root), _b(put_old)), "pivot_root", new_root)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2) with integer arguments; returns the call's result."""
    return _check(libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capget() -> tuple[int, int, int]:
    """This thread's (effective, permitted, inheritable) capability masks (64-bit ints)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(libc.capget(ctypes.byref(header), data), "capget")
    low, high = data[0], data[1]
    return (low.effective | high.effective << 32, low.permitted | high.permitted << 32,
            low.inheritable | high.inheritable << 32)


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for this thread with 64-bit masks (bit N = capability number N)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = effective >> shift & 0xFFFFFFFF
        data[i].permitted = permitted >> shift & 0xFFFFFFFF
        data[i].inheritable = inheritable >> shift & 0xFFFFFFFF
    _check(libc.capset(ctypes.byref(header), data), "capset")


def last_cap() -> int:
    """Highest capability number this kernel knows (``/proc/sys/kernel/cap_last_cap``)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def nofile_ceiling(wanted: int = 1048576) -> int:
    """The highest ``RLIMIT_NOFILE`` this process can give a child: ``wanted`` with
    ``CAP_SYS_RESOURCE`` (24) in the effective set, else no more than its own hard limit."""
    import resource

    effective, _, _ = capget()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if effective >> 24 & 1 or hard == resource.RLIM_INFINITY:
        return wanted
    return min(wanted, hard)


def held_capabilities() -> list[str]:
    """Names of the capabilities in this process's permitted and bounding sets (what it can
    hand to a container), limited to those the kernel knows."""
    from berth.runtime.caps import from_mask

    _, permitted, _ = capget()
    bounding = sum(1 << n for n in range(last_cap() + 1) if prctl(PR_CAPBSET_READ, n) == 1)
    return from_mask(permitted & bounding)


def seccomp_set_filter(prog: ctypes.c_void_p | Any, flags: int = 0) -> None:
    """Install a classic BPF seccomp filter (``prog`` points at a ``struct sock_fprog``).

    Without flags uses ``prctl(PR_SET_SECCOMP)``; with flags (``SECCOMP_FILTER_FLAG_*``) the
    seccomp(2) syscall. Needs ``no_new_privs`` or ``CAP_SYS_ADMIN``.
    """
    if flags:
        nr = syscall_number("seccomp")
        _check(libc.syscall(nr, SECCOMP_SET_MODE_FILTER, flags, prog), "seccomp")
    else:
        _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.cast(prog, ctypes.c_void_p).value
                          or 0, 0, 0), "prctl(PR_SET_SECCOMP)")
