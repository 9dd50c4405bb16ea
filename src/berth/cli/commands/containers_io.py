"""Container I/O commands: exec, attach, top, stats, diff, commit, cp, export, update.

Sources: the docker CLI reference page of each command; Engine API v1.41 ("ContainerTop",
"ContainerStats", "ContainerChanges", "ImageCommit", "ContainerArchive*", "ContainerExport",
"ContainerUpdate", "ContainerExec", "ExecStart", "ExecInspect", "ContainerAttach"). ``cp`` follows the
path rules of the "docker cp" page; its pure parts (``split_cp_arg``, ``plan_copy``, ``rebase``) are
unit-tested without a daemon.
"""

from __future__ import annotations

import os
import posixpath
import stat
import sys
from typing import Any

from berth.cli import output
from berth.cli.flags import FlagSet
from berth.client.api import APIError, path_quote

CHANGE_KINDS = {0: "C", 1: "A", 2: "D"}


def _stdout_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdout.fileno())
    except (OSError, ValueError):
        return False


# ----- top, diff, commit, export ---------------------------------------------------------------------

def top(ctx: Any, argv: list[str], prog: str) -> int:
    """``top CONTAINER [ps OPTIONS]``: GET /containers/{id}/top; docker's table (tabwriter minwidth 20)."""
    fs = FlagSet(prog, "CONTAINER [ps OPTIONS]", "Display the running processes of a container", 1,
                 interspersed=False)
    _, (container, *ps_args) = fs.parse_or_exit(argv)
    params = {"ps_args": " ".join(ps_args)} if ps_args else None
    listing = ctx.client.get(f"/containers/{path_quote(container)}/top", params)
    lines = ["\t".join(listing.get("Titles") or [])]
    lines += ["\t".join(process) for process in listing.get("Processes") or []]
    sys.stdout.write(output.tabwrite(lines, minwidth=20, padding=3))
    return 0


def diff(ctx: Any, argv: list[str], prog: str) -> int:
    """``diff CONTAINER``: GET /containers/{id}/changes as ``C /path`` lines (C changed, A added,
    D deleted), in the daemon's order as the docker CLI prints them."""
    fs = FlagSet(prog, "CONTAINER", "Inspect changes to files or directories on a container's filesystem", 1, 1)
    _, (container,) = fs.parse_or_exit(argv)
    changes = ctx.client.get(f"/containers/{path_quote(container)}/changes") or []
    sys.stdout.write("".join(f"{CHANGE_KINDS.get(c.get('Kind'), '?')} {c.get('Path')}\n" for c in changes))
    return 0


def commit(ctx: Any, argv: list[str], prog: str) -> int:
    """``commit CONTAINER [REPOSITORY[:TAG]]``: POST /commit; prints the new image ID (``sha256:...``)."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a container's changes",
                 1, 2)
    fs.add("-a, --author", "string", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    fs.add("-c, --change", "list", help="Apply Dockerfile instruction to the created image", metavar="list")
    fs.add("-m, --message", "string", help="Commit message")
    fs.add("-p, --pause", default=True, help="Pause container during commit (default true)")
    args, rest = fs.parse_or_exit(argv)
    params: dict[str, Any] = {"author": args.author or None, "changes": args.change, "comment": args.message or None,
                              "container": rest[0], "pause": None if args.pause else False}
    if len(rest) > 1:
        from berth.errors import InvalidParameter
        from berth.images import reference as refs
        try:
            ref = refs.parse_normalized_named(rest[1])
        except InvalidParameter as exc:
            sys.stderr.write(f"{exc}\n")
            return 1
        if ref.digest:
            sys.stderr.write("refusing to create a tag with a digest reference\n")
            return 1
        params["repo"], params["tag"] = ref.name, ref.tag or None
    result = ctx.client.post("/commit", params) or {}
    print(result.get("Id", ""))
    return 0


def export(ctx: Any, argv: list[str], prog: str) -> int:
    """``export CONTAINER``: GET /containers/{id}/export to stdout or ``-o`` (written atomically, mode 0600)."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive", 1, 1)
    fs.add("-o, --output", "string", help="Write to a file, instead of STDOUT")
    args, (container,) = fs.parse_or_exit(argv)
    if not args.output and _stdout_is_terminal():
        sys.stderr.write("cowardly refusing to save to a terminal. Use the -o flag or redirect\n")
        return 1
    response = ctx.client.request("GET", f"/containers/{path_quote(container)}/export", stream=True)
    if not args.output:
        for chunk in response.iter_chunks():
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return 0
    write_file_atomic(args.output, response.iter_chunks())
    return 0


