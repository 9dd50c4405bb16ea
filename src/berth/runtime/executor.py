"""berth's own OCI runtime: :class:`Executor` implements :class:`~berth.runtime.process.RuntimeBackend`.

``create`` creates the cgroup, forks the container's init straight into a new PID namespace
(the caller unshares ``CLONE_NEWPID`` for its next child only, then restores its own), puts it
in the cgroup and lets it set itself up (:func:`berth.runtime.initproc.container_init`); init
then waits for ``start``. Because init is the caller's own child, the caller reaps it: no
double fork, no reparenting. ``exec`` forks the same way into the container's namespaces.

The seccomp program is compiled here, before any fork, so a bad profile fails ``create``.
State (pid, bundle, cgroup) is kept in ``<state_root>/<id>/state.json`` for ``exec`` and
``delete``; the start handshake lives in memory, so ``start`` must come from the process that
called ``create`` (the shim).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.runtime import cgroups, initproc, linux, seccomp_bpf
from berth.runtime.process import Created, RuntimeFailure, Stdio

DEFAULT_STATE_ROOT = Path("/run/berth/runtime")
Program = list[tuple[int, int, int, int]]  # a compiled seccomp filter
_HANDSHAKE_TIMEOUT = 60.0


@dataclass
class _Pending:
    """A created container whose init waits for ``start``."""

    pid: int
    sock: socket.socket


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic write: temp file in the same directory, fsync, rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _pid_namespace_for_children(path: str | None, new: bool) -> Iterator[None]:
    """Make the caller's next child start in a new PID namespace (``new``) or the one at
    ``path``, restoring the caller's own for later children."""
    if not new and not path:
        yield
        return
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if path:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                linux.setns(target, linux.CLONE_NEWPID)
            finally:
                os.close(target)
        else:
            linux.unshare(linux.CLONE_NEWPID)
        try:
            yield
        finally:
            linux.setns(own, linux.CLONE_NEWPID)
    finally:
        os.close(own)


@contextlib.contextmanager
def _null_stdin(stdio: Stdio, terminal: bool) -> Iterator[Stdio]:
    """``stdio`` with ``/dev/null`` as stdin when it has none, opened here: once in the
    container's cgroup the child may not be allowed to open the host's device."""
    if terminal or stdio.stdin is not None:
        yield stdio
        return
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield Stdio(null, stdio.stdout, stdio.stderr)
    finally:
        os.close(null)


def _lift(fd: int) -> int:
    """Duplicate ``fd`` to a close-on-exec fd >= 10, out of the way of stdio."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)


def _reap(pid: int) -> str:
    """SIGKILL and reap ``pid``; returns how it had ended (for error messages)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    try:
        _, raw = os.waitpid(pid, 0)
    except ChildProcessError:
        return "reaped elsewhere"
    code = os.waitstatus_to_exitcode(raw)
    return f"exit status {code}" if code >= 0 else f"signal {-code}"


def _compile_seccomp(profile: dict[str, Any] | None) -> tuple[Program | None, int]:
    if not profile:
        return None, 0
    try:
        return seccomp_bpf.compile_filter(profile), seccomp_bpf.filter_flags(profile)
    except (seccomp_bpf.SeccompError, KeyError) as e:
        raise RuntimeFailure(f"error loading seccomp filter: {e}") from None


