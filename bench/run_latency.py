"""Container run latency: median wall-clock time of ``run --rm busybox true`` (create, start, wait for
the exit, remove: what a user waits for) over at least 10 runs, on berth and, in the same run, on
docker (and podman) when they are here, with the berth/peer ratio (issue #3, acceptance 9).

Two cases: the command as typed (each engine's default network: a veth on its bridge) and with
``--network none`` (no network set-up, so the engines compare on the container alone). A peer whose
default network does not work here (a dockerd started with ``--bridge none``, podman without
netavark) gets no value for that case, and the note says why. Every engine runs the same busybox
root filesystem (``contrib/mkimage/mkbusybox.py``) imported under a unique name that is removed at
the end. ``RUN_LATENCY_RUNS`` sets the run count (default 15, at least 10).
Run alone: ``.venv/bin/python -m bench.run_latency``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    ROOT,
    Row,
    berth_cli,
    docker_host,
    emit,
    median_of,
    podman_available,
    private_berthd,
    time_command,
)

MIN_RUNS = 10
CASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("run --rm busybox true", ()),
    ("run --rm --network none busybox true", ("--network", "none")),
)


@dataclass
class Engine:
    """One engine's CLI (``argv`` prefix, environment) and the image name the bench imported there."""

    name: str
    argv: list[str]
    env: dict[str, str]
    image: str = ""

    def cli(self, *args: str) -> str:
        """Run a CLI command; its stdout. Raises ``RuntimeError`` with its stderr when it fails."""
        proc = subprocess.run([*self.argv, *args], env=self.env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name} {' '.join(args[:2])}: {proc.stderr.strip()[-300:]}")
        return proc.stdout


def runs() -> int:
    """Runs per median: ``RUN_LATENCY_RUNS`` (never below 10)."""
    return max(MIN_RUNS, int(os.environ.get("RUN_LATENCY_RUNS", "15")))


def engines(berth_host: str) -> list[Engine]:
    """berth on ``berth_host``, then docker and podman when they answer here."""
    found = [Engine("berth", [berth_cli()], {**os.environ, "BERTH_HOST": berth_host})]
    peer = docker_host()
    if peer:
        found.append(Engine("docker", ["docker", "-H", peer], dict(os.environ)))
    if podman_available():
        found.append(Engine("podman", ["podman"], dict(os.environ)))
    return found


def busybox_tar(directory: Path) -> Path:
    """The busybox root filesystem tar, written into ``directory``."""
    tar = directory / "busybox.tar"
    subprocess.run([sys.executable, str(ROOT / "contrib/mkimage/mkbusybox.py"), str(tar)], check=True,
                   capture_output=True)
    return tar


def reason(exc: BaseException) -> str:
    """The telling line of a failure: the engine's error line, else the last one (160 chars at most)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or ["failed"]
    errors = [line for line in lines if "rror" in line]
    return (errors or lines)[-1][:160]


def median_ms(engine: Engine, flags: tuple[str, ...], count: int) -> float:
    """Median milliseconds of ``count`` runs of ``run --rm FLAGS IMAGE true`` (after one warm-up,
    which also tells whether the case works on this engine: ``RuntimeError`` when it does not)."""
    argv = [*engine.argv, "run", "--rm", *flags, engine.image, "true"]
    return median_of(lambda: time_command(argv, env=engine.env), count) * 1000


def measure(berth_host: str, count: int) -> list[Row]:
    """One row per case, each with every engine that could run it."""
    medians: dict[str, dict[str, float | None]] = {case: {} for case, _ in CASES}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        tar = busybox_tar(Path(tmp))
        for engine in engines(berth_host):
            engine.image = f"bench-run-{uuid.uuid4().hex[:8]}:latest"
            try:
                engine.cli("import", "-c", 'CMD ["sh"]', str(tar), engine.image)
                for case, flags in CASES:
                    try:
                        medians[case][engine.name] = median_ms(engine, flags, count)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        medians[case][engine.name] = None
                        problems.append(f"{engine.name} `{case}`: {reason(exc)}")
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                problems.append(f"{engine.name}: {reason(exc)}")
            finally:
                subprocess.run([*engine.argv, "rmi", "-f", engine.image], env=engine.env, capture_output=True,
                               timeout=120)
    note = "; ".join([f"{count} runs each, busybox imported under a unique name", *problems])
    return [Row("run_latency", case, "ms", medians[case], count, note if i == 0 else "")
            for i, (case, _) in enumerate(CASES)]


def main() -> int:
    count = runs()
    with private_berthd("run") as host:
        rows = measure(host, count)
    emit(rows)
    return 0 if all(row.medians.get("berth") is not None for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
