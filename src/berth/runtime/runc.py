"""The ``runc`` backend: runs a bundle with the system ``runc`` binary (``--runtime runc``).

Follows runc's command line (runc(8): ``create``, ``start``, ``exec``, ``delete``) and the
OCI runtime spec lifecycle. Without a terminal, runc works in "pass-through" mode: the fds given
to ``runc create``/``runc exec`` as 0, 1 and 2 become the process's stdio. With a terminal,
runc sends the pty master over ``--console-socket`` as an ``SCM_RIGHTS`` message
(runc docs, "terminals.md"). With ``--detach``/``create`` runc exits once the process is
set up, so the process is reparented to the caller, which must be a child subreaper.

Errors are read from runc's JSON log (``--log-format json``): its last ``error`` record is
runc's own message, e.g. ``runc create failed: unable to start container process: exec:
"foo": executable file not found in $PATH``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from berth.runtime.process import Created, RuntimeFailure, Stdio

DEFAULT_ROOT = Path("/run/berth/runc")
CONSOLE_TIMEOUT = 10.0
"""Seconds to wait for runc's console connection once ``create``/``exec`` succeeded."""


class RuncBackend:
    """:class:`berth.runtime.process.RuntimeBackend` over the ``runc`` binary.

    ``root`` is runc's state directory (``runc --root``), created if missing; ``binary`` the
    runc executable. All methods block until runc returns and raise :class:`RuntimeFailure`
    carrying runc's message.
    """

    def __init__(self, root: Path | None = None, binary: str = "runc") -> None:
        self.root = Path(root) if root is not None else DEFAULT_ROOT
        self.binary = binary

    def create(self, container_id: str, bundle: Path, stdio: Stdio, terminal: bool) -> Created:
        """``runc create --bundle B --pid-file F [--console-socket S] ID``: the init waits for start."""
        with self._workdir() as work:
            argv = ["create", "--bundle", str(bundle), "--pid-file", str(work / "pid")]
            return self._spawn(argv, container_id, work, stdio, terminal)

    def start(self, container_id: str) -> None:
        """``runc start ID``: the created init execs the user's program."""
        self._run(["start", container_id])

    def exec(self, container_id: str, init_pid: int, process: dict[str, Any], stdio: Stdio,
             terminal: bool) -> Created:
        """``runc exec --process P --pid-file F --detach [--console-socket S] ID``.

        ``init_pid`` is not needed: runc finds the container by ID in its state root.
        """
        with self._workdir() as work:
            spec = dict(process, terminal=terminal)
            (work / "process.json").write_text(json.dumps(spec))
            argv = ["exec", "--process", str(work / "process.json"), "--pid-file", str(work / "pid"),
                    "--detach"]
            return self._spawn(argv, container_id, work, stdio, terminal)

    def delete(self, container_id: str) -> None:
        """``runc delete --force ID`` (kills a live init, removes state and cgroups). Idempotent."""
        try:
            self._run(["delete", "--force", container_id])
        except RuntimeFailure as exc:
            if "does not exist" not in exc.message:
                raise

    def kill(self, container_id: str, signal: int, all_processes: bool = False) -> None:
        """``runc kill [--all] ID SIGNAL``: signal the init (or every process of the container)."""
        self._run(["kill", *(["--all"] if all_processes else []), container_id, str(signal)])

    def _spawn(self, argv: list[str], container_id: str, work: Path, stdio: Stdio,
               terminal: bool) -> Created:
        if not terminal:
            self._run([*argv, container_id], work, stdio)
            return Created(_read_pid(work / "pid"))
        with _console_socket(work) as (listener, path):
            self._run([*argv, "--console-socket", str(path), container_id], work)
            master = _receive_pty_master(listener)
        return Created(_read_pid(work / "pid"), master)

    def _run(self, argv: list[str], work: Path | None = None, stdio: Stdio | None = None) -> None:
        """Run ``runc --root R --log L --log-format json ARGV``; raise RuntimeFailure on failure.

        With ``stdio`` runc's fds 0-2 are the process's (pass-through); otherwise its stderr is
        captured as a fallback message.
        """
        with contextlib.ExitStack() as stack:
            if work is None:
                work = stack.enter_context(self._workdir())
            log = work / "runc.log"
            command = [self.binary, "--root", str(self.root), "--log", str(log), "--log-format", "json", *argv]
            if stdio is None:
                result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, check=False)
                stderr = result.stderr.decode(errors="replace")
            else:
                result = subprocess.run(command, stdin=stdio.stdin if stdio.stdin is not None else subprocess.DEVNULL,
                                        stdout=stdio.stdout, stderr=stdio.stderr, check=False)
                stderr = ""
            if result.returncode != 0:
                raise RuntimeFailure(_runc_error(log, stderr, argv[0], result.returncode))

    @contextlib.contextmanager
    def _workdir(self) -> Iterator[Path]:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = Path(tempfile.mkdtemp(prefix=".call-", dir=self.root))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise RuntimeFailure(f"runc did not write a pid file: {exc}") from None


def _runc_error(log: Path, stderr: str, action: str, returncode: int) -> str:
    """runc's last error message from its JSON log, else its stderr, else a generic line."""
    message = ""
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("level") in ("error", "fatal"):
                message = str(record.get("msg", ""))
    return message or stderr.strip() or f"runc {action} failed with exit status {returncode}"


@contextlib.contextmanager
def _console_socket(work: Path) -> Iterator[tuple[socket.socket, Path]]:
    """A listening unix socket for ``--console-socket`` (in ``work``, or in /tmp if that path is too long)."""
    with contextlib.ExitStack() as stack:
        path = work / "console.sock"
        if len(os.fsencode(path)) > 107:
            short = stack.enter_context(tempfile.TemporaryDirectory(prefix="berth-console-"))
            path = Path(short) / "c.sock"
        listener = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC))
        listener.bind(str(path))
        listener.listen(1)
        yield listener, path


def _receive_pty_master(listener: socket.socket) -> int:
    """Accept runc's connection (queued while runc ran) and take the pty master fd it sends."""
    listener.settimeout(CONSOLE_TIMEOUT)
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        raise RuntimeFailure("runc did not send the console (pty master)") from None
    with conn:
        conn.settimeout(CONSOLE_TIMEOUT)
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    if not fds:
        raise RuntimeFailure("runc sent no pty master over the console socket")
    os.set_inheritable(fds[0], False)
    return fds[0]