def write_file_atomic(path: str, chunks: Any) -> None:
    """Write ``chunks`` to a temporary file beside ``path`` (mode 0600), fsync, rename over ``path``."""
    import tempfile
    target = os.path.abspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----- update -----------------------------------------------------------------------------------------

_UPDATE_FLAGS = [  # (names, kind, help, API field)
    ("--blkio-weight", "int", "Block IO (relative weight), between 10 and 1000, or 0 to disable", "BlkioWeight"),
    ("--cpu-period", "int", "Limit CPU CFS (Completely Fair Scheduler) period", "CpuPeriod"),
    ("--cpu-quota", "int", "Limit CPU CFS (Completely Fair Scheduler) quota", "CpuQuota"),
    ("--cpu-rt-period", "int", "Limit the CPU real-time period in microseconds", "CpuRealtimePeriod"),
    ("--cpu-rt-runtime", "int", "Limit the CPU real-time runtime in microseconds", "CpuRealtimeRuntime"),
    ("-c, --cpu-shares", "int", "CPU shares (relative weight)", "CpuShares"),
    ("--cpus", "string", "Number of CPUs", "NanoCpus"),
    ("--cpuset-cpus", "string", "CPUs in which to allow execution (0-3, 0,1)", "CpusetCpus"),
    ("--cpuset-mems", "string", "MEMs in which to allow execution (0-3, 0,1)", "CpusetMems"),
    ("--kernel-memory", "string", "Kernel memory limit (deprecated)", "KernelMemory"),
    ("-m, --memory", "string", "Memory limit", "Memory"),
    ("--memory-reservation", "string", "Memory soft limit", "MemoryReservation"),
    ("--memory-swap", "string", 'Swap limit equal to memory plus swap: -1 to enable unlimited swap', "MemorySwap"),
    ("--pids-limit", "int", "Tune container pids limit (set -1 for unlimited)", "PidsLimit"),
    ("--restart", "string", "Restart policy to apply when a container exits", "RestartPolicy"),
]


def update_body(args: Any) -> dict[str, Any]:
    """The POST /containers/{id}/update body for the flags given (absent fields stay unchanged).

    Raises ``berth.cli.runvalues.OptionError`` for a bad value (docker's messages).
    """
    from berth.cli import runvalues
    body: dict[str, Any] = {}
    for names, _, _, field in _UPDATE_FLAGS:
        long = names.split("--")[-1]
        dest = long.replace("-", "_")
        if dest not in args.explicit:
            continue
        value = getattr(args, dest)
        label = names.strip()
        if field in ("Memory", "MemoryReservation", "KernelMemory", "MemorySwap"):
            value = runvalues.memory_bytes(label, value, swap=field == "MemorySwap")
        elif field == "NanoCpus":
            value = runvalues.nano_cpus(value)
        elif field == "RestartPolicy":
            value = runvalues.restart_policy(value) if value else {"Name": "", "MaximumRetryCount": 0}
        body[field] = value
    return body


def update(ctx: Any, argv: list[str], prog: str) -> int:
    """``update [OPTIONS] CONTAINER...``: prints each updated container, then the errors."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER [CONTAINER...]", "Update configuration of one or more containers", 1)
    for names, kind, text, _ in _UPDATE_FLAGS:
        fs.add(names, kind, help=text)
    args, containers = fs.parse_or_exit(argv)
    from berth.cli.runvalues import OptionError
    try:
        body = update_body(args)
    except OptionError as exc:
        if exc.flag:
            fs.fail(exc.render())
        prefix = "" if exc.message.startswith("invalid restart policy format") else "invalid restart policy format: "
        sys.stderr.write(f"{prefix}{exc.message}\n")
        return 1
    if not body:
        sys.stderr.write("you must provide one or more flags when using this command\n")
        return 1
    errors: list[str] = []
    warnings: list[str] = []
    for container in containers:
        try:
            result = ctx.client.post(f"/containers/{path_quote(container)}/update", json_body=body) or {}
        except APIError as exc:
            errors.append(f"Error response from daemon: {exc.message}")
            continue
        warnings += result.get("Warnings") or []
        print(container)
    sys.stderr.write("".join(w + "\n" for w in warnings) + "".join(e + "\n" for e in errors))
    return 1 if errors else 0


# ----- stats --------------------------------------------------------------------------------------------

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
        from berth.cli.commands.volumes import print_rows
        return print_rows(args.format, rows, STATS_TABLE, STATS_TITLES)
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

    from berth.cli.commands.volumes import render_rows
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
            text = render_rows(args.format, rows, STATS_TABLE, STATS_TITLES)
        except TemplateError as exc:
            sys.stderr.write(f"template parsing error: {exc}\n")
            return 1
        # redraw in place as docker does: cursor home, each line cleared to its end, the rest erased
        sys.stdout.write("\033[H" + "".join(line + "\033[K\n" for line in text.splitlines()) + "\033[J")
        sys.stdout.flush()
        time.sleep(0.5)


# ----- cp: path rules (pure) ----------------------------------------------------------------------------

class CopyError(Exception):
    """A ``cp`` refusal; the message is docker's (``no such directory``, ``cannot copy directory``...)."""


