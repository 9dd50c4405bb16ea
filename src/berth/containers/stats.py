"""``docker stats``: docker's ``StatsJSON`` from a container's cgroup and network namespace.

Shape and units follow the Engine API v1.41 "Get container stats based on resource usage"
(``ContainerStatsResponse``) as dockerd 20.10 fills it on a cgroup v1 host: CPU times in
nanoseconds (``cpuacct.usage``, ``cpuacct.usage_percpu``, ``cpuacct.stat`` ticks scaled by
``CLK_TCK``), ``system_cpu_usage`` the sum of the first seven ``cpu`` fields of ``/proc/stat``
(proc(5)) in nanoseconds, memory in bytes with the limit capped at the host's memory, network
counters per interface of ``/proc/<pid>/net/dev`` (``lo`` left out). On a cgroup v2 host the v2
files are read (``cpu.stat``, ``memory.current``, ``io.stat``), as dockerd does there.

Streaming sends one sample a second, each carrying the previous one in ``precpu_stats``; a
stopped container gives docker's zeroed document (``stream=false``) or nothing until it runs.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from berth.containers.model import ZERO_TIME, Container
from berth.errors import InvalidParameter
from berth.runtime import cgroups
from berth.timeutil import rfc3339_nano

INTERVAL = 1.0
BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
              "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
              "io_time_recursive", "sectors_recursive")
# The v1 memory.stat keys dockerd reports (containerd's typed v1 metrics), each also as total_<key>.
V1_MEMORY_KEYS = ("cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout", "pgfault",
                  "pgmajfault", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")
V1_MEMORY_LIMITS = ("hierarchical_memory_limit", "hierarchical_memsw_limit")
_NET_FIELDS = {0: "rx_bytes", 1: "rx_packets", 2: "rx_errors", 3: "rx_dropped",
               8: "tx_bytes", 9: "tx_packets", 10: "tx_errors", 11: "tx_dropped"}


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _number(path: Path) -> int:
    text = _text(path).strip()
    return int(text) if text.isdigit() else 0


def _keyed(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def zero_cpu() -> dict[str, Any]:
    """``cpu_stats`` of a container with no sample (docker's zero value)."""
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def empty_stats(c: Container) -> dict[str, Any]:
    """The document dockerd answers for a container that is not running."""
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {},
            "blkio_stats": {key: None for key in BLKIO_KEYS}, "num_procs": 0, "storage_stats": {},
            "cpu_stats": zero_cpu(), "precpu_stats": zero_cpu(), "memory_stats": {}, "name": "/" + c.name,
            "id": c.id}


def system_cpu_usage(proc_stat: str, clock_ticks: int) -> int:
    """Host CPU time in nanoseconds: the first seven fields of the ``cpu`` line of /proc/stat."""
    for line in proc_stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            return sum(int(v) for v in fields[1:8]) * 1_000_000_000 // clock_ticks
    return 0


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """``networks`` from /proc/<pid>/net/dev: interface -> rx/tx bytes, packets, errors, dropped."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or name == "lo":
            continue
        values = [int(v) for v in rest.split()]
        out[name] = {key: values[i] for i, key in _NET_FIELDS.items() if i < len(values)}
    return out


def parse_blkio_v1(text: str) -> list[dict[str, Any]]:
    """Entries of a v1 ``blkio.*_recursive`` file (``8:0 Read 4096``; the ``Total`` line dropped)."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and ":" in fields[0] and fields[2].isdigit():
            major, _, minor = fields[0].partition(":")
            out.append({"major": int(major), "minor": int(minor), "op": fields[1], "value": int(fields[2])})
    return out


