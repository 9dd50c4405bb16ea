"""Network namespaces without forking: per-thread ``setns`` and persistent namespace files.

berthd is a multi-threaded asyncio process and never forks while its threads run (DESIGN decision 8),
so every action inside a container's network namespace runs on a fresh, dedicated thread that calls
``setns(fd, CLONE_NEWNET)``. A network-namespace switch affects only the calling thread (setns(2):
"CLONE_NEWNET ... the calling thread"), and the thread is thrown away afterwards, so no other code
ever runs on a thread whose namespace was changed.

The same thread trick makes persistent namespaces for tests (and for ``--network none`` style
sandboxes): a thread ``unshare(CLONE_NEWNET)``s and bind-mounts ``/proc/thread-self/ns/net`` onto
a file, which keeps the namespace alive after the thread ends (ip-netns(8) does the same with
``/run/netns/<name>``).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from berth.errors import NotFound, SystemError_
from berth.runtime import linux

T = TypeVar("T")


def setns_net(fd: int) -> None:
    """Move the calling thread into the network namespace open at ``fd`` (setns(2), CLONE_NEWNET).

    Raises OSError. Only call this on a thread that nothing else will reuse (see ``run_in_netns``).
    """
    linux.setns(fd, linux.CLONE_NEWNET)


def run_in_netns(netns_path: str | None, fn: Callable[[], T], timeout: float = 30.0) -> T:
    """Run ``fn()`` on a fresh thread inside the network namespace file ``netns_path``; return its result.

    ``netns_path`` is e.g. ``/proc/<pid>/ns/net`` or a bind-mounted namespace file; ``None`` runs
    ``fn`` on a fresh thread in the caller's namespace (useful to keep pyroute2's private event loop
    off a thread that already runs asyncio). Blocks the caller until ``fn`` returns (at most
    ``timeout`` seconds). Exceptions raised by ``fn`` are re-raised here; a missing namespace
    raises NotFound; a setns failure raises SystemError_.
    """
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            if netns_path is not None:
                _enter(netns_path)
            outcome["value"] = fn()
        except BaseException as exc:  # handed back to the calling thread
            outcome["error"] = exc

    if netns_path is not None and not os.path.exists(netns_path):
        raise NotFound(f"network namespace {netns_path} not found")
    worker = threading.Thread(target=body, name="berth-netns", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise SystemError_(f"timed out after {timeout}s acting in network namespace {netns_path}")
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise error
    return outcome["value"]  # type: ignore[return-value]


def _enter(netns_path: str) -> None:
    try:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns_net(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SystemError_(f"failed to enter network namespace {netns_path}: {exc.strerror}") from exc


def create_netns(path: str) -> None:
    """Create a new, empty network namespace kept alive by a bind mount on the file ``path``.

    The file is created (mode 0644) when missing; its directory must exist. The namespace has
    only a down ``lo``. Raises SystemError_ when unshare or the bind mount fails (needs
    CAP_SYS_ADMIN). Undo with ``remove_netns``. Follows ip-netns(8) "ip netns add".
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    os.close(fd)

    def make() -> None:
        linux.unshare(linux.CLONE_NEWNET)
        linux.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None, linux.MS_BIND)

    try:
        run_in_netns(None, make)
    except OSError as exc:
        os.unlink(path)
        raise SystemError_(f"failed to create network namespace {path}: {exc.strerror}") from exc


def remove_netns(path: str) -> None:
    """Unmount (lazily) and delete the namespace file ``path``; a missing file is not an error.

    The namespace itself disappears once no process, interface or open fd refers to it.
    Follows ip-netns(8) "ip netns delete".
    """
    if not os.path.exists(path):
        return
    try:
        linux.umount2(path, linux.MNT_DETACH)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a mount point any more, just a leftover file
            raise SystemError_(f"failed to unmount network namespace {path}: {os.strerror(exc.errno or 0)}") from None
    os.unlink(path)