class CopyInfo:
    """One side of a copy: ``path``, whether it ``exists`` and ``is_dir``, and the ``rebase_name`` its
    archive root takes when a followed symlink had another name (docker's ``archive.CopyInfo``)."""

    def __init__(self, path: str, exists: bool = False, is_dir: bool = False, rebase_name: str = "") -> None:
        self.path, self.exists, self.is_dir, self.rebase_name = path, exists, is_dir, rebase_name

    def __repr__(self) -> str:
        return f"CopyInfo({self.path!r}, exists={self.exists}, is_dir={self.is_dir}, rebase={self.rebase_name!r})"


def split_cp_arg(arg: str) -> tuple[str, str]:
    """``CONTAINER:PATH`` -> (container, path); a local path (absolute, or starting with ``.``, or
    without a colon) -> ("", path)."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return "", arg
    return container, path


def asserts_directory(path: str) -> bool:
    """A path ending in ``/`` or naming ``.`` (``dir/.``, ``.``, empty) must be a directory."""
    return path.endswith("/") or split_dir_entry(path)[1] == "."


def split_dir_entry(path: str) -> tuple[str, str]:
    """(parent, entry) of a path after Go's ``filepath.Clean``, keeping a trailing ``/.``:
    ``/a/b/`` -> (``/a``, ``b``); ``/a/b/.`` -> (``/a/b``, ``.``); ``/`` -> (``/``, ``/``)."""
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if path == "." or path.endswith("/.") and cleaned != ".":
        return cleaned, "."
    if cleaned == "/":
        return "/", "/"
    parent = posixpath.dirname(cleaned) or "."
    return parent, posixpath.basename(cleaned)


def rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """After following a symlink: (resolved path keeping ``path``'s trailing ``/`` or ``/.``, the
    name the archive root must take, or "" when the base names already agree)."""
    if path.endswith("/.") and not resolved.endswith("/."):
        resolved += "/."
    elif path.endswith("/") and not resolved.endswith("/"):
        resolved += "/"
    src_base, res_base = split_dir_entry(path)[1], split_dir_entry(resolved)[1]
    return resolved, src_base if src_base != res_base else ""


def plan_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, str, str]:
    """Where to extract an archive of ``src`` so that it lands at ``dst`` ("docker cp" rules).

    Returns (directory to extract into, archive root name, new root name); the names are equal when
    no entry needs renaming. Raises CopyError: ``cannot copy directory`` (directory onto a file),
    ``no such directory`` (file to a missing path asserting a directory).
    """
    dst_dir, dst_base = split_dir_entry(dst.path)
    src_base = src.rebase_name or split_dir_entry(src.path)[1]
    if dst.exists and dst.is_dir:
        return dst.path, src_base, src_base
    if dst.exists and src.is_dir:
        raise CopyError("cannot copy directory")
    if not dst.exists and not src.is_dir and asserts_directory(dst.path):
        raise CopyError("no such directory")
    return dst_dir, src_base, dst_base


def rebase(name: str, old: str, new: str) -> str:
    """An archive entry's name with its root ``old`` renamed to ``new`` (other entries unchanged)."""
    if old == new:
        return name
    if old == "/":
        return new + "/" + name.lstrip("/") if name.strip("/") else new
    if name == old or name == old + "/":
        return new + name[len(old):]
    if name.startswith(old + "/"):
        return new + name[len(old):]
    return name


