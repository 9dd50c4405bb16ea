"""CLI start-up bench: median wall-clock time of ``berth --version`` and ``berth images`` (the venv's
``berth`` console script, so the venv's python) over at least 20 runs each, beside ``docker
--version`` and ``docker images`` when a dockerd answers, with berth/docker ratios.

``berth images`` talks to ``BERTH_HOST`` (or a private berthd with busybox imported); ``docker
images`` to the dockerd of :func:`bench.common.docker_host`. berth's bytecode is compiled first,
as an installed package has it. The note gives the interpreter's own
start (``python -c pass``), the floor no Python CLI gets under. DESIGN decision 9: the CLI imports
only the stdlib on these paths. ``CLI_STARTUP_RUNS`` sets the run count (default 30, at least 20).
Run alone: ``.venv/bin/python -m bench.cli_startup``.
"""

from __future__ import annotations

import os
import sys

from bench.common import (
    ROOT,
    VENV_BIN,
    Row,
    berth_cli,
    docker_host,
    emit,
    median_of,
    private_berthd,
    time_command,
)

MIN_RUNS = 20


def runs() -> int:
    """Runs per measurement: ``CLI_STARTUP_RUNS`` (never below 20)."""
    return max(MIN_RUNS, int(os.environ.get("CLI_STARTUP_RUNS", "30")))


def median_ms(argv: list[str], env: dict[str, str], count: int) -> float:
    """Median milliseconds of ``count`` runs of ``argv`` (after one warm-up run)."""
    return median_of(lambda: time_command(argv, env=env), count) * 1000


def measure(berth_host: str, peer: str | None, count: int) -> list[Row]:
    """The two rows: ``--version`` and ``images``, berth beside docker when ``peer`` is set."""
    berth_env = {**os.environ, "BERTH_HOST": berth_host}
    docker_env = {**os.environ, "DOCKER_HOST": peer} if peer else None
    floor = median_ms([str(VENV_BIN / "python"), "-c", "pass"], berth_env, count)
    note = f"{count} runs; python -c pass takes {floor:.1f} ms; python {sys.version.split()[0]}"
    rows = []
    for case, args in (("--version", ["--version"]), ("images", ["images"])):
        medians: dict[str, float | None] = {"berth": median_ms([berth_cli(), *args], berth_env, count)}
        if docker_env is not None:
            medians["docker"] = median_ms(["docker", *args], docker_env, count)
        rows.append(Row("cli_startup", f"berth {case}", "ms", medians, count, note))
    return rows


def precompile() -> None:
    """Write berth's bytecode caches first, as ``pip install`` does: with ``PYTHONDONTWRITEBYTECODE``
    set, every run would otherwise compile the CLI's modules again and time that instead."""
    import compileall

    compileall.compile_dir(str(ROOT / "src" / "berth"), quiet=1)


def main() -> int:
    count = runs()
    precompile()
    with private_berthd("cli") as host:
        rows = measure(host, docker_host(), count)
    emit(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
