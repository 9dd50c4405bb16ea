"""The contract between the shim and an OCI runtime backend.

Two backends implement :class:`RuntimeBackend`: ``berth.runtime.executor`` (our own runtime, in
Python) and ``berth.runtime.runc`` (the system ``runc`` binary). Both take the same OCI bundle
(``config.json`` per the OCI runtime spec, "Configuration") and follow the runtime spec's
lifecycle ("Lifecycle", "Operations"): *create* sets the container up and leaves its init process
waiting; *start* lets it execute the user's program.

The shim calls these methods from a single-threaded process that has made itself a child
subreaper (``PR_SET_CHILD_SUBREAPER``), so the container's init and every exec'd process end up
as the shim's children whatever number of forks the backend needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class RuntimeFailure(Exception):
    """The runtime could not create, start or exec a process.

    ``message`` reads like runc's (docker prints it after ``OCI runtime create failed:``), e.g.
    ``exec: "foo": executable file not found in $PATH`` (the CLI turns that into exit 127) or
    ``exec: "/etc/passwd": permission denied`` (exit 126).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Stdio:
    """File descriptors (in the calling process) given to the container process.

    Without a terminal: ``stdin`` is the read end of a pipe or ``None`` for ``/dev/null``;
    ``stdout``/``stderr`` are write ends of pipes. With a terminal all three are ignored: the
    backend allocates the pty and hands the master back in :class:`Created`.
    """

    stdin: int | None
    stdout: int
    stderr: int


@dataclass(frozen=True)
class Created:
    """A created process: its host PID and, with a terminal, the pty master fd (owned by the caller)."""

    pid: int
    pty_master: int | None = None


class RuntimeBackend(Protocol):
    """What the shim needs from a runtime. Errors are :class:`RuntimeFailure`."""

    def create(self, container_id: str, bundle: Path, stdio: Stdio, terminal: bool) -> Created:
        """Create the container described by ``bundle/config.json``; its init waits for :meth:`start`."""

    def start(self, container_id: str) -> None:
        """Let the created init exec the user's program (fails if the program cannot be run)."""

    def exec(self, container_id: str, init_pid: int, process: dict[str, Any], stdio: Stdio,
             terminal: bool) -> Created:
        """Run an OCI ``process`` object inside the running container whose init is ``init_pid``.

        The process is started right away; exec errors are raised here.
        """

    def delete(self, container_id: str) -> None:
        """Forget runtime state for a stopped container (cgroup removal included). Idempotent."""
