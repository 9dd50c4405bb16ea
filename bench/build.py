"""Build bench: cold and cached build times of a 10-step Dockerfile, berth beside
``DOCKER_BUILDKIT=0 docker build`` (docker's classic builder, the one berth implements) and
``podman build`` when they are here, in the same run (issue #4, acceptance 6). docker is the
dockerd ``bench.common.docker_host`` finds, else a private one started for the run when dockerd
is installed.

    .venv/bin/python -m bench.build [--runs N]

Each engine gets the same busybox root filesystem (``contrib/mkimage``, cached) imported under a
unique name, and builds the same context (50 small source files and a config file) with
``--network none``: nothing leaves the machine. "cold" is ``build --no-cache`` (every step runs:
two RUN containers, three COPY layers, five metadata images); "cached" rebuilds the unchanged
context, every step a cache hit (checked: a run whose output does not show 9 hits fails). Times
are wall-clock seconds of the CLI command, medians of ``--runs`` builds after one warm-up build.
Everything the bench tags is removed at the end (the intermediate images go with the tags).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import ROOT, Row, berth_cli, docker_host, emit, median_of, podman_available, private_berthd

RUNS = 3
DOCKERFILE = """\
FROM {base}
ARG RELEASE=1
ENV APP_HOME=/app
WORKDIR /app
COPY src/ ./src/
RUN find src -type f | sort > manifest.txt
COPY config.json /etc/app/config.json
RUN wc -c src/*.txt > sizes.txt
LABEL org.example.bench=build
CMD ["cat", "/app/manifest.txt"]
"""
STEPS = DOCKERFILE.count("\n")


def make_context(root: Path, base: str) -> Path:
    """Write the bench's build context under ``root`` for base image ``base``; returns it."""
    context = root / "context"
    (context / "src").mkdir(parents=True)
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    for number in range(50):
        (context / "src" / f"part{number:02d}.txt").write_text(f"part {number}\n" * 200)
    (context / "config.json").write_text('{"bench": "build"}\n')
    return context


@dataclass
class Engine:
    """One engine's CLI (``argv`` prefix and environment) and the tags the bench gave it."""

    name: str
    argv: list[str]
    env: dict[str, str]
    tags: list[str] = field(default_factory=list)

    def run(self, *args: str) -> str:
        """Run a CLI command; its stdout. Raises RuntimeError with its stderr when it fails."""
        proc = subprocess.run([*self.argv, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name} {' '.join(args[:2])}: {proc.stderr.strip()[-500:]}")
        return proc.stdout

    def remove_tags(self) -> None:
        """Best effort: remove every tag the bench made, newest first (parents follow)."""
        for tag in reversed(self.tags):
            subprocess.run([*self.argv, "rmi", "-f", tag], env=self.env, capture_output=True, timeout=120)


@contextlib.contextmanager
def docker_engine(tar: Path) -> Iterator[Engine | None]:
    """docker's classic builder on the dockerd ``bench.common.docker_host`` finds, else on a
    private dockerd started for the run when one is installed (stopped afterwards), else None."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    host = docker_host()
    if host:
        yield Engine("docker", ["docker", "-H", host], env)
        return
    if not shutil.which("docker"):
        yield None
        return
    sys.path.insert(0, str(ROOT))
    from tests.dockerd_fixture import start_dockerd

    private = start_dockerd(tar)
    try:
        yield Engine("docker", ["docker", "-H", private.host], env) if private else None
    finally:
        if private is not None:
            private.stop()
            if private.root is not None:  # the fixture leaves its log beside the data root
                private.root.with_name(private.root.name + ".log").unlink(missing_ok=True)


@contextlib.contextmanager
def engines(berth_host: str, tar: Path) -> Iterator[list[Engine]]:
    """berth on ``berth_host``, docker's classic builder and podman when they are here."""
    found = [Engine("berth", [berth_cli()], {**os.environ, "BERTH_HOST": berth_host})]
    with docker_engine(tar) as docker:
        if docker is not None:
            found.append(docker)
        if podman_available():
            found.append(Engine("podman", ["podman"], dict(os.environ)))
        yield found


def busybox_tar() -> Path:
    """The busybox root filesystem tar contrib/mkimage makes (cached)."""
    sys.path.insert(0, str(ROOT))
    from contrib.mkimage import baseimages, rootfs

    return baseimages.busybox_tar(rootfs.Cache(), lambda _line: None)


def measure_engine(engine: Engine, tar: Path, work: Path, runs: int) -> tuple[float, float]:
    """(cold, cached) median seconds of building the bench context on ``engine``."""
    name = f"bench-build-{uuid.uuid4().hex[:8]}"
    engine.tags.append(f"{name}:base")
    engine.run("import", str(tar), f"{name}:base")
    context = make_context(work / engine.name, f"{name}:base")
    counter = iter(range(10**6))

    def build(*flags: str) -> Callable[[], float]:
        def once() -> float:
            tag = f"{name}:{next(counter)}"
            engine.tags.append(tag)
            start = time.perf_counter()
            out = engine.run("build", "--network", "none", *flags, "-t", tag, str(context))
            elapsed = time.perf_counter() - start
            if "--no-cache" not in flags and engine.name != "podman" and out.count("Using cache") != STEPS - 1:
                raise RuntimeError(f"{engine.name}: the cached build did not hit the cache on every step:\n{out}")
            return elapsed
        return once

    cold = median_of(build("--no-cache"), runs)
    cached = median_of(build(), runs)
    return cold, cached


def measure(berth_host: str, runs: int = RUNS) -> list[Row]:
    """The two build rows (cold, cached), each with every engine that could build."""
    tar = busybox_tar()
    cold: dict[str, float | None] = {}
    cached: dict[str, float | None] = {}
    errors = []
    with tempfile.TemporaryDirectory(prefix="bench-build-", dir="/var/tmp") as tmp, \
            engines(berth_host, tar) as found:
        for engine in found:
            try:
                cold[engine.name], cached[engine.name] = measure_engine(engine, tar, Path(tmp), runs)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.append(str(exc).splitlines()[0])
            finally:
                engine.remove_tags()
    peers = "docker: DOCKER_BUILDKIT=0 docker build (classic builder)"
    return [Row("build", f"{STEPS}-step Dockerfile, cold (--no-cache)", "s", cold, runs,
                "; ".join([peers, *errors])),
            Row("build", f"{STEPS}-step Dockerfile, cached (every step hits)", "s", cached, runs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.build", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"builds per median (default {RUNS})")
    args = parser.parse_args(argv)
    with private_berthd() as host:
        rows = measure(host, args.runs)
        emit(rows)
    return 0 if rows[0].medians.get("berth") is not None else 1


if __name__ == "__main__":
    sys.exit(main())
