"""Network throughput: TCP through a published port and container to container over a bridge,
for berth and, in the same run, docker (its docker-proxy) when a dockerd is reachable.

    python bench/network.py [--size MiB] [--runs N] [--quick] [--json] [--docker-host unix:///...]

Each engine gets a user-defined bridge network with two busybox containers: a server running
``httpd`` over a file of ``--size`` MiB of zeros, and a client. Two paths are timed, each as the
median of ``--runs`` transfers of the whole file:

* published port: the host fetches ``http://127.0.0.1:PORT/big`` (berth's userland proxy in
  berthd, docker's docker-proxy for loopback clients);
* bridge: the client runs ``time -p wget -O /dev/null http://server/big`` (name resolved by the
  engine's DNS, bytes over the Linux bridge; no proxy).

Throughput is in MB/s (10**6 bytes per second). All traffic stays on this machine (loopback and
the bench's own bridges). berth runs on a private berthd (temporary data root, removed after);
docker is the dockerd named by ``--docker-host`` or ``BERTH_BENCH_DOCKER_HOST``,
``BERTH_TEST_DOCKERD_HOST``, ``DOCKER_HOST``, /var/run/docker.sock, else a running dockerd found
by its ``-H unix://`` argument (test suites' private ``dockerd-test-*`` ones left out), else a
private dockerd when one is installed; ``BERTH_BENCH_NO_DOCKER=1`` skips docker. Its default
``docker0`` may be gone, so docker gets a user-defined network too.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.daemon_fixture import Daemon  # noqa: E402
from tests.dockerd_fixture import Dockerd, start_dockerd  # noqa: E402

from bench.common import Row, write_json  # noqa: E402

PATHS = {
    "published port": "host -> {proxy} -> container, 127.0.0.1",
    "bridge": "container -> container on a user bridge network",
}
PROXIES = {"berth": "berthd's userland proxy", "docker": "docker-proxy"}


@dataclass
class Measure:
    """Median throughput of one engine on one path (``mbps`` None when it could not be measured)."""

    engine: str
    path: str
    mbps: float | None
    samples: list[float] = field(default_factory=list)
    error: str = ""


class Engine:
    """One container engine driven through its CLI: ``cli(*args) -> stdout`` raising on failure."""

    def __init__(self, name: str, cli: Callable[..., str], image: str) -> None:
        self.name, self.cli, self.image = name, cli, image
        self.made: list[tuple[str, str]] = []

    def cleanup(self) -> None:
        for kind, ref in reversed(self.made):
            try:
                self.cli(*(["rm", "-f", ref] if kind == "container" else [kind, "rm", ref]))
            except (AssertionError, subprocess.SubprocessError, OSError):
                pass


def free_port() -> int:
    """A TCP port free on 0.0.0.0 right now."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 60) -> int:
    """GET ``http://127.0.0.1:port/path`` (no proxy variables: http.client), returns the body size;
    raises OSError unless the answer is 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        if response.status != 200:
            raise OSError(f"HTTP {response.status} for {path}")
        size = 0
        while chunk := response.read(1 << 20):
            size += len(chunk)
        return size
    finally:
        conn.close()


def wait_ready(port: int, timeout: float = 60) -> None:
    """Wait until the server behind ``port`` has written its file and serves ``/ready``."""
    deadline = time.time() + timeout
    while True:
        try:
            http_get(port, "/ready", timeout=5)
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def measure(engine: Engine, size_mib: int, runs: int) -> list[Measure]:
    """Both paths on ``engine``: start the network and the two containers, time the transfers."""
    tag = uuid.uuid4().hex[:8]
    net, server, client = f"bench-net-{tag}", f"bench-srv-{tag}", f"bench-cli-{tag}"
    port = free_port()
    engine.cli("network", "create", net)
    engine.made.append(("network", net))
    script = (f"dd if=/dev/zero of=/tmp/big bs=1M count={size_mib} 2>/dev/null && echo ok > /tmp/ready "
              "&& exec httpd -f -p 80 -h /tmp")
    engine.made.append(("container", server))
    engine.cli("run", "-d", "--name", server, "--network", net, "-p", f"{port}:80", engine.image, "sh", "-c", script)
    engine.made.append(("container", client))
    engine.cli("run", "-d", "--name", client, "--network", net, engine.image, "sleep", "3600")
    wait_ready(port)
    results = []
    for path, timed in (("published port", lambda: _published(port, size_mib)),
                        ("bridge", lambda: _bridge(engine, client, server, size_mib))):
        try:
            timed()  # warm-up: ARP, DNS, page cache
            samples = [timed() for _ in range(runs)]
            results.append(Measure(engine.name, path, statistics.median(samples), samples))
        except (OSError, AssertionError, ValueError, subprocess.SubprocessError) as exc:
            results.append(Measure(engine.name, path, None, error=str(exc).strip().splitlines()[-1][:200]))
    return results


def _published(port: int, size_mib: int) -> float:
    start = time.perf_counter()
    size = http_get(port, "/big")
    elapsed = time.perf_counter() - start
    if size != size_mib << 20:
        raise OSError(f"short transfer: {size} bytes")
    return size / elapsed / 1e6


def _bridge(engine: Engine, client: str, server: str, size_mib: int) -> float:
    out = engine.cli("exec", client, "sh", "-c", f"time -p wget -q -O /dev/null http://{server}/big 2>&1")
    real = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("real "))
    return (size_mib << 20) / max(real, 0.01) / 1e6


# ---- engines


def _busybox_tar(workdir: Path) -> Path:
    spec = importlib.util.spec_from_file_location("mkbusybox", ROOT / "contrib/mkimage/mkbusybox.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = workdir / "busybox.tar"
    module.build_tar(str(out))
    return out


def _running_dockerd_sockets() -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or os.path.basename(argv[0].decode(errors="replace")) != "dockerd":
            continue
        words = [a.decode(errors="replace") for a in argv]
        for flag, value in zip(words, words[1:], strict=False):
            if flag in ("-H", "--host") and value.startswith("unix://") and "dockerd-test-" not in value:
                found.append(value)
    return sorted(found)


def docker_host(explicit: str | None) -> str | None:
    """The dockerd to compare with (see the module docstring), or None to start a private one."""
    for value in (explicit, os.environ.get("BERTH_BENCH_DOCKER_HOST"), os.environ.get("BERTH_TEST_DOCKERD_HOST"),
                  os.environ.get("DOCKER_HOST")):
        if value:
            return value
    if os.path.exists("/var/run/docker.sock"):
        return "unix:///var/run/docker.sock"
    running = _running_dockerd_sockets()
    return running[0] if running else None


def open_docker(busybox: Path, explicit: str | None) -> tuple[Dockerd | None, str]:
    """A Dockerd to use and a note on where it came from (None and the reason when unavailable)."""
    if os.environ.get("BERTH_BENCH_NO_DOCKER") or not shutil.which("docker"):
        return None, "skipped" if os.environ.get("BERTH_BENCH_NO_DOCKER") else "no docker CLI"
    host = docker_host(explicit)
    if host is not None:
        d = Dockerd(host)
        if d.docker("version", "--format", "{{.Server.Version}}", timeout=20).returncode == 0:
            return d, f"dockerd at {host}"
        return None, f"dockerd at {host} does not answer"
    started = start_dockerd(busybox)
    return (started, "private dockerd") if started is not None else (None, "dockerd not installed")


def run(size_mib: int = 256, runs: int = 5, docker: str | None = None, log: Callable[[str], None] = print
        ) -> list[Measure]:
    """Measure berth and (when available) docker; returns one Measure per engine and path."""
    work = Path(tempfile.mkdtemp(prefix="berth-bench-net-"))
    results: list[Measure] = []
    try:
        busybox = _busybox_tar(work)
        (work / "berth").mkdir()
        berthd = Daemon(work / "berth")
        try:
            berthd.start()
            berthd.ok("import", "-c", 'CMD ["sh"]', str(busybox), "busybox:latest")
            berth = Engine("berth", berthd.ok, "busybox:latest")
            try:
                results += measure(berth, size_mib, runs)
            finally:
                berth.cleanup()
        finally:
            berthd.cleanup()
        results += _measure_docker(busybox, size_mib, runs, docker, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def _measure_docker(busybox: Path, size_mib: int, runs: int, explicit: str | None,
                    log: Callable[[str], None]) -> list[Measure]:
    dockerd, note = open_docker(busybox, explicit)
    log(f"docker: {note}")
    if dockerd is None:
        return []
    image = f"berth-bench-busybox:{uuid.uuid4().hex[:8]}"
    engine = Engine("docker", lambda *a: dockerd.docker(*a, check=True).stdout, image)
    try:
        engine.cli("import", "-c", 'CMD ["sh"]', str(busybox), image)
        return measure(engine, size_mib, runs)
    finally:
        engine.cleanup()
        dockerd.docker("rmi", image)
        if dockerd.proc is not None:
            dockerd.stop()


def report(results: list[Measure], size_mib: int, runs: int) -> list[str]:
    """Printable lines: one per engine and path, then berth/docker ratios (docker = 1)."""
    lines = [f"network throughput: median of {runs} transfers of {size_mib} MiB, MB/s = 10^6 bytes/s"]
    by = {(m.engine, m.path): m for m in results}
    for m in results:
        value = f"{m.mbps:.1f} MB/s" if m.mbps is not None else f"n/a ({m.error})"
        lines.append(f"{m.engine} {m.path}: {value}  ({PATHS[m.path].format(proxy=PROXIES[m.engine])})")
    for path in PATHS:
        ours, theirs = by.get(("berth", path)), by.get(("docker", path))
        if ours and theirs and ours.mbps and theirs.mbps:
            lines.append(f"ratio {path} berth/docker: {ours.mbps / theirs.mbps:.2f}")
    return lines


def bench_rows(results: list[Measure], size_mib: int, runs: int) -> list[Row]:
    """The results as ``python -m bench`` rows: one per path, berth and docker side by side."""
    rows = []
    for path, how in PATHS.items():
        medians = {m.engine: m.mbps for m in results if m.path == path}
        errors = "; ".join(f"{m.engine}: {m.error}" for m in results if m.path == path and m.error)
        note = f"{size_mib} MiB per transfer; {how.format(proxy='the proxy')}" + (f"; {errors}" if errors else "")
        rows.append(Row("network", f"TCP, {path}", "MB/s", medians, runs, note))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="MiB per transfer (default 256)")
    parser.add_argument("--runs", type=int, default=5, help="transfers per path, median reported (default 5)")
    parser.add_argument("--quick", action="store_true", help="16 MiB, 1 run: a smoke test")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--docker-host", help="dockerd to compare with (unix:///path)")
    args = parser.parse_args(argv)
    size, runs = (16, 1) if args.quick else (args.size, args.runs)
    results = run(size, runs, args.docker_host, log=(lambda _: None) if args.json else print)
    if args.json:
        print(json.dumps([m.__dict__ for m in results], indent=2))
    else:
        print("\n".join(report(results, size, runs)))
    write_json(bench_rows(results, size, runs))
    return 0 if any(m.engine == "berth" and m.mbps for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