# ----- cp: the two directions ------------------------------------------------------------------------------

# Go's os.FileMode type bits, as the path-stat header carries them
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_IRREGULAR = 1 << 19


def container_stat(client: Any, container: str, path: str) -> dict[str, Any]:
    """HEAD /containers/{id}/archive: the path's stat (see :func:`path_stat`). Raises APIError."""
    response = client.request("HEAD", f"/containers/{path_quote(container)}/archive", {"path": path})
    return path_stat(response.headers)


def path_stat(headers: dict[str, str]) -> dict[str, Any]:
    """The decoded ``X-Docker-Container-Path-Stat`` header (base64 JSON: ``name``, ``size``, ``mode``
    as Go's ``os.FileMode`` bits, ``mtime``, ``linkTarget``); ``{}`` when absent."""
    import base64
    import json
    return json.loads(base64.b64decode(headers.get("x-docker-container-path-stat", "") or "e30="))


def _link_target(st: dict[str, Any], path: str) -> str:
    """Where a symlink reported by :func:`path_stat` at ``path`` points, as an absolute path."""
    target = st.get("linkTarget", "")
    return target if target.startswith("/") else posixpath.join(posixpath.dirname(path), target)


def cp(ctx: Any, argv: list[str], prog: str) -> int:
    """``cp`` between a container and the local filesystem (or a tar on stdin/stdout with ``-``)."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
                 "Copy files/folders between a container and the local filesystem", 2, 2)
    fs.add("-a, --archive", help="Archive mode (copy all uid/gid information)")
    fs.add("-L, --follow-link", help="Always follow symbol link in SRC_PATH")
    fs.add("-q, --quiet", help="Suppress progress output during copy. Progress output is automatically "
                               "suppressed if no terminal is attached")
    args, (source, destination) = fs.parse_or_exit(argv)
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    if src_container and dst_container:
        sys.stderr.write("copying between containers is not supported\n")
        return 1
    if not src_container and not dst_container:
        sys.stderr.write("must specify at least one container source\n")
        return 1
    progress = not args.quiet and os.isatty(sys.stderr.fileno())
    try:
        if src_container:
            copied = _copy_from_container(ctx.client, src_container, src_path, dst_path, args.follow_link)
            shown = "STDOUT" if dst_path == "-" else os.path.abspath(dst_path)
        else:
            copied = _copy_to_container(ctx.client, src_path, dst_container, dst_path, args)
            shown = destination
    except CopyError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    if progress and copied >= 0:
        sys.stderr.write(f"Successfully copied {output.human_size(copied)} to {shown}\n")
    return 0


class _CountingReader:
    """A file-like wrapper counting the bytes read through it."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.count = raw, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


def _copy_from_container(client: Any, container: str, src_path: str, dst_path: str, follow: bool) -> int:
    rename = ""
    if follow:
        try:
            st = container_stat(client, container, src_path)
        except APIError:
            st = {}
        if st.get("mode", 0) & GO_MODE_SYMLINK:
            src_path, rename = rebase_name(src_path, _link_target(st, src_path))
    if dst_path != "-":
        _check_output_path(dst_path)
    response = client.request("GET", f"/containers/{path_quote(container)}/archive", {"path": src_path},
                              stream=True)
    if dst_path == "-":
        for chunk in response.iter_chunks():
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return -1
    st = path_stat(response.headers)
    src = CopyInfo(src_path, True, bool(st.get("mode", 0) & GO_MODE_DIR), rename)
    dst = local_destination(_absolute_keep_trailer(dst_path))
    target_dir, old, new = plan_copy(src, dst)
    original = split_dir_entry(src_path)[1]
    counted = _CountingReader(response.raw)
    extract_archive(counted, target_dir, lambda name: rebase(rebase(name, original, rename or original), old, new))
    response.close()
    return counted.count


def _absolute_keep_trailer(path: str) -> str:
    absolute = os.path.abspath(path)
    if path.endswith("/.") or path == ".":
        return absolute.rstrip("/") + "/."
    if path.endswith("/"):
        return absolute.rstrip("/") + "/"
    return absolute


def _check_output_path(path: str) -> None:
    """docker's ``ValidateOutputPath``: the parent directory must exist; an existing path must not be
    a device."""
    absolute = _absolute_keep_trailer(path)
    parent = os.path.dirname(os.path.normpath(absolute))
    if not os.path.exists(parent):
        raise CopyError(f'invalid output path: directory "{parent}" does not exist')
    try:
        mode = os.stat(absolute).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CopyError(str(exc)) from None
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise CopyError(f'invalid output path: "{absolute}" must be a directory or a regular file: got a device')


