"""A command on a pseudo-terminal of its own, for the tests of ``run -it``, ``exec -it``,
``attach`` and ``start -ai`` (berth's CLI, the docker CLI, docker-py's peers)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time


class PtyProcess:
    """``argv`` on a new pseudo-terminal of ``rows`` x ``cols`` (its controlling terminal and
    stdio), run with ``env`` (the caller's environment when None): read its output, type into it."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, rows: int = 30, cols: int = 100) -> None:
        pid, fd = pty.fork()
        if pid == 0:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execvpe(argv[0], argv, os.environ if env is None else env)
        self.pid, self.fd, self.output, self._seen = pid, fd, b"", 0
        self._reaped = False

    def _pump(self, timeout: float) -> bool:
        """Read what arrives within ``timeout`` s; False once the other side closed."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return True
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the other side closed
            return False
        self.output += chunk
        return bool(chunk)

    def read_until(self, needle: bytes, timeout: float = 20) -> bytes:
        """Read until ``needle`` is in the output, the terminal closes or ``timeout`` s pass;
        returns all the output so far (the caller checks it)."""
        deadline = time.monotonic() + timeout
        while needle not in self.output and time.monotonic() < deadline:
            if not self._pump(0.2):
                break
        return self.output

    def expect(self, needle: bytes, timeout: float = 20) -> bytes:
        """Wait until ``needle`` appears after what earlier calls consumed; returns the text up to
        it. Raises AssertionError (with the output) when it does not come in time."""
        deadline = time.monotonic() + timeout
        while self.output.find(needle, self._seen) < 0:
            if time.monotonic() > deadline or not self._pump(0.1):
                raise AssertionError(f"{needle!r} not seen; output: {self.output!r}")
        end = self.output.find(needle, self._seen) + len(needle)
        text, self._seen = self.output[self._seen:end], end
        return text

    def type(self, data: bytes) -> None:
        """Send keystrokes."""
        os.write(self.fd, data)

    def wait(self, timeout: float = 30) -> int:
        """Exit status of the process (draining its output meanwhile); AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._pump(0.1)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self._reaped = True
                return os.waitstatus_to_exitcode(status)
        raise AssertionError(f"still running; output: {self.output!r}")

    def finish(self, timeout: float = 30) -> tuple[int, bytes]:
        """Read to the end: (exit status, all output); the terminal is closed. After ``timeout`` s
        the process is killed and AssertionError raised."""
        try:
            status = self.wait(timeout)
            self.read_until(b"\0never\0", timeout=0.3)
            return status, self.output
        finally:
            self.close()

    def close(self) -> None:
        """Kill the process if it still runs and close the terminal (idempotent)."""
        if not self._reaped:  # a reaped pid may already belong to another process
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self._reaped = True
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
