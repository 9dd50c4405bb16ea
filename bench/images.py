"""Image bench: ``save`` and ``load`` throughput beside docker and podman, and layer unpack
throughput of berth's unpacker (``berth.snapshots.layer.apply_layer``, what berthd runs for every
layer it stores) against GNU ``tar -x`` of the same tar.

The payload is one layer made of the host's ``/usr/lib/python3.*`` tree (thousands of small files
and some big ones, like a real layer), imported into each engine under a unique name that is
removed at the end. Throughput = uncompressed payload size / wall-clock time, in MB/s (10^6 bytes).
Run alone: ``.venv/bin/python -m bench.images``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.common import Row, berth_cli, docker_host, emit, median_of, podman_available, private_berthd

RUNS = 3


def make_payload(directory: Path) -> tuple[Path, int]:
    """Write ``payload.tar`` (the host's python stdlib tree) in ``directory``; returns it and its size."""
    source = sorted(glob.glob("/usr/lib/python3.*"))[0]
    tar_path = directory / "payload.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname=source.lstrip("/"), filter=lambda m: None if "__pycache__" in m.name else m)
    return tar_path, tar_path.stat().st_size


def _fresh_dir(base: Path) -> Path:
    target = base / f"x{uuid.uuid4().hex[:8]}"
    target.mkdir()
    return target


def unpack_row(tar_path: Path, size: int, base: Path) -> Row:
    """Median MB/s of ``apply_layer`` and of ``tar -x`` into an empty directory on the same disk."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from berth.snapshots.layer import apply_layer

    def berth_once() -> float:
        target = _fresh_dir(base)
        start = time.perf_counter()
        with open(tar_path, "rb") as f:
            apply_layer(target, f)
        elapsed = time.perf_counter() - start
        shutil.rmtree(target)
        return size / 1e6 / elapsed

    def tar_once() -> float:
        target = _fresh_dir(base)
        start = time.perf_counter()
        subprocess.run(["tar", "-xf", str(tar_path), "-C", str(target)], check=True)
        elapsed = time.perf_counter() - start
        shutil.rmtree(target)
        return size / 1e6 / elapsed

    return Row("images", "layer unpack", "MB/s", {"berth": median_of(berth_once, RUNS),
                                                  "tar -x": median_of(tar_once, RUNS)}, RUNS,
               f"{size / 1e6:.0f} MB tar of {len(tarfile.open(tar_path).getnames())} entries")


class Engine:
    """One engine's CLI (``argv`` prefix) and environment."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.env = name, argv, env

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Run a CLI command; raises ``RuntimeError`` with its stderr when it fails."""
        proc = subprocess.run([*self.argv, *args], env=self.env, capture_output=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name} {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
        return proc


def engines(berth_host: str) -> list[Engine]:
    """berth, and docker/podman when they are here."""
    found = [Engine("berth", [berth_cli()], {**os.environ, "BERTH_HOST": berth_host})]
    docker = docker_host()
    if docker:
        found.append(Engine("docker", ["docker", "-H", docker]))
    if podman_available():
        found.append(Engine("podman", ["podman"]))
    return found


def save_load(engine: Engine, tar_path: Path, size: int, base: Path) -> tuple[float, float]:
    """Median save and load MB/s of the payload imported as a unique image on ``engine``."""
    name = f"bench-images-{uuid.uuid4().hex[:8]}:latest"
    out = base / f"{engine.name}-saved.tar"
    engine.run("import", str(tar_path), name)
    try:
        def timed(action: Callable[[], object]) -> float:
            start = time.perf_counter()
            action()
            return size / 1e6 / (time.perf_counter() - start)

        def save_once() -> float:
            out.unlink(missing_ok=True)  # podman refuses to write over an existing archive
            return timed(lambda: engine.run("save", "-o", str(out), name))

        save = median_of(save_once, RUNS)

        def load_once() -> float:
            engine.run("rmi", name)
            return timed(lambda: engine.run("load", "-i", str(out)))

        load = median_of(load_once, RUNS, warmup=0)
    finally:
        subprocess.run([*engine.argv, "rmi", "-f", name], env=engine.env, capture_output=True)
        out.unlink(missing_ok=True)
    return save, load


def measure(berth_host: str) -> list[Row]:
    """All image rows."""
    with tempfile.TemporaryDirectory(prefix="bench-images-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        tar_path, size = make_payload(base)
        rows = [unpack_row(tar_path, size, base)]
        saves: dict[str, float | None] = {}
        loads: dict[str, float | None] = {}
        errors = []
        for engine in engines(berth_host):
            try:
                saves[engine.name], loads[engine.name] = save_load(engine, tar_path, size, base)
            except RuntimeError as exc:
                errors.append(str(exc))
        note = "; ".join(errors)
        rows.append(Row("images", "save", "MB/s", saves, RUNS, note))
        rows.append(Row("images", "load", "MB/s", loads, RUNS))
    return rows


def main() -> int:
    with private_berthd() as host:
        emit(measure(host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
