"""``python -m bench``: run every topic script beside docker (and podman where it works), print one
table of medians and berth/peer ratios; ``--update BENCHMARKS.md`` also records it with the machine.

Each topic is ``bench/<topic>.py`` run as ``python -m bench.<topic>`` with ``BERTH_HOST`` naming one
private berthd shared by all topics and ``BENCH_JSON`` naming the file its rows go to (see
``bench/common.py``). A topic that fails or overruns its time budget is reported and skipped; the
exit status is 1 when any topic failed. The whole run is meant to take under 10 minutes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, VENV_BIN, Row, docker_host, load_rows, podman_available, private_berthd
from bench.machine import describe
from bench.table import markdown, notes, render

# (module, seconds it may take at most); the sum stays under the 10-minute budget.
TOPICS: tuple[tuple[str, int], ...] = (
    ("cli_startup", 60),
    ("run_latency", 120),
    ("images", 90),
    ("build", 180),
    ("network", 120),
)


def run_topic(topic: str, budget: int, env: dict[str, str], verbose: bool) -> tuple[list[Row], str | None]:
    """Run one topic script; returns its rows and an error line (``None`` when it succeeded)."""
    if not (ROOT / "bench" / f"{topic}.py").exists():
        return [], "not written yet"
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "rows.json"
        try:
            proc = subprocess.run([str(VENV_BIN / "python"), "-m", f"bench.{topic}"], cwd=ROOT,
                                  env={**env, "BENCH_JSON": str(out)}, capture_output=True, text=True,
                                  timeout=budget)
        except subprocess.TimeoutExpired:
            return [], f"over its {budget}s budget"
        if verbose or proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
        rows: list[Row] = []
        if out.exists():
            rows = load_rows(out)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return rows, f"exit {proc.returncode}: {tail}"
        if not rows:
            return rows, "wrote no rows (does it call bench.common.emit?)"
        return rows, None


def write_benchmarks(path: Path, rows: list[Row], failures: dict[str, str], seconds: float,
                     load_at_start: float) -> None:
    """Rewrite ``path`` (atomically) with the machine, the table, notes and failures.

    ``load_at_start`` is the 1-minute load average when the run began: with other work on the
    machine the figures are noisy, and the reader should know."""
    lines = ["# Benchmarks", "",
             "Latest figures from `make bench` (`.venv/bin/python -m bench --update BENCHMARKS.md`): medians,",
             "and berth's median divided by the peer's (for ms and s lower is better, for MB/s higher is better;",
             "so a ratio above 1 means berth is slower for times and faster for throughputs).", "",
             "## Machine", "", *[f"- {item}" for item in describe()], f"- whole run: {seconds:.0f} s",
             f"- load average (1 min): {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
             f" on {os.cpu_count()} cores", "",
             "## Results", "", markdown(rows), ""]
    row_notes = notes(rows)
    if row_notes:
        lines += ["## Notes", "", *[f"- {n}" for n in row_notes], ""]
    if failures:
        lines += ["## Topics that did not report", "", *[f"- {t}: {why}" for t, why in failures.items()], ""]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines))
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("topics", nargs="*", help="topics to run (default: all)")
    parser.add_argument("--update", metavar="FILE", help="rewrite FILE (BENCHMARKS.md) with the results")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each topic's own output")
    args = parser.parse_args(argv)
    chosen = [(t, b) for t, b in TOPICS if not args.topics or t in args.topics]
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    peers = ["docker"] if docker_host() else []
    peers += ["podman"] if podman_available() else []
    print(f"bench: berth beside {', '.join(peers) or 'no peer (docker and podman unavailable)'}", flush=True)
    rows: list[Row] = []
    failures: dict[str, str] = {}
    with private_berthd() as host:
        env = {**os.environ, "BERTH_HOST": host, "PYTHONPATH": str(ROOT)}
        for topic, budget in chosen:
            began = time.monotonic()
            print(f"bench: {topic} ...", end=" ", flush=True)
            topic_rows, error = run_topic(topic, budget, env, args.verbose)
            rows += topic_rows
            print(f"{time.monotonic() - began:.0f} s" + (f" ({error})" if error else ""), flush=True)
            if error:
                failures[topic] = error
    seconds = time.monotonic() - started
    print()
    print(render(rows) if rows else "no results")
    for line in notes(rows):
        print(f"  {line}")
    print(f"\nbench: {seconds:.0f} s in all")
    if args.update:
        write_benchmarks(Path(args.update), rows, failures, seconds, load_at_start)
        print(f"bench: wrote {args.update}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