def local_destination(path: str) -> CopyInfo:
    """The local destination, a symlink at its end followed (at most 10 times)."""
    current = path
    for _ in range(10):
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return CopyInfo(current)
        except NotADirectoryError:
            raise CopyError("not a directory") from None
        if not stat.S_ISLNK(st.st_mode):
            return CopyInfo(current, True, stat.S_ISDIR(st.st_mode))
        target = os.readlink(current.rstrip("/"))
        current = rebase_name(current, os.path.join(os.path.dirname(current.rstrip("/")), target))[0]
    raise CopyError(f"too many symlinks in {path}")


def _copy_to_container(client: Any, src_path: str, container: str, dst_path: str, args: Any) -> int:
    dst = _container_destination(client, container, dst_path)
    params = {"path": dst.path, "noOverwriteDirNonDir": "true", "copyUIDGID": "true" if args.archive else None}
    if src_path == "-":
        if not (dst.exists and dst.is_dir):
            raise CopyError(f'destination "{container}:{dst_path}" must be a directory')
        counted = _CountingReader(sys.stdin.buffer)
        body = iter(lambda: counted.read(1 << 20), b"")
        client.request("PUT", f"/containers/{path_quote(container)}/archive", params, body=body,
                       headers={"Content-Type": "application/x-tar"})
        return counted.count
    from berth.cli.commands.build import TarStream
    src = local_source(src_path, args.follow_link)
    target_dir, old, new = plan_copy(src, dst)
    tar = TarStream(source_entries(src, lambda name: rebase(name, old, new)), owner=None)
    params["path"] = target_dir
    try:
        client.request("PUT", f"/containers/{path_quote(container)}/archive", params, body=iter(tar),
                       headers={"Content-Type": "application/x-tar"})
    except OSError as exc:
        raise CopyError(str(exc)) from None
    return tar.written


def _container_destination(client: Any, container: str, path: str) -> CopyInfo:
    """The destination inside the container (a symlink followed once); a failed stat means "does
    not exist", and the extraction reports any real conflict."""
    try:
        st = container_stat(client, container, path)
        if st.get("mode", 0) & GO_MODE_SYMLINK:
            path = rebase_name(path, _link_target(st, path))[0]
            st = container_stat(client, container, path)
    except APIError:
        return CopyInfo(path)
    mode = st.get("mode", 0)
    refusal = "got a device" if mode & GO_MODE_DEVICE else "got an irregular file" if mode & GO_MODE_IRREGULAR else ""
    if refusal:
        raise CopyError(f'destination "{container}:{path}" must be a directory or a regular file: {refusal}')
    return CopyInfo(path, True, bool(mode & GO_MODE_DIR))


def local_source(path: str, follow: bool) -> CopyInfo:
    """The local source: with ``follow`` every symlink is resolved (the archive root keeps the name
    given); otherwise only the parent directory's, so that a symlink is copied as a link."""
    absolute = _absolute_keep_trailer(path)
    if follow:
        resolved, rename = rebase_name(absolute, os.path.realpath(absolute))
    else:
        parent, base = split_dir_entry(absolute)
        resolved = os.path.join(os.path.realpath(parent), base) if base not in ("/", ".") else absolute
        resolved, rename = rebase_name(absolute, resolved)[0], ""
    try:
        st = os.lstat(resolved)
    except NotADirectoryError:
        raise CopyError("not a directory") from None
    except OSError as exc:
        raise CopyError(f"lstat {resolved}: {(exc.strerror or str(exc)).lower()}") from None
    return CopyInfo(resolved, True, stat.S_ISDIR(st.st_mode), rename)


def source_entries(src: CopyInfo, rename: Any) -> list[Any]:
    """The tar entries of a local source: its root (named like the source, or its rebase name), then
    everything below it in lexical walk order, symlinks not followed."""
    from berth.cli.commands.build import LocalEntry
    root_name = src.rebase_name or split_dir_entry(src.path)[1]
    entries = [LocalEntry(src.path, rename(root_name))]
    if not src.is_dir:
        return entries

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda entry: entry.name)
        for child in children:
            name = f"{prefix}/{child.name}"
            entries.append(LocalEntry(child.path, rename(name)))
            if child.is_dir(follow_symlinks=False):
                walk(child.path, name)
    walk(src.path, root_name)
    return entries