def parse_io_stat_v2(text: str) -> dict[str, list[dict[str, Any]]]:
    """``io_service_bytes_recursive`` and ``io_serviced_recursive`` from a v2 ``io.stat``."""
    names = {"rbytes": ("io_service_bytes_recursive", "read"), "wbytes": ("io_service_bytes_recursive", "write"),
             "rios": ("io_serviced_recursive", "read"), "wios": ("io_serviced_recursive", "write")}
    out: dict[str, list[dict[str, Any]]] = {"io_service_bytes_recursive": [], "io_serviced_recursive": []}
    for line in text.splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        for pair in pairs:
            key, _, value = pair.partition("=")
            if key in names and value.isdigit():
                target, op = names[key]
                out[target].append({"major": int(major), "minor": int(minor), "op": op, "value": int(value)})
    return out


def v1_memory_stats(memory_stat: str) -> dict[str, int]:
    """The ``memory_stats.stats`` object from a v1 ``memory.stat``: docker's keys, sorted as Go
    writes a map."""
    values = _keyed(memory_stat)
    keys = {*V1_MEMORY_KEYS, *(f"total_{k}" for k in V1_MEMORY_KEYS), *V1_MEMORY_LIMITS}
    return {k: values[k] for k in sorted(keys) if k in values}


