"""What one berthd claims on the host before it touches anything (DESIGN, "Processes").

Two daemons must never share a data root, an exec root (its socket and shim state), a listening
socket, or a default bridge (its address, rules and chains are named after it): the second one
would replace or tear down what the first one serves. dockerd guards the same with its pid file
(``--pidfile``, "dockerd" reference); berth takes an exclusive ``flock`` per resource, which the
kernel drops when the process dies however it dies, and checks that a unix socket it would bind
has no listener.
"""

from __future__ import annotations

import fcntl
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

BRIDGE_LOCK_DIR = Path("/run/lock")


class DaemonConflict(Exception):
    """Another daemon holds something this berthd needs; the message names it."""


@dataclass
class DaemonLocks:
    """The locks one berthd holds: file descriptors kept open, and lock files to remove on exit."""

    fds: list[int] = field(default_factory=list)
    removable: list[tuple[Path, int]] = field(default_factory=list)

    def release(self) -> None:
        """Remove the lock files that are ours to remove (while still locked, so a waiting daemon
        re-checks the inode and takes a fresh file), then close every descriptor."""
        for path, fd in self.removable:
            if _same_file(path, fd):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
        self.removable.clear()


def _same_file(path: Path, fd: int) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def try_lock(path: Path, removable: bool = False) -> int | None:
    """Take an exclusive non-blocking ``flock`` on ``path`` (created 0600) and write our pid in it.

    Returns the open fd, or None when another process holds the lock. With ``removable`` the file
    is unlinked by its holder on exit, so the lock is only ours once the path still names the file
    we locked (a holder may have unlinked it between our open and our flock).
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if removable and not _same_file(path, fd):
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd


def unix_socket_answers(path: str) -> bool:
    """True when something accepts connections on the unix socket at ``path`` (a stale socket
    file left by a killed daemon refuses them)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def claim(exec_root: Path, hosts: tuple[str, ...], bridge_name: str,
          bridge_lock_dir: Path = BRIDGE_LOCK_DIR) -> DaemonLocks:
    """Claim the exec root (``<exec-root>/berthd.lock``), the default bridge
    (``<bridge_lock_dir>/berth-bridge-<name>.lock``) and every unix socket of ``hosts``.

    Creates ``exec_root`` when missing and changes nothing else. Raises DaemonConflict naming
    the first resource another daemon holds (nothing stays locked then), ValueError for a bridge
    name that cannot be a link name.
    """
    if not bridge_name or "/" in bridge_name or "\0" in bridge_name:
        raise ValueError(f"invalid bridge name {bridge_name!r}")
    locks = DaemonLocks()
    try:
        exec_root.mkdir(parents=True, exist_ok=True)
        exec_lock = exec_root / "berthd.lock"
        fd = try_lock(exec_lock, removable=True)
        if fd is None:
            raise DaemonConflict(f"another berthd is running on exec root {exec_root}")
        locks.fds.append(fd)
        locks.removable.append((exec_lock, fd))
        bridge_lock_dir.mkdir(parents=True, exist_ok=True)
        bridge_lock = bridge_lock_dir / f"berth-bridge-{bridge_name}.lock"
        fd = try_lock(bridge_lock, removable=True)
        if fd is None:
            raise DaemonConflict(f"another berthd is running with bridge {bridge_name}")
        locks.fds.append(fd)
        locks.removable.append((bridge_lock, fd))
        for host in hosts:
            if host.startswith("unix://") and unix_socket_answers(host[len("unix://"):]):
                raise DaemonConflict(f"another daemon is listening on {host}: refusing to replace its socket")
    except BaseException:
        locks.release()
        raise
    return locks
