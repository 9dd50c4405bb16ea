"""The child side of the executor: what runs between ``fork()`` and ``execve()``.

:func:`container_init` becomes a container's PID 1: it joins or creates the namespaces, builds
the filesystem view, applies the process settings, reports ``created`` to the parent, waits for
``start`` and executes the program. :func:`exec_process` does the same for ``exec`` inside a
running container. Both talk to the parent over a close-on-exec ``SOCK_SEQPACKET`` socket of
JSON messages, so a successful ``execve`` reads as end-of-file there and a failure as
``{"error": ...}``. Order and semantics follow the runtime spec's "Lifecycle" and runc's init.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from berth.runtime import caps, linux, mounts, seccomp_bpf
from berth.runtime.devices import populate_dev
from berth.runtime.process import RuntimeFailure, Stdio

TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
EXIT_NOT_FOUND = 127
EXIT_CANNOT_RUN = 126


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """Send one JSON message, with ``fds`` attached as SCM_RIGHTS."""
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the fds that came with it; ``(None, [])`` at end-of-file."""
    data, fds, _, _ = socket.recv_fds(sock, 65536, 4)
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(data), list(fds)


@contextlib.contextmanager
def _step(label: str) -> Iterator[None]:
    """Turn an ``OSError`` inside the block into a :class:`RuntimeFailure` saying what failed."""
    try:
        yield
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise RuntimeFailure(f"{label}: {where}{linux.go_strerror(e)}") from None


def _setup_stdio(stdio: Stdio) -> None:
    """Make the given fds 0, 1 and 2 (the executor replaced a missing stdin by /dev/null)."""
    fds = [stdio.stdin if stdio.stdin is not None else stdio.stdout, stdio.stdout, stdio.stderr]
    # Park the sources above 2 first: a source may itself be 0, 1 or 2.
    parked = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds]
    for target, fd in enumerate(parked):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


def _close_on_exec_from(lowest: int) -> None:
    """Mark every fd >= ``lowest`` close-on-exec (closing them now would pull the rug from
    under Python objects inherited from the parent)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc in this container: walk the plausible range instead
        fds = list(range(lowest, min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 65536)))
    for fd in fds:
        if fd >= lowest:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def _open_pty(size: dict[str, int] | None) -> tuple[int, int, str]:
    """Open a pty pair on the container's own devpts (``process.consoleSize`` applied):
    (master, slave, slave path)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    if size:
        fcntl.ioctl(master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", size.get("height", 0), size.get("width", 0), 0, 0))
    fcntl.ioctl(master, TIOCSPTLCK, array.array("i", [0]))
    number = array.array("I", [0])
    fcntl.ioctl(master, TIOCGPTN, number)
    path = f"/dev/pts/{number[0]}"
    slave = os.open(path, os.O_RDWR | os.O_NOCTTY)
    return master, slave, path


def _take_terminal(slave: int) -> None:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for target in range(3):
        os.dup2(slave, target, inheritable=True)
    if slave > 2:
        os.close(slave)


def _namespace_fds(namespaces: list[dict[str, Any]]) -> list[tuple[int, int]]:
    joins = []
    for ns in namespaces:
        if ns.get("path") and ns["type"] != "pid":
            flag, _ = linux.NAMESPACES[ns["type"]]
            joins.append((os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC), flag))
    return joins


def enter_namespaces(namespaces: list[dict[str, Any]]) -> None:
    """Join the namespaces that have a ``path``, then unshare the new ones (pid excepted: the
    parent forks us into it)."""
    for ns in namespaces:
        if ns["type"] == "user" or (ns["type"] == "mount" and ns.get("path")):
            raise RuntimeFailure(f"{'joining a mount' if ns['type'] == 'mount' else 'a user'} "
                                 "namespace is not supported by berth's runtime")
    joins = _namespace_fds(namespaces)
    for fd, flag in joins:
        linux.setns(fd, flag)
        os.close(fd)
    flags = 0
    for ns in namespaces:
        if not ns.get("path") and ns["type"] != "pid":
            flags |= linux.NAMESPACES[ns["type"]][0]
    if flags:
        linux.unshare(flags)


def setup_rootfs(config: dict[str, Any], bundle: Path) -> None:
    """Build the container's filesystem and pivot into it (runtime-spec "Mounts")."""
    linux_cfg = config.get("linux") or {}
    root = Path(config["root"]["path"])
    rootfs = root if root.is_absolute() else bundle / root
    private_cgroupns = any(ns["type"] == "cgroup" and not ns.get("path")
                           for ns in linux_cfg.get("namespaces") or [])
    mounts.prepare_root(rootfs, linux_cfg.get("rootfsPropagation", ""))
    entries = config.get("mounts") or []
    for entry in entries:
        mounts.mount_entry(rootfs, bundle, entry, private_cgroupns)
    dev_bound = any(e["destination"].rstrip("/") == "/dev" and (e.get("type") == "bind" or "bind" in (
        e.get("options") or []) or "rbind" in (e.get("options") or [])) for e in entries)
    if not dev_bound:
        populate_dev(rootfs, linux_cfg.get("devices") or [], os.path.exists("/proc/kcore"))
    mounts.pivot_root(rootfs)