def extract_archive(stream: Any, dest: str, rename: Any) -> None:
    """Extract a tar stream under ``dest``, renaming entries with ``rename``, never changing owners
    (docker's CLI untars with NoLchown), refusing entries that would leave ``dest`` and type changes
    between directories and other files (``noOverwriteDirNonDir``). Raises CopyError."""
    import tarfile

    class _NoChownTarFile(tarfile.TarFile):
        def chown(self, tarinfo: tarfile.TarInfo, targetpath: Any, numeric_owner: bool) -> None:
            pass

    root = os.path.realpath(dest)
    directories = []
    with _NoChownTarFile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            member.name = _inside(rename(member.name), member.name)
            if member.name == ".":
                continue
            if member.islnk():
                member.linkname = _inside(rename(member.linkname), member.linkname)
            target = os.path.join(root, member.name)
            parent = os.path.realpath(os.path.dirname(target))
            if parent != root and not parent.startswith(root + "/"):
                raise CopyError(f'"{member.name}" is outside of "{dest}"')
            _clear_target(target, member)
            tar.extract(member, root, set_attrs=not member.isdir(), filter="fully_trusted")
            if member.isdir():
                directories.append(member)
        for member in reversed(directories):
            path = os.path.join(root, member.name)
            tar.chmod(member, path)
            tar.utime(member, path)


def _inside(name: str, original: str) -> str:
    """An entry name made relative and clean; one climbing out with ``..`` is refused."""
    cleaned = posixpath.normpath("/" + name).lstrip("/") or "."
    if name.startswith("..") and (name == ".." or name.startswith("../")):
        raise CopyError(f'invalid archive entry "{original}": outside of the destination')
    return cleaned


def _clear_target(target: str, member: Any) -> None:
    """Make room for ``member`` at ``target``: replace a non-directory, keep a directory for a
    directory, refuse to change one kind into the other (docker's noOverwriteDirNonDir)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if member.isdir():
            return
        raise CopyError(f'cannot overwrite directory "{target}" with non-directory "{member.name}"')
    if member.isdir():
        raise CopyError(f'cannot overwrite non-directory "{target}" with directory "{member.name}"')
    os.unlink(target)


# ----- exec and attach ------------------------------------------------------------------------------------

def _stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (OSError, ValueError):
        return False


def _detach_keys(spec: str, tty: bool) -> bytes | None:
    """The keys the client watches for: only on a TTY (docker's escape proxy), default ctrl-p,ctrl-q.
    A bad spec is the daemon's to refuse (docker's CLI sends it unchecked); here it means the default."""
    from berth.cli.streams import DEFAULT_DETACH_KEYS, parse_detach_keys
    from berth.errors import InvalidParameter
    if not tty:
        return None
    try:
        return parse_detach_keys(spec) if spec else DEFAULT_DETACH_KEYS
    except InvalidParameter:
        return DEFAULT_DETACH_KEYS


def _run_session(client: Any, path: str, params: Any, body: Any, *, tty: bool, interactive: bool,
                 detach_keys: bytes | None, resize_path: str) -> str:
    """Hijack ``path``, keep a TTY's size in sync and copy the streams until EOF or detach."""
    from berth.cli import streams
    sock, leftover = client.hijack(path, params, body)
    stop_resize = streams.resize_loop(client, resize_path) if tty and _stdout_is_terminal() else (lambda: None)
    try:
        with streams.RawTerminal(enabled=tty and interactive):
            return streams.stream_hijacked(sock, leftover, tty=tty, stdin=sys.stdin.buffer if interactive else None,
                                           stdout=sys.stdout.buffer, stderr=sys.stderr.buffer,
                                           detach_keys=detach_keys)
    finally:
        stop_resize()


