"""Container cgroups, v1 and v2: create with OCI ``linux.resources``, stats, OOM, freeze, remove.

A container's cgroup is ``cgroupsPath`` (``/berth/<id>`` by default) under every v1 controller
hierarchy (memory, cpu, cpuacct, pids, freezer, devices, blkio, cpuset, and the named systemd
one) and under the v2 hierarchy when one is mounted (on hybrid hosts it has no controllers and
only groups processes). A host is v2-only when ``/sys/fs/cgroup/cgroup.controllers`` exists.
File names and value formats are the kernel's (Documentation/admin-guide/cgroup-v1/*.rst,
cgroup-v2.rst); OCI ``resources`` follow runtime-spec config-linux.md "Control groups" and the
v1 -> v2 conversions of runc's "cgroup v2" notes (cpu.weight from shares, memory.swap.max).
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio", "cpuset")
V2_CONTROLLERS = frozenset({"cpu", "cpuset", "io", "memory", "pids"})
# Devices every container may use whatever its rules say, as runc grants them: mknod of any
# node (access is what counts), null, random, full, tty, zero, urandom, the ptys, /dev/net/tun.
IMPLICIT_DEVICE_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
                         "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm")


@dataclass(frozen=True)
class CgroupStats:
    """Resource usage of a container cgroup (bytes, nanoseconds, counts); 0 when unavailable."""

    memory_usage: int
    memory_limit: int
    memory_max_usage: int
    memory_stat: dict[str, int]
    cpu_usage_ns: int
    pids_current: int
    pids_limit: int


def is_v2_only() -> bool:
    """True on a unified (cgroup v2 only) host."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@cache
def mount_points() -> dict[str, str]:
    """Hierarchy mount points from ``/proc/self/mountinfo``: controller (or ``name=x``, or
    ``""`` for cgroup2) -> mount point. Co-mounted controllers map to the same directory."""
    points: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, mount_point, super_options = fields[sep + 1], fields[4], fields[sep + 3]
            if fstype == "cgroup2":
                points.setdefault("", mount_point)
            elif fstype == "cgroup":
                for option in super_options.split(","):
                    if option in V1_CONTROLLERS or option.startswith("name="):
                        points.setdefault(option, mount_point)
    return points


def directories(cgroup_path: str) -> dict[str, Path]:
    """Directory of ``cgroup_path`` (absolute, from each hierarchy's root) per controller key."""
    relative = cgroup_path.strip("/")
    points = mount_points()
    keys = [""] if is_v2_only() else [*V1_CONTROLLERS, "name=systemd", ""]
    return {k: Path(points[k], relative) for k in keys if k in points}


