"""``stats``: containers' resource usage, once (``--no-stream``) or redrawn every half second.

Sources: docker CLI reference "docker stats" (columns, ``--format`` fields); Engine API v1.41
"ContainerStats"; the docker CLI's CPU and memory formulas (``calculateCPUPercentUnix``,
``calculateMemUsageUnixNoCache``).
"""

from __future__ import annotations

import sys
from typing import Any

from berth.cli import output
from berth.cli.flags import FlagSet
from berth.client.api import APIError, path_quote

STATS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
STATS_TITLES = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
                "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
                "PIDs": "PIDS"}


def cpu_percent(sample: dict[str, Any]) -> float:
    """CPU % as the docker CLI computes it from one stats sample: the container's share of the
    host's CPU time between ``precpu_stats`` and ``cpu_stats``, times the online CPUs, times 100."""
    cpu, pre = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def memory_usage(sample: dict[str, Any]) -> float:
    """Memory in use without the page cache: usage minus ``total_inactive_file`` (cgroup v1) or
    ``inactive_file`` (v2), when smaller than the usage (docker CLI's ``calculateMemUsageUnixNoCache``)."""
    memory = sample.get("memory_stats") or {}
    usage, stats = memory.get("usage", 0), memory.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file"))
    if inactive is not None and inactive < usage:
        return float(usage - inactive)
    return float(usage)


class StatsRow:
    """One container's figures (docker's stats formatter fields); ``sample`` None shows ``--``."""

    def __init__(self, container: str, sample: dict[str, Any] | None, trunc: bool = True) -> None:
        self.Container = container
        self._s = sample
        sid = (sample or {}).get("id") or container
        self.ID = sid[:12] if trunc else sid
        self.Name = ((sample or {}).get("name") or "--").lstrip("/") or "--"

    def _figures(self) -> tuple[float, float, float, int, int, int, int, int]:
        s = self._s or {}
        memory = memory_usage(s)
        limit = float((s.get("memory_stats") or {}).get("limit", 0))
        networks = (s.get("networks") or {}).values()
        rx = sum(n.get("rx_bytes", 0) for n in networks)
        tx = sum(n.get("tx_bytes", 0) for n in networks)
        read = write = 0
        for entry in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
            op = str(entry.get("op", "")).lower()
            read += entry.get("value", 0) if op == "read" else 0
            write += entry.get("value", 0) if op == "write" else 0
        return memory, limit, cpu_percent(s), rx, tx, read, write, (s.get("pids_stats") or {}).get("current", 0)

    @property
    def CPUPerc(self) -> str:
        return "--" if self._s is None else f"{self._figures()[2]:.2f}%"

    @property
    def MemUsage(self) -> str:
        if self._s is None:
            return "-- / --"
        memory, limit = self._figures()[:2]
        return f"{output.bytes_size(memory)} / {output.bytes_size(limit)}"

    @property
    def MemPerc(self) -> str:
        if self._s is None:
            return "--"
        memory, limit = self._figures()[:2]
        return f"{memory / limit * 100.0 if limit else 0.0:.2f}%"

    @property
    def NetIO(self) -> str:
        rx, tx = self._figures()[3:5] if self._s is not None else (0, 0)
        return "--" if self._s is None else f"{output.human_size(rx)} / {output.human_size(tx)}"

    @property
    def BlockIO(self) -> str:
        read, write = self._figures()[5:7] if self._s is not None else (0, 0)
        return "--" if self._s is None else f"{output.human_size(read)} / {output.human_size(write)}"

    @property
    def PIDs(self) -> str:
        return "--" if self._s is None else str(self._figures()[7])

    def to_json(self) -> dict[str, str]:
        return {"BlockIO": self.BlockIO, "CPUPerc": self.CPUPerc, "Container": self.Container, "ID": self.ID,
                "MemPerc": self.MemPerc, "MemUsage": self.MemUsage, "Name": self.Name, "NetIO": self.NetIO,
                "PIDs": self.PIDs}


def stats(ctx: Any, argv: list[str], prog: str) -> int:
    """``stats [CONTAINER...]``: one table (``--no-stream``) or a table redrawn every half second."""
    fs = FlagSet(prog, "[OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics")
    fs.add("-a, --all", help="Show all containers (default shows just running)")
    fs.add("--format", "string", help="Format output using a custom template")
    fs.add("--no-stream", help="Disable streaming stats and only pull the first result")
    fs.add("--no-trunc", help="Do not truncate output")
    args, names = fs.parse_or_exit(argv)
    containers = names or _running_containers(ctx.client, args.all)
    if args.no_stream:
        samples, errors = _first_samples(ctx.client, containers)
        if errors:
            sys.stderr.write("".join(f"Error response from daemon: {e}\n" for e in errors))
            return 1
        rows = [StatsRow(c, samples[c], not args.no_trunc) for c in containers]
        return output.print_rendered(args.format, rows, STATS_TABLE, STATS_TITLES)
    return _stream_stats(ctx.client, names, args)


def _running_containers(client: Any, everything: bool) -> list[str]:
    return [c["Id"] for c in client.get("/containers/json", {"all": everything or None}) or []]


def _first_samples(client: Any, containers: list[str]) -> tuple[dict[str, Any], list[str]]:
    """One sample per container (``stream=0``: the daemon fills ``precpu_stats``), fetched in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    def fetch(container: str) -> Any:
        try:
            return client.get(f"/containers/{path_quote(container)}/stats", {"stream": False})
        except APIError as exc:
            return exc
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(containers)))) as pool:
        results = dict(zip(containers, pool.map(fetch, containers), strict=True))
    errors = [r.message for r in results.values() if isinstance(r, APIError)]
    return results, errors


def _stream_stats(client: Any, names: list[str], args: Any) -> int:
    """Redraw the table every 500 ms from one ``stream=1`` reader thread per container; without names
    the running containers are listed again each time, so new ones appear and stopped ones leave."""
    import threading
    import time

    from berth.gotemplate import TemplateError
    latest: dict[str, Any] = {}
    readers: dict[str, threading.Thread] = {}
    first = True

    def follow(container: str) -> None:
        try:
            response = client.request("GET", f"/containers/{path_quote(container)}/stats", {"stream": True},
                                      stream=True)
            for sample in response.iter_json():
                latest[container] = sample
        except (APIError, OSError) as exc:
            latest[container] = exc
        finally:
            if not names:
                latest.pop(container, None)
    while True:
        containers = names or _running_containers(client, args.all)
        for container in containers:
            if container not in readers or (not names and not readers[container].is_alive()
                                            and container not in latest):
                readers[container] = threading.Thread(target=follow, args=(container,), daemon=True)
                readers[container].start()
        if first:  # as docker, wait (up to 2 s) for a first sample of each before drawing
            first = False
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and any(c not in latest for c in containers):
                time.sleep(0.05)
        failed = [v for v in latest.values() if isinstance(v, APIError)]
        if failed and names:
            sys.stderr.write(f"Error response from daemon: {failed[0].message}\n")
            return 1
        rows = [StatsRow(c, latest.get(c) if isinstance(latest.get(c), dict) else None, not args.no_trunc)
                for c in containers]
        try:
            text = output.render(args.format, rows, STATS_TABLE, STATS_TITLES)
        except TemplateError as exc:
            sys.stderr.write(f"template parsing error: {exc}\n")
            return 1
        # redraw in place as docker does: cursor home, each line cleared to its end, the rest erased
        sys.stdout.write("\033[H" + "".join(line + "\033[K\n" for line in text.splitlines()) + "\033[J")
        sys.stdout.flush()
        time.sleep(0.5)
