"""What every bench script shares: timing, the engines compared, and the row format the runner reads.

A topic script (``bench/<topic>.py``) measures some cases on each engine that is available and hands
its results to :func:`emit` as :class:`Row` values. ``emit`` prints the script's own table and, when
the runner (``python -m bench``) set ``BENCH_JSON`` to a path, also writes the rows there as JSON, so
the runner can gather every topic into one table. A script runs alone too:
``.venv/bin/python -m bench.<topic>``.

Engines: ``berth`` (always; ``BERTH_HOST`` names a running berthd, else the script starts a private
one with :func:`private_berthd`), ``docker`` (when ``DOCKER_BENCH_HOST`` or ``/run/docker-peer.sock``
or the default ``/var/run/docker.sock`` answers), ``podman`` (when the ``podman`` binary exists).
Stdlib only.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
ENGINES = ("berth", "docker", "podman")
DOCKER_SOCKETS = ("/run/docker-peer.sock", "/var/run/docker.sock")


@dataclass(frozen=True)
class Row:
    """One measured case: its median on each engine (``None`` where the engine did not run).

    ``unit`` is ``"ms"``, ``"s"`` (lower is better) or ``"MB/s"`` (higher is better); ``runs`` is the
    number of samples behind each median; ``note`` says anything a reader needs (e.g. the peer used).
    """

    topic: str
    case: str
    unit: str
    medians: dict[str, float | None] = field(default_factory=dict)
    runs: int = 0
    note: str = ""

    @property
    def higher_is_better(self) -> bool:
        """Throughputs are better high, durations low."""
        return self.unit.endswith("/s")

    def ratio(self, peer: str) -> float | None:
        """berth's median divided by ``peer``'s (``None`` when either is missing or zero)."""
        mine, theirs = self.medians.get("berth"), self.medians.get(peer)
        if not mine or not theirs:
            return None
        return mine / theirs


def median_of(sample: Callable[[], float], runs: int, warmup: int = 1) -> float:
    """Median of ``runs`` calls of ``sample`` (each returns one measurement) after ``warmup`` calls."""
    for _ in range(warmup):
        sample()
    return statistics.median(sample() for _ in range(runs))


def time_command(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 120,
                 input_bytes: bytes | None = None) -> float:
    """Wall-clock seconds of one run of ``argv``; raises ``RuntimeError`` when it fails."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), env=env, input=input_bytes, capture_output=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return elapsed


def ping_unix(path: str, timeout: float = 1.0) -> bool:
    """True when an Engine API server answers ``GET /_ping`` on the unix socket ``path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: bench\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def docker_host() -> str | None:
    """Address of a dockerd to compare with: ``DOCKER_BENCH_HOST``, else the first socket of
    ``DOCKER_SOCKETS`` that answers, else ``None`` (no docker column)."""
    explicit = os.environ.get("DOCKER_BENCH_HOST")
    if explicit:
        return explicit
    if not shutil.which("docker"):
        return None
    for path in DOCKER_SOCKETS:
        if ping_unix(path):
            return f"unix://{path}"
    return None


def podman_available() -> bool:
    """True when ``podman info`` works here (root, local storage)."""
    if not shutil.which("podman"):
        return False
    return subprocess.run(["podman", "info"], capture_output=True, timeout=60).returncode == 0


def berth_cli() -> str:
    """Path of the venv's ``berth`` CLI."""
    return str(VENV_BIN / "berth")


@contextmanager
def private_berthd(tag: str | None = None) -> Iterator[str]:
    """Yield the address of a running berthd: ``BERTH_HOST`` when set, else a private daemon on a
    temporary data root with ``busybox:latest`` imported, stopped and cleaned on exit.

    Raises ``RuntimeError`` when the daemon does not answer within 20 s.
    """
    if os.environ.get("BERTH_HOST"):
        yield os.environ["BERTH_HOST"]
        return
    sys.path.insert(0, str(ROOT))
    from bench.daemon import BenchDaemon

    daemon = BenchDaemon(tag)
    try:
        daemon.start()
        daemon.import_busybox()
        yield daemon.host
    finally:
        daemon.cleanup()


def emit(rows: Sequence[Row], out: Callable[[str], None] = print) -> None:
    """Print ``rows`` as a table and, when ``BENCH_JSON`` names a file, write them there as JSON."""
    from bench.table import notes, render

    out(render(rows))
    for line in notes(rows):
        out(f"  {line}")
    write_json(rows)


def write_json(rows: Sequence[Row]) -> None:
    """Write ``rows`` (atomically) to the file ``BENCH_JSON`` names, for the runner; no-op without it."""
    target = os.environ.get("BENCH_JSON")
    if target:
        tmp = f"{target}.tmp"
        with open(tmp, "w") as f:
            json.dump([asdict(r) for r in rows], f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)


def load_rows(path: str | Path) -> list[Row]:
    """Read the rows a script wrote with :func:`emit` (raises ``OSError``/``ValueError`` on bad files)."""
    with open(path) as f:
        return [Row(**item) for item in json.load(f)]
