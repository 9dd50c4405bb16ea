"""Helpers for the container acceptance tests: unique names that are always removed, polling, and a
process on a real pseudo-terminal to type into (what a user at a terminal does)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

RUN = uuid.uuid4().hex[:8]


def wait_for(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``predicate`` every 50 ms until it returns a true value (returned); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def named(daemon: Any, prefix: str = "acc") -> Iterator[Callable[[], str]]:
    """A factory of unique container names (``<prefix>-<run>-<n>``); every container made under one
    of them is force-removed afterwards, whatever the test did."""
    made: list[str] = []

    def new() -> str:
        made.append(f"{prefix}-{RUN}-{len(made)}")
        return made[-1]

    try:
        yield new
    finally:
        if made:
            daemon.cli("rm", "-f", *made)


def state(daemon: Any, name: str, template: str = "{{.State.Status}}") -> str:
    """``inspect -f TEMPLATE`` of a container (stripped; "" when it does not exist)."""
    return daemon.cli("inspect", "-f", template, name).stdout.strip()


def exists(daemon: Any, name: str) -> bool:
    """True when the daemon has a container called exactly ``name``."""
    return name in daemon.ok("ps", "-a", "--format", "{{.Names}}").split()


class PtyProcess:
    """``argv`` on a new pseudo-terminal of ``rows`` x ``cols``: read its output, type into it."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 30, cols: int = 100) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal and stdio
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execvpe(argv[0], argv, env)
        self.pid, self.fd, self.output, self._seen = pid, fd, b"", 0

    def _pump(self, timeout: float) -> bool:
        if not select.select([self.fd], [], [], timeout)[0]:
            return True
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the other side closed
            return False
        self.output += chunk
        return bool(chunk)

    def expect(self, needle: bytes, timeout: float = 20) -> bytes:
        """Wait until ``needle`` appears after what earlier calls consumed; returns the text up to it."""
        deadline = time.monotonic() + timeout
        while self.output.find(needle, self._seen) < 0:
            if time.monotonic() > deadline or not self._pump(0.1):
                raise AssertionError(f"{needle!r} not seen; output: {self.output!r}")
        end = self.output.find(needle, self._seen) + len(needle)
        text, self._seen = self.output[self._seen:end], end
        return text

    def type(self, text: bytes) -> None:
        """Send keystrokes."""
        os.write(self.fd, text)

    def wait(self, timeout: float = 30) -> int:
        """Exit status of the process (draining its output meanwhile)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._pump(0.1)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
        raise AssertionError(f"still running; output: {self.output!r}")

    def close(self) -> None:
        """Kill the process if it still runs and close the terminal."""
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def popen(daemon: Any, *args: str) -> subprocess.Popen[str]:
    """``berth ARGS`` running in the background against ``daemon`` (text pipes)."""
    from tests.daemon_fixture import BERTH

    return subprocess.Popen([BERTH, *args], env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