def _write(path: Path, value: str | int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _int(path: Path) -> int:
    text = _read(path)
    return int(text) if text.lstrip("-").isdigit() else 0


def _keyed(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def _init_cpuset(directory: Path) -> None:
    """A new v1 cpuset cgroup starts empty and refuses tasks: copy cpus/mems from the parent."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not _read(directory / name):
            if directory.parent != directory:
                _init_cpuset(directory.parent)
            _write(directory / name, _read(directory.parent / name))


def create(cgroup_path: str, resources: dict[str, Any] | None = None) -> dict[str, Path]:
    """Create the cgroup in every hierarchy and apply OCI ``resources``; returns its directories.

    Raises ``OSError`` when a directory or a limit cannot be written (the caller removes the
    cgroup again on failure).
    """
    dirs = directories(cgroup_path)
    for key, directory in dirs.items():
        directory.mkdir(parents=True, exist_ok=True)
        if key == "cpuset":
            _init_cpuset(directory)
    if is_v2_only():
        _enable_controllers(Path(mount_points()[""]), dirs[""])
        _apply_v2(dirs[""], resources or {})
    else:
        _apply_v1(dirs, resources or {})
    return dirs


def _enable_controllers(root: Path, leaf: Path) -> None:
    """v2 only gives a cgroup the controllers its parent enables in ``cgroup.subtree_control``:
    enable berth's (where available) on every ancestor of ``leaf`` below and including ``root``."""
    ancestors = [leaf.parent, *leaf.parent.parents]
    for directory in reversed([a for a in ancestors if a == root or root in a.parents]):
        available = set(_read(directory / "cgroup.controllers").split())
        for controller in sorted(V2_CONTROLLERS & available):
            try:
                _write(directory / "cgroup.subtree_control", f"+{controller}")
            except OSError:
                continue  # e.g. processes in an inner cgroup; limits will say what is missing


def _apply_v1(dirs: dict[str, Path], resources: dict[str, Any]) -> None:
    memory = resources.get("memory") or {}
    if "memory" in dirs:
        mem = dirs["memory"]
        _apply_memory_limits_v1(mem, memory.get("limit") or 0, memory.get("swap") or 0)
        if memory.get("reservation"):
            _write(mem / "memory.soft_limit_in_bytes", memory["reservation"])
        if memory.get("swappiness") is not None and 0 <= memory["swappiness"] <= 100:
            _write(mem / "memory.swappiness", memory["swappiness"])
        if memory.get("disableOOMKiller"):
            _write(mem / "memory.oom_control", 1)
    cpu = resources.get("cpu") or {}
    if "cpu" in dirs:
        for key, name in (("shares", "cpu.shares"), ("period", "cpu.cfs_period_us"),
                          ("quota", "cpu.cfs_quota_us")):
            if cpu.get(key):
                _write(dirs["cpu"] / name, cpu[key])
    if "cpuset" in dirs:
        for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            if cpu.get(key):
                _write(dirs["cpuset"] / name, cpu[key])
    pids = (resources.get("pids") or {}).get("limit")
    if pids and "pids" in dirs:
        _write(dirs["pids"] / "pids.max", "max" if pids < 0 else pids)
    weight = (resources.get("blockIO") or {}).get("weight")
    if weight and "blkio" in dirs and (dirs["blkio"] / "blkio.weight").exists():
        _write(dirs["blkio"] / "blkio.weight", weight)
    if "devices" in dirs and resources.get("devices") is not None:
        _apply_devices_v1(dirs["devices"], resources["devices"])


def _apply_memory_limits_v1(mem: Path, limit: int, swap: int) -> None:
    """The kernel keeps memory+swap >= memory at every step, so when a live update raises the
    memory limit above the current memsw limit, memsw goes first (runc does the same)."""
    memsw = mem / "memory.memsw.limit_in_bytes"
    with_swap = bool(swap) and memsw.exists()
    current = _int(memsw) if with_swap else 0
    if with_swap and limit and (swap < 0 or limit > current > 0):
        _write(memsw, swap)
        with_swap = False
    if limit:
        _write(mem / "memory.limit_in_bytes", limit)
    if with_swap:
        _write(memsw, swap)


def update(cgroup_path: str, resources: dict[str, Any]) -> None:
    """Apply OCI ``resources`` to the existing cgroup of a running container (``docker update``).

    Zero or absent values leave a limit as it is; device rules are not touched. Raises
    ``OSError`` when the kernel refuses a value (e.g. ``EBUSY`` for a memory limit below usage).
    """
    resources = {key: value for key, value in resources.items() if key != "devices"}
    dirs = directories(cgroup_path)
    if is_v2_only():
        _apply_v2(dirs[""], resources)
    else:
        _apply_v1(dirs, resources)


def device_rule(rule: dict[str, Any]) -> str:
    """An OCI ``resources.devices[]`` entry as a v1 ``devices.allow``/``deny`` line (``c 1:3 rwm``)."""
    def number(n: int | None) -> str:
        return "*" if n is None or n < 0 else str(n)
    kind = rule.get("type") or "a"
    access = rule.get("access") or "rwm"
    if kind == "a":
        return "a"
    return f"{kind} {number(rule.get('major'))}:{number(rule.get('minor'))} {access}"


def _apply_devices_v1(directory: Path, rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        _write(directory / ("devices.allow" if rule.get("allow") else "devices.deny"), device_rule(rule))
    for line in IMPLICIT_DEVICE_RULES:
        _write(directory / "devices.allow", line)


def _apply_v2(directory: Path, resources: dict[str, Any]) -> None:
    memory = resources.get("memory") or {}
    if memory.get("limit"):
        _write(directory / "memory.max", memory["limit"])
        swap = memory.get("swap")
        if swap and (directory / "memory.swap.max").exists():
            _write(directory / "memory.swap.max", "max" if swap < 0 else max(swap - memory["limit"], 0))
    if memory.get("reservation"):
        _write(directory / "memory.low", memory["reservation"])
    cpu = resources.get("cpu") or {}
    if cpu.get("shares"):
        # runc's conversion of the v1 range [2, 262144] onto the v2 range [1, 10000].
        _write(directory / "cpu.weight", 1 + ((cpu["shares"] - 2) * 9999) // 262142)
    if cpu.get("quota") or cpu.get("period"):
        quota = cpu.get("quota") or 0
        _write(directory / "cpu.max", f"{quota if quota > 0 else 'max'} {cpu.get('period') or 100000}")
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            _write(directory / name, cpu[key])
    pids = (resources.get("pids") or {}).get("limit")
    if pids:
        _write(directory / "pids.max", "max" if pids < 0 else pids)


def add_process(cgroup_path: str, pid: int) -> None:
    """Move process ``pid`` (all its threads) into the cgroup in every hierarchy."""
    for directory in directories(cgroup_path).values():
        if directory.is_dir():
            _write(directory / "cgroup.procs", pid)


def pids(cgroup_path: str) -> list[int]:
    """PIDs (host namespace) of the processes in the cgroup, sorted."""
    dirs = directories(cgroup_path)
    for key in ("", "pids", "freezer", "memory", "name=systemd"):
        if key in dirs and (dirs[key] / "cgroup.procs").exists():
            return sorted(int(p) for p in _read(dirs[key] / "cgroup.procs").split())
    return []


def stats(cgroup_path: str) -> CgroupStats:
    """Memory, CPU and pids usage of the cgroup (what ``docker stats`` shows)."""
    dirs = directories(cgroup_path)
    if is_v2_only():
        d = dirs[""]
        limit = _read(d / "memory.max")
        return CgroupStats(
            memory_usage=_int(d / "memory.current"), memory_limit=int(limit) if limit.isdigit() else 0,
            memory_max_usage=_int(d / "memory.peak"), memory_stat=_keyed(d / "memory.stat"),
            cpu_usage_ns=_keyed(d / "cpu.stat").get("usage_usec", 0) * 1000,
            pids_current=_int(d / "pids.current"), pids_limit=_int(d / "pids.max"))
    mem, cpuacct, pid = dirs.get("memory"), dirs.get("cpuacct"), dirs.get("pids")
    return CgroupStats(
        memory_usage=_int(mem / "memory.usage_in_bytes") if mem else 0,
        memory_limit=_int(mem / "memory.limit_in_bytes") if mem else 0,
        memory_max_usage=_int(mem / "memory.max_usage_in_bytes") if mem else 0,
        memory_stat=_keyed(mem / "memory.stat") if mem else {},
        cpu_usage_ns=_int(cpuacct / "cpuacct.usage") if cpuacct else 0,
        pids_current=_int(pid / "pids.current") if pid else 0,
        pids_limit=_int(pid / "pids.max") if pid else 0)


def oom_kills(cgroup_path: str) -> int:
    """How many processes of the cgroup the OOM killer killed (v1 ``memory.oom_control``
    ``oom_kill``, v2 ``memory.events`` ``oom_kill``)."""
    dirs = directories(cgroup_path)
    if is_v2_only():
        return _keyed(dirs[""] / "memory.events").get("oom_kill", 0)
    if "memory" not in dirs:
        return 0
    return _keyed(dirs["memory"] / "memory.oom_control").get("oom_kill", 0)


def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def freeze(cgroup_path: str, timeout: float = 10.0) -> None:
    """Freeze every process of the cgroup (``docker pause``); ``TimeoutError`` if it does not settle."""
    _set_frozen(cgroup_path, True, timeout)


def thaw(cgroup_path: str, timeout: float = 10.0) -> None:
    """Resume a frozen cgroup (``docker unpause``)."""
    _set_frozen(cgroup_path, False, timeout)


def _set_frozen(cgroup_path: str, frozen: bool, timeout: float) -> None:
    dirs = directories(cgroup_path)
    if not is_v2_only() and "freezer" in dirs:
        state = dirs["freezer"] / "freezer.state"
        wanted = "FROZEN" if frozen else "THAWED"
        _write(state, wanted)
        settled = _wait_for(lambda: _read(state) == wanted, timeout)
    else:
        directory = dirs[""]
        _write(directory / "cgroup.freeze", int(frozen))
        settled = _wait_for(lambda: _keyed(directory / "cgroup.events").get("frozen") == int(frozen),
                            timeout)
    if not settled:
        raise TimeoutError(f"cgroup {cgroup_path} did not become {'frozen' if frozen else 'thawed'}")


def is_frozen(cgroup_path: str) -> bool:
    """True when the cgroup is frozen."""
    dirs = directories(cgroup_path)
    if not is_v2_only() and "freezer" in dirs:
        return _read(dirs["freezer"] / "freezer.state") == "FROZEN"
    return _keyed(dirs[""] / "cgroup.events").get("frozen") == 1 if "" in dirs else False


def remove(cgroup_path: str, timeout: float = 5.0) -> None:
    """Remove the cgroup from every hierarchy (idempotent).

    A cgroup can only be removed once its processes are gone; this retries on ``EBUSY``
    for ``timeout`` seconds, then raises ``OSError``.
    """
    for directory in directories(cgroup_path).values():
        deadline = time.monotonic() + timeout
        while True:
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