def finish_rootfs(config: dict[str, Any], console: str | None) -> None:
    """After ``pivot_root``: console, cwd, hostname, sysctls, read-only then masked paths (runc's
    order, so the mount tables match), read-only root."""
    linux_cfg = config.get("linux") or {}
    process = config["process"]
    if console:
        Path("/dev/console").touch(mode=0o600)
        linux.mount(console, "/dev/console", None, linux.MS_BIND)
    with _step("creating the working directory"):
        make_cwd(process.get("cwd") or "/", process.get("user") or {})
    if config.get("hostname") and any(ns["type"] == "uts" for ns in linux_cfg.get("namespaces") or []):
        socket.sethostname(config["hostname"])
    for key, value in (linux_cfg.get("sysctl") or {}).items():
        with _step(f"setting sysctl {key}"), open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)
    mounts.readonly_paths(linux_cfg.get("readonlyPaths") or [])
    mounts.mask_paths(linux_cfg.get("maskedPaths") or [])
    if config["root"].get("readonly"):
        mounts.remount_readonly("/")


def make_cwd(cwd: str, user: dict[str, Any]) -> None:
    """Create a missing working directory (and missing parents), owned by the process user."""
    missing = []
    path = Path(cwd)
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o755)
        os.chown(directory, user.get("uid", 0), user.get("gid", 0))


# Linux resource numbers (asm-generic/resource.h); Python's resource module lacks a few names.
_RLIMITS = {f"RLIMIT_{name}": number for number, name in enumerate((
    "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS",
    "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"))}


def apply_process_limits(process: dict[str, Any]) -> None:
    """``process.rlimits`` and ``process.oomScoreAdj``. Errors read like runc's."""
    for limit in process.get("rlimits") or []:
        number = _RLIMITS[limit["type"]]
        try:
            resource.setrlimit(number, (limit["soft"], limit["hard"]))
        except OSError as e:
            raise RuntimeFailure(f"error setting rlimit type {number}: {linux.go_strerror(e)}") from None
        except ValueError as e:
            # Python turns setrlimit's EPERM and EINVAL into ValueError; say it as runc does.
            text = "operation not permitted" if "not allowed" in str(e) else "invalid argument"
            raise RuntimeFailure(f"error setting rlimit type {number}: {text}") from None
    if process.get("oomScoreAdj") is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(process["oomScoreAdj"]))


def lookup(name: str, env: dict[str, str]) -> str:
    """Find the program like Go's ``exec.LookPath`` with the container's PATH (runc's messages)."""
    def runnable(path: str) -> bool:
        st = os.stat(path)
        return not (st.st_mode & 0o040000) and bool(st.st_mode & 0o111)

    if "/" in name:
        try:
            if runnable(name):
                return name
        except OSError as e:
            raise RuntimeFailure(f'exec: "{name}": stat {name}: {linux.go_strerror(e)}') from None
        raise RuntimeFailure(f'exec: "{name}": permission denied')
    for directory in env.get("PATH", "").split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            if runnable(candidate):
                return candidate
        except OSError:
            continue
    raise RuntimeFailure(f'exec: "{name}": executable file not found in $PATH')


def _environment(process: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in process.get("env") or []:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


def _switch_user(process: dict[str, Any]) -> None:
    """Drop the bounding set, become the process user keeping the permitted capabilities, and
    make them effective again: seccomp and the final capset still need them."""
    wanted = process.get("capabilities") or {}
    bounding = caps.to_mask(c for c in wanted.get("bounding") or [] if c in caps.CAP_NUMBERS)
    for number in range(linux.last_cap() + 1):
        if not bounding >> number & 1:
            linux.prctl(linux.PR_CAPBSET_DROP, number)
    user = process.get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    os.setgroups(list(user.get("additionalGids") or []))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    linux.prctl(linux.PR_SET_KEEPCAPS, 0)
    _, permitted, inheritable = linux.capget()
    linux.capset(permitted, permitted, inheritable)


def _final_capabilities(process: dict[str, Any]) -> None:
    wanted = process.get("capabilities") or {}

    def mask(kind: str) -> int:
        return caps.to_mask(c for c in wanted.get(kind) or [] if c in caps.CAP_NUMBERS)

    linux.capset(mask("effective"), mask("permitted"), mask("inheritable"))
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    for name in wanted.get("ambient") or []:
        if name in caps.CAP_NUMBERS:
            linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, caps.CAP_NUMBERS[name])


