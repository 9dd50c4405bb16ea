"""Make sure a berthd serves the demo: reuse the one answering on the socket, or start one in the
background (its own session, so it outlives the demo) with its log in a known file.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LOG = Path("/var/log/berth/berthd.log")


@dataclass(frozen=True)
class DaemonPlace:
    """Where berthd lives: ``data_root``, ``exec_root``, the unix socket ``sock``, its ``log`` file
    and the default bridge's name (``bridge``)."""

    data_root: Path = Path("/var/lib/berth")
    exec_root: Path = Path("/run/berth")
    sock: Path = Path("/run/berth/berth.sock")
    log: Path = DEFAULT_LOG
    bridge: str = "berth0"

    @property
    def host(self) -> str:
        """The address clients use (``unix:///run/berth/berth.sock``)."""
        return f"unix://{self.sock}"

    def argv(self, berthd: str) -> list[str]:
        """The berthd command line for this place."""
        argv = [berthd, "--data-root", str(self.data_root), "--exec-root", str(self.exec_root), "-H", self.host]
        if self.bridge != "berth0":
            argv += ["--bridge-name", self.bridge]
        return argv

    def pid(self) -> int | None:
        """The running daemon's PID, from the lock file berthd keeps in its data root."""
        try:
            return int((self.data_root / "berthd.lock").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def answers(sock: Path, timeout: float = 2.0) -> bool:
    """True when something serving the Engine API answers ``GET /_ping`` on ``sock``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: demo\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def ensure_berthd(place: DaemonPlace, berthd: str, timeout: float = 30) -> bool:
    """Start berthd at ``place`` unless one answers there already; returns True when it started one.

    The daemon runs in its own session with stdout and stderr appended to ``place.log``. Raises
    RuntimeError (with the log's tail) when it exits or does not answer within ``timeout`` s (it
    is stopped then).
    """
    if answers(place.sock):
        return False
    place.log.parent.mkdir(parents=True, exist_ok=True)
    with open(place.log, "ab") as log:
        proc = subprocess.Popen(place.argv(berthd), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"berthd exited with status {proc.returncode}; its log ({place.log}) ends:\n"
                               + tail(place.log))
        if answers(place.sock):
            return True
        time.sleep(0.1)
    # A daemon that never answered is no use and would hold the data root's lock: stop it.
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    raise RuntimeError(f"berthd did not answer on {place.sock} within {timeout:.0f} s; see {place.log}")


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ("" when unreadable)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_hint(place: DaemonPlace) -> str:
    """The command that stops this berthd (its containers keep running: live restore)."""
    pid = place.pid()
    return f"kill {pid}" if pid else f"kill $(cat {place.data_root}/berthd.lock)"

