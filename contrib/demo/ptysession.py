"""Drive an interactive command (``berth run -it``, ``berth exec -it``) through a real pseudo-terminal,
the way a person at a terminal would: type a line, wait for the prompt, read what came back.

The command gets the pty's slave side as stdin, stdout and stderr and as its controlling
terminal (80x24), so ``berth`` sees a TTY, puts it in raw mode and asks berthd for a container
TTY; everything it prints is copied to ``echo`` as it arrives.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import TextIO

# Terminal control sequences (cursor moves, colours, ash's cursor-position query): left out of the
# transcript so prompts match and the printed transcript stays readable.
_CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")
# A lone carriage return redraws the line (progress counters): kept for the terminal that shows
# the session, dropped from the text prompts are looked for in.
_LONE_CR = re.compile(r"\r(?!\n)")


class PtyTimeout(RuntimeError):
    """The text waited for did not come in time."""


def _make_controlling_tty() -> None:
    # Runs in the child between fork and exec: stdin is the slave side, the child leads a session.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtySession:
    """``argv`` running on a new pty (environment ``env``, working directory ``cwd``)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, echo: TextIO | None = None,
                 rows: int = 24, cols: int = 80) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True, preexec_fn=_make_controlling_tty)
        os.close(slave)
        self.echo = echo
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.transcript = ""
        self.pending = ""  # output not yet consumed by an expect()
        self.eof = False

    def _read(self, timeout: float) -> bool:
        """Read what is available within ``timeout`` s; False on end of output."""
        if self.eof:
            return False
        if not select.select([self.master], [], [], timeout)[0]:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every slave fd is closed, the command is gone
            data = b""
        if not data:
            self.eof = True
            return False
        shown = _CSI.sub("", self.decoder.decode(data)).replace("\r\n", "\n")
        text = _LONE_CR.sub("", shown)
        self.transcript += text
        self.pending += text
        if self.echo is not None:
            self.echo.write(shown)
            self.echo.flush()
        return True

    def send(self, line: str) -> None:
        """Type ``line`` and Enter (a carriage return, as a terminal sends).

        Output not yet waited for is dropped first, so a prompt the shell drew twice (ash redraws
        it after asking for the cursor position) is not taken for the next one.
        """
        while self._read(0.05) and select.select([self.master], [], [], 0)[0]:
            pass
        self.pending = ""
        os.write(self.master, line.encode() + b"\r")

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait until the output since the last match contains ``pattern`` (a regex).

        Raises PtyTimeout (with the tail of the output) when it does not come within ``timeout`` s
        or the command ends first.
        """
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.MULTILINE)
        while True:
            found = regex.search(self.pending)
            if found:
                self.pending = self.pending[found.end():]
                return found
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.5)) and self.eof:
                raise PtyTimeout(f"waited for {pattern!r}; last output: {self.pending[-300:]!r}")

    def wait(self, timeout: float = 30) -> int:
        """Read until the command ends; returns its exit status (raises PtyTimeout if it does not end)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._read(0.2) and self.proc.poll() is not None:
                return self.proc.returncode
            if self.proc.poll() is not None and not select.select([self.master], [], [], 0.2)[0]:
                return self.proc.returncode
        raise PtyTimeout(f"{self.proc.args!r} did not end within {timeout:.0f} s")

    def close(self) -> None:
        """Kill the command if it still runs and close the pty."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