def execute(process: dict[str, Any], program: list[tuple[int, int, int, int]] | None,
            seccomp_flags: int) -> NoReturn:
    """Become the container process: user, cwd, lookup, no_new_privs, seccomp, caps, execve.

    Raises :class:`RuntimeFailure` when the program cannot be found or run.
    """
    env = _environment(process)
    args = list(process.get("args") or [])
    if not args:
        raise RuntimeFailure("args must not be empty")
    with _step("setting up the user"):
        _switch_user(process)
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise RuntimeFailure(
            f'chdir to cwd ("{cwd}") set in config.json failed: {linux.go_strerror(e)}') from None
    path = lookup(args[0], env)
    if process.get("noNewPrivileges"):
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.prctl(linux.PR_SET_PDEATHSIG, 0)
    _default_signals()
    if program is not None:
        with _step("loading seccomp filter"):
            seccomp_bpf.install(program, seccomp_flags)
    with _step("applying capabilities"):
        _final_capabilities(process)
    try:
        os.execve(path, args, env)
    except OSError as e:
        raise RuntimeFailure(f"exec {path}: {linux.go_strerror(e)}") from None
    raise AssertionError("unreachable")


def _default_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve: reset them all."""
    for number in signal.valid_signals():
        if number not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(number, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _fail(sock: socket.socket, error: BaseException) -> NoReturn:
    """Report ``error`` to the parent and exit (127 not found, 126 cannot run, else 1)."""
    message = error.message if isinstance(error, RuntimeFailure) else str(error) or repr(error)
    code = 1
    if message.startswith("exec"):
        code = EXIT_NOT_FOUND if "not found" in message or "no such file" in message else \
            EXIT_CANNOT_RUN if "permission denied" in message else 1
    try:
        send(sock, {"error": message})
    finally:
        os._exit(code)


def _await(sock: socket.socket, word: str) -> None:
    message, _ = receive(sock)
    if not message or message.get("go") != word:
        os._exit(1)


def container_init(config: dict[str, Any], bundle: Path, sock: socket.socket, stdio: Stdio,
                   terminal: bool, program: list[tuple[int, int, int, int]] | None) -> NoReturn:
    """Body of a new container's PID 1 (runs in the forked child; never returns)."""
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        # Read the go-ahead before anything can fail: an error must find an empty queue, or
        # closing the socket resets the connection and the parent never reads the message.
        _await(sock, "setup")
        if not terminal:
            _setup_stdio(stdio)
        process = config["process"]
        with _step("joining namespaces"):
            enter_namespaces((config.get("linux") or {}).get("namespaces") or [])
        with _step("preparing rootfs"):
            setup_rootfs(config, bundle)
        master = slave = None
        console = None
        with _step("setting up the console"):
            if terminal:
                master, slave, console = _open_pty(process.get("consoleSize"))
        with _step("finishing rootfs"):
            finish_rootfs(config, console)
        with _step("setting process limits"):
            apply_process_limits(process)
        with _step("taking the terminal"):
            if slave is not None:
                _take_terminal(slave)
            else:
                os.setsid()
        send(sock, {"created": True}, [master] if master is not None else None)
        if master is not None:
            os.close(master)
        _await(sock, "start")
        _close_on_exec_from(3)
        execute(process, program, seccomp_bpf.filter_flags((config.get("linux") or {}).get("seccomp") or {}))
    except BaseException as e:  # noqa: B036 - everything must reach the parent, then exit
        _fail(sock, e)


def exec_process(process: dict[str, Any], namespace_fds: list[tuple[int, int]], sock: socket.socket,
                 stdio: Stdio, terminal: bool, program: list[tuple[int, int, int, int]] | None,
                 seccomp_flags: int) -> NoReturn:
    """Body of a process exec'd into a running container (forked child; never returns).

    ``namespace_fds``: (fd, CLONE_NEW* flag) of the container's namespaces, mount last.
    """
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        _await(sock, "setup")
        if not terminal:
            _setup_stdio(stdio)
        with _step("joining the container's namespaces"):
            for fd, flag in namespace_fds:
                linux.setns(fd, flag)
                os.close(fd)
        with _step("setting process limits"):
            apply_process_limits({**process, "oomScoreAdj": None})
        if terminal:
            with _step("setting up the console"):
                master, slave, _ = _open_pty(process.get("consoleSize"))
                _take_terminal(slave)
            send(sock, {"pty": True}, [master])
            os.close(master)
        _close_on_exec_from(3)
        execute(process, program, seccomp_flags)
    except BaseException as e:  # noqa: B036
        _fail(sock, e)