def _host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _v1_sample(dirs: dict[str, Path], clock_ticks: int) -> dict[str, Any]:
    cpuacct, cpu, mem, pids = (dirs.get(k, Path("/nonexistent")) for k in ("cpuacct", "cpu", "memory", "pids"))
    ticks = _keyed(_text(cpuacct / "cpuacct.stat"))
    throttle = _keyed(_text(cpu / "cpu.stat"))
    percpu = [int(v) for v in _text(cpuacct / "cpuacct.usage_percpu").split()]
    usage = {"total_usage": _number(cpuacct / "cpuacct.usage"), "percpu_usage": percpu or None,
             "usage_in_kernelmode": ticks.get("system", 0) * 1_000_000_000 // clock_ticks,
             "usage_in_usermode": ticks.get("user", 0) * 1_000_000_000 // clock_ticks}
    if not percpu:
        del usage["percpu_usage"]
    limit = _number(mem / "memory.limit_in_bytes")
    memory = {"usage": _number(mem / "memory.usage_in_bytes"), "max_usage": _number(mem / "memory.max_usage_in_bytes"),
              "stats": v1_memory_stats(_text(mem / "memory.stat")), "limit": min(limit or _host_memory(), _host_memory())}
    failcnt = _number(mem / "memory.failcnt")
    if failcnt:
        memory["failcnt"] = failcnt
    blkio: dict[str, Any] = {key: [] for key in BLKIO_KEYS}
    for key in ("io_service_bytes_recursive", "io_serviced_recursive"):
        blkio_dir = dirs.get("blkio", Path("/nonexistent"))
        blkio[key] = parse_blkio_v1(_text(blkio_dir / f"blkio.throttle.{key}")) or \
            parse_blkio_v1(_text(blkio_dir / f"blkio.bfq.{key}"))
    return {"cpu_usage": usage, "memory_stats": memory, "blkio_stats": blkio,
            "throttling_data": {"periods": throttle.get("nr_periods", 0),
                                "throttled_periods": throttle.get("nr_throttled", 0),
                                "throttled_time": throttle.get("throttled_time", 0)},
            "pids": (_number(pids / "pids.current"), _number(pids / "pids.max"))}


def _v2_sample(directory: Path) -> dict[str, Any]:
    cpu = _keyed(_text(directory / "cpu.stat"))
    usage = {"total_usage": cpu.get("usage_usec", 0) * 1000, "usage_in_kernelmode": cpu.get("system_usec", 0) * 1000,
             "usage_in_usermode": cpu.get("user_usec", 0) * 1000}
    limit = _number(directory / "memory.max")
    memory = {"usage": _number(directory / "memory.current"), "stats": dict(sorted(_keyed(_text(directory / "memory.stat")).items())),
              "limit": min(limit or _host_memory(), _host_memory())}
    blkio: dict[str, Any] = {key: [] for key in BLKIO_KEYS}
    blkio.update(parse_io_stat_v2(_text(directory / "io.stat")))
    return {"cpu_usage": usage, "memory_stats": memory, "blkio_stats": blkio,
            "throttling_data": {"periods": cpu.get("nr_periods", 0), "throttled_periods": cpu.get("nr_throttled", 0),
                                "throttled_time": cpu.get("throttled_usec", 0) * 1000},
            "pids": (_number(directory / "pids.current"), _number(directory / "pids.max"))}


def sample(c: Container) -> dict[str, Any]:
    """One reading of ``c``'s counters (blocking: file reads): the ``cpu_stats`` object, memory,
    blkio, pids and network parts of a ``StatsJSON``, with ``read`` set to now."""
    clock_ticks = os.sysconf("SC_CLK_TCK")
    dirs = cgroups.directories(c.cgroup_path)
    raw = _v2_sample(dirs[""]) if cgroups.is_v2_only() else _v1_sample(dirs, clock_ticks)
    cpu_stats = {"cpu_usage": raw["cpu_usage"],
                 "system_cpu_usage": system_cpu_usage(_text(Path("/proc/stat")), clock_ticks),
                 "online_cpus": os.sysconf("SC_NPROCESSORS_ONLN"), "throttling_data": raw["throttling_data"]}
    current, limit = raw["pids"]
    pids_stats = {"current": current, **({"limit": limit} if limit else {})}
    out: dict[str, Any] = {"read": rfc3339_nano(), "pids_stats": pids_stats, "blkio_stats": raw["blkio_stats"],
                           "cpu_stats": cpu_stats, "memory_stats": raw["memory_stats"]}
    mode = c.host_config.get("NetworkMode") or "default"
    if c.state.pid and mode not in ("host", "none") and not mode.startswith("container:"):
        networks = parse_net_dev(_text(Path(f"/proc/{c.state.pid}/net/dev")))
        if networks:
            out["networks"] = networks
    return out


def stats_json(c: Container, current: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """The ``StatsJSON`` document from two samples (``previous`` None: zero ``precpu_stats``)."""
    out: dict[str, Any] = {
        "read": current["read"], "preread": previous["read"] if previous else ZERO_TIME,
        "pids_stats": current["pids_stats"], "blkio_stats": current["blkio_stats"], "num_procs": 0,
        "storage_stats": {}, "cpu_stats": current["cpu_stats"],
        "precpu_stats": previous["cpu_stats"] if previous else zero_cpu(),
        "memory_stats": current["memory_stats"], "name": "/" + c.name, "id": c.id,
    }
    if "networks" in current:
        out["networks"] = current["networks"]
    return out


def _line(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"


async def stats_stream(containers: Any, c: Container, stream: bool, one_shot: bool) -> AsyncIterator[bytes]:
    """JSON lines for ``GET /containers/{id}/stats``: one document without ``stream``, else one a
    second for as long as the client reads (ends when the container is removed).

    Raises InvalidParameter for ``stream`` with ``one_shot`` (docker's message).
    """
    if stream and one_shot:
        raise InvalidParameter("cannot have stream=true and one-shot=true")
    return _documents(containers, c, stream, one_shot)


def _running(c: Container) -> bool:
    return c.state.running and c.state.status != "restarting" and bool(c.state.pid)


async def _documents(containers: Any, c: Container, stream: bool, one_shot: bool) -> AsyncIterator[bytes]:
    if not stream:
        if not _running(c):
            yield _line(empty_stats(c))
            return
        previous = None if one_shot else await asyncio.to_thread(sample, c)
        if previous is not None:
            await asyncio.sleep(INTERVAL)
        yield _line(stats_json(c, await asyncio.to_thread(sample, c), previous))
        return
    previous = None
    while containers.store.find(c.id) is not None:
        if _running(c):
            current = await asyncio.to_thread(sample, c)
            yield _line(stats_json(c, current, previous))
            previous = current
        else:
            previous = None
        await asyncio.sleep(INTERVAL)