def exec_(ctx: Any, argv: list[str], prog: str) -> int:
    """``exec [OPTIONS] CONTAINER COMMAND [ARG...]``: POST /containers/{id}/exec, start it (hijacked
    unless ``-d``), then exit with the command's status from GET /exec/{id}/json."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container", 2,
                 interspersed=False)
    fs.add("-d, --detach", help="Detached mode: run command in the background")
    fs.add("--detach-keys", "string", help="Override the key sequence for detaching a container")
    fs.add("-e, --env", "list", help="Set environment variables", metavar="list")
    fs.add("--env-file", "list", help="Read in a file of environment variables", metavar="list")
    fs.add("-i, --interactive", help="Keep STDIN open even if not attached")
    fs.add("--privileged", help="Give extended privileges to the command")
    fs.add("-t, --tty", help="Allocate a pseudo-TTY")
    fs.add("-u, --user", "string", help="Username or UID (format: \"<name|uid>[:<group|gid>]\")")
    fs.add("-w, --workdir", "string", help="Working directory inside the container")
    args, (container, *command) = fs.parse_or_exit(argv)
    from berth.cli import runvalues
    try:
        env = runvalues.env_values(args.env_file, args.env, os.environ)
    except runvalues.OptionError as exc:
        if exc.flag:
            fs.fail(exc.render())
        sys.stderr.write(f"{exc.message}\n")
        return 1
    if args.tty and args.interactive and not _stdin_is_terminal():
        sys.stderr.write("the input device is not a TTY\n")
        return 1
    client = ctx.client
    client.get(f"/containers/{path_quote(container)}/json")
    config = {"User": args.user, "Privileged": args.privileged, "Tty": args.tty,
              "AttachStdin": args.interactive and not args.detach, "AttachStderr": not args.detach,
              "AttachStdout": not args.detach, "Detach": args.detach, "DetachKeys": args.detach_keys,
              "Env": env, "WorkingDir": args.workdir, "Cmd": command}
    exec_id = client.post(f"/containers/{path_quote(container)}/exec", json_body=config)["Id"]
    start = {"Detach": args.detach, "Tty": args.tty}
    if args.detach:
        client.post(f"/exec/{exec_id}/start", json_body=start)
        return 0
    _run_session(client, f"/exec/{exec_id}/start", None, start, tty=args.tty, interactive=args.interactive,
                 detach_keys=_detach_keys(args.detach_keys, args.tty), resize_path=f"/exec/{exec_id}/resize")
    return int(client.get(f"/exec/{exec_id}/json").get("ExitCode") or 0)


def attach(ctx: Any, argv: list[str], prog: str) -> int:
    """``attach CONTAINER``: hijacked POST /containers/{id}/attach; exits with the container's status
    (from a wait started before attaching), or 0 after the detach keys."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER", "Attach local standard input, output, and error streams to a "
                 "running container", 1, 1)
    fs.add("--detach-keys", "string", help="Override the key sequence for detaching a container")
    fs.add("--no-stdin", help="Do not attach STDIN")
    fs.add("--sig-proxy", default=True, help="Proxy all received signals to the process (default true)")
    args, (container,) = fs.parse_or_exit(argv)
    from berth.cli import streams
    client = ctx.client
    info = client.get(f"/containers/{path_quote(container)}/json")
    state = info.get("State") or {}
    refusal = ("You cannot attach to a stopped container, start it first" if not state.get("Running") else
               "You cannot attach to a paused container, unpause it first" if state.get("Paused") else
               "You cannot attach to a restarting container, wait until it is running"
               if state.get("Restarting") else "")
    if refusal:
        sys.stderr.write(f"{refusal}\n")
        return 1
    tty = bool((info.get("Config") or {}).get("Tty"))
    interactive = bool((info.get("Config") or {}).get("OpenStdin")) and not args.no_stdin
    keys = _detach_keys(args.detach_keys, tty)
    status = _wait_in_background(client, info["Id"])
    params = {"stream": True, "stdin": interactive or None, "stdout": True, "stderr": True,
              "detachKeys": args.detach_keys or None}
    with streams.SignalProxy(client, info["Id"], enabled=args.sig_proxy and not tty):
        outcome = _run_session(client, f"/containers/{info['Id']}/attach", params, None, tty=tty,
                               interactive=interactive, detach_keys=keys, resize_path=f"/containers/{info['Id']}/resize")
    if outcome == "detached":
        return 0
    return status()


def _wait_in_background(client: Any, container_id: str) -> Any:
    """Start POST /containers/{id}/wait in a thread; returns a function giving the exit status."""
    import threading
    result: dict[str, int] = {}

    def wait() -> None:
        try:
            result["code"] = int(client.post(f"/containers/{container_id}/wait").get("StatusCode", 0))
        except (APIError, OSError):
            result["code"] = 1
    thread = threading.Thread(target=wait, daemon=True)
    thread.start()

    def status() -> int:
        thread.join()
        return result.get("code", 0)
    return status
