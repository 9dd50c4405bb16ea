"""Issue #4 acceptance line 6: "``bench/build`` prints cold and cached build times of a 10-step
Dockerfile, and of ``DOCKER_BUILDKIT=0 docker build`` in the same run when dockerd is
installed, with the ratios." (``bench/build.py``, one run per case to keep the suite short.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dockerd_host(request: pytest.FixtureRequest) -> str | None:
    try:
        return request.getfixturevalue("dockerd").host
    except pytest.skip.Exception:
        return None


def test_bench_build_prints_cold_and_cached_times_with_ratios(shared_daemon, request, tmp_path: Path):
    """6. Cold and cached times of a 10-step Dockerfile beside docker's classic builder."""
    docker = _dockerd_host(request)
    rows_file = tmp_path / "rows.json"
    env = {**os.environ, "BERTH_HOST": shared_daemon.host, "BENCH_JSON": str(rows_file), "PYTHONPATH": str(ROOT)}
    if docker:
        env["DOCKER_BENCH_HOST"] = docker
    done = subprocess.run([sys.executable, "-m", "bench.build", "--runs", "1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {row["case"]: row for row in json.loads(rows_file.read_text())}
    assert sorted(rows) == ["10-step Dockerfile, cached (every step hits)", "10-step Dockerfile, cold (--no-cache)"]
    for row in rows.values():
        assert row["unit"] == "s" and row["medians"]["berth"] > 0
    header = done.stdout.splitlines()[0].split()
    assert header[:4] == ["topic", "case", "unit", "berth"]
    if docker:
        assert "berth/docker" in header and all(row["medians"]["docker"] > 0 for row in rows.values())
        assert len([line for line in done.stdout.splitlines() if line.startswith("build ") and "x " in line]) == 2
    left = shared_daemon.ok("images", "--format", "{{.Repository}}").split()
    assert not [name for name in left if name.startswith("bench-build-")]