class Executor:
    """Runs OCI bundles itself (namespaces, mounts, cgroups, capabilities, seccomp).

    ``state_root``: directory for per-container state (``None``: ``/run/berth/runtime``).
    Call from a single-threaded process: forking with other threads running is unsafe, and
    the PID namespace switch around ``fork`` applies to the whole process.
    """

    def __init__(self, state_root: Path | None = None) -> None:
        self.state_root = Path(state_root) if state_root else DEFAULT_STATE_ROOT
        self._pending: dict[str, _Pending] = {}

    def _state_dir(self, container_id: str) -> Path:
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise RuntimeFailure(f"invalid container id: {container_id!r}")
        return self.state_root / container_id

    def _load_state(self, container_id: str) -> dict[str, Any]:
        try:
            return json.loads((self._state_dir(container_id) / "state.json").read_text())
        except FileNotFoundError:
            raise RuntimeFailure(f"container does not exist: {container_id}") from None

    def create(self, container_id: str, bundle: Path, stdio: Stdio, terminal: bool) -> Created:
        """Create the container of ``bundle/config.json``; its init waits for :meth:`start`.

        Raises :class:`RuntimeFailure` when the id is taken, the config is unreadable, or the
        cgroup, namespaces, mounts or process settings cannot be set up (nothing is left behind).
        """
        state_dir = self._state_dir(container_id)
        if (state_dir / "state.json").exists():
            raise RuntimeFailure(f"container with id exists: {container_id}")
        bundle = Path(bundle).resolve()
        try:
            config = json.loads((bundle / "config.json").read_text())
        except (OSError, ValueError) as e:
            raise RuntimeFailure(f"cannot load config.json from {bundle}: {e}") from None
        linux_cfg = config.get("linux") or {}
        cgroup_path = linux_cfg.get("cgroupsPath") or f"/berth/{container_id}"
        program, _ = _compile_seccomp(linux_cfg.get("seccomp"))
        try:
            cgroups.create(cgroup_path, linux_cfg.get("resources"))
        except OSError as e:
            self._remove_cgroup(cgroup_path)
            raise RuntimeFailure(f"cannot create cgroup {cgroup_path}: {e}") from None
        try:
            with _null_stdin(stdio, terminal) as stdio:
                pending, master = self._spawn_init(config, bundle, stdio, terminal, program, cgroup_path)
        except BaseException:
            self._remove_cgroup(cgroup_path)
            raise
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            _write_json(state_dir / "state.json", {"id": container_id, "pid": pending.pid,
                                                   "bundle": str(bundle), "cgroupsPath": cgroup_path})
        except OSError as e:
            pending.sock.close()
            _reap(pending.pid)
            if master is not None:
                os.close(master)
            self._remove_cgroup(cgroup_path)
            raise RuntimeFailure(f"cannot save container state: {e}") from None
        self._pending[container_id] = pending
        return Created(pending.pid, master)

    def _spawn_init(self, config: dict[str, Any], bundle: Path, stdio: Stdio, terminal: bool,
                    program: Program | None, cgroup_path: str) -> tuple[_Pending, int | None]:
        pid_ns = next((ns for ns in (config.get("linux") or {}).get("namespaces") or []
                       if ns["type"] == "pid"), None)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with _pid_namespace_for_children(pid_ns.get("path") if pid_ns else None, pid_ns is not None):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child; it must not leave this block
                try:
                    sock = socket.socket(fileno=_lift(child.fileno()))
                    initproc.container_init(config, bundle, sock, stdio, terminal, program)
                finally:
                    os._exit(1)
        child.close()
        try:
            parent.settimeout(_HANDSHAKE_TIMEOUT)
            cgroups.add_process(cgroup_path, pid)
            initproc.send(parent, {"go": "setup"})
            message, fds = initproc.receive(parent)
            if message and "error" in message:
                raise RuntimeFailure(message["error"])
            if not message:
                raise OSError("no report")
            parent.settimeout(None)
            return _Pending(pid, parent), (fds[0] if fds else None)
        except BaseException as e:
            parent.close()
            how = _reap(pid)
            if isinstance(e, RuntimeFailure):
                raise
            raise RuntimeFailure(f"container init exited during setup ({how}): {e}") from None

    def start(self, container_id: str) -> None:
        """Let the created init exec the program; raises :class:`RuntimeFailure` if it cannot
        (``exec: "foo": executable file not found in $PATH``...)."""
        pending = self._pending.pop(container_id, None)
        if pending is None:
            raise RuntimeFailure(f"container {container_id} is not in created state")
        with pending.sock:
            try:
                initproc.send(pending.sock, {"go": "start"})
                message, _ = initproc.receive(pending.sock)
            except OSError as e:
                raise RuntimeFailure(f"cannot start container: {e}") from None
        if message and "error" in message:
            raise RuntimeFailure(message["error"])

    def exec(self, container_id: str, init_pid: int, process: dict[str, Any], stdio: Stdio,
             terminal: bool) -> Created:
        """Run OCI ``process`` in the namespaces and cgroup of the container whose init is
        ``init_pid``, with the container's seccomp profile. Errors raise :class:`RuntimeFailure`."""
        state = self._load_state(container_id)
        try:
            config = json.loads((Path(state["bundle"]) / "config.json").read_text())
        except (OSError, ValueError) as e:
            raise RuntimeFailure(f"cannot load config.json: {e}") from None
        process = _inherit_from_init(process, config.get("process") or {})
        seccomp_cfg = (config.get("linux") or {}).get("seccomp")
        program, flags = _compile_seccomp(seccomp_cfg)
        try:
            namespace_fds = _container_namespaces(init_pid)
        except OSError as e:
            raise RuntimeFailure(f"cannot join container namespaces: {e}") from None
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with _null_stdin(stdio, terminal) as stdio:
                pid = self._fork_exec(init_pid, process, namespace_fds, child, stdio, terminal, program, flags)
        except OSError as e:  # the init died meanwhile: its /proc entries are gone
            parent.close()
            raise RuntimeFailure(f"cannot join container namespaces: {e}") from None
        finally:
            child.close()
            for fd, _ in namespace_fds:
                os.close(fd)
        with parent:
            return self._finish_exec(parent, pid, state["cgroupsPath"])

    def _fork_exec(self, init_pid: int, process: dict[str, Any], namespace_fds: list[tuple[int, int]],
                   child: socket.socket, stdio: Stdio, terminal: bool,
                   program: Program | None, flags: int) -> int:
        different = not _same_namespace(init_pid, "pid")
        with _pid_namespace_for_children(f"/proc/{init_pid}/ns/pid" if different else None, False):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child; it must not leave this block
                try:
                    sock = socket.socket(fileno=_lift(child.fileno()))
                    lifted = [(_lift(fd), flag) for fd, flag in namespace_fds]
                    initproc.exec_process(process, lifted, sock, stdio, terminal, program, flags)
                finally:
                    os._exit(1)
        return pid

    def _finish_exec(self, sock: socket.socket, pid: int, cgroup_path: str) -> Created:
        master: int | None = None
        try:
            sock.settimeout(_HANDSHAKE_TIMEOUT)
            with contextlib.suppress(OSError):
                cgroups.add_process(cgroup_path, pid)
            initproc.send(sock, {"go": "setup"})
            while True:
                message, fds = initproc.receive(sock)
                if message is None:
                    return Created(pid, master)
                if "error" in message:
                    raise RuntimeFailure(message["error"])
                if fds:
                    master = fds[0]
        except BaseException as e:
            if master is not None:
                os.close(master)
            _reap(pid)
            if isinstance(e, RuntimeFailure):
                raise
            raise RuntimeFailure(f"exec failed: {e}") from None

    def delete(self, container_id: str) -> None:
        """Kill what is left of the container, remove its cgroup and state. Idempotent."""
        state_dir = self._state_dir(container_id)
        pending = self._pending.pop(container_id, None)
        if pending is not None:
            pending.sock.close()
            _reap(pending.pid)
        try:
            state = json.loads((state_dir / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        cgroup_path = state.get("cgroupsPath") or f"/berth/{container_id}"
        self._remove_cgroup(cgroup_path)
        shutil.rmtree(state_dir, ignore_errors=True)

    @staticmethod
    def _remove_cgroup(cgroup_path: str) -> None:
        for _ in range(50):
            left = cgroups.pids(cgroup_path)
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        try:
            cgroups.remove(cgroup_path)
        except OSError as e:
            raise RuntimeFailure(f"cannot remove cgroup {cgroup_path}: {e}") from None


def _inherit_from_init(process: dict[str, Any], init: dict[str, Any]) -> dict[str, Any]:
    """An exec'd process without its own capabilities, no_new_privs or rlimits gets the
    container's, as with ``runc exec``."""
    merged = dict(process)
    for key in ("capabilities", "noNewPrivileges", "rlimits"):
        if key not in merged and key in init:
            merged[key] = init[key]
    return merged


def _same_namespace(pid: int, name: str) -> bool:
    return os.stat(f"/proc/{pid}/ns/{name}").st_ino == os.stat(f"/proc/self/ns/{name}").st_ino


def _container_namespaces(init_pid: int) -> list[tuple[int, int]]:
    """Open the namespaces of ``init_pid`` that differ from ours, mount last (setns(2) into a
    mount namespace changes the root, after which the other /proc paths would not resolve)."""
    order = ("cgroup", "ipc", "uts", "net", "mnt")
    flags = {"cgroup": linux.CLONE_NEWCGROUP, "ipc": linux.CLONE_NEWIPC, "uts": linux.CLONE_NEWUTS,
             "net": linux.CLONE_NEWNET, "mnt": linux.CLONE_NEWNS}
    opened: list[tuple[int, int]] = []
    for name in order:
        if not _same_namespace(init_pid, name):
            opened.append((os.open(f"/proc/{init_pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flags[name]))
    return opened
