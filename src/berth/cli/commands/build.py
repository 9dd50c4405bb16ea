"""``build`` with the classic builder API (POST /build) and ``builder prune``.

Sources: docker CLI reference "docker build" (legacy builder) and "docker builder prune"; Engine API
v1.41 "ImageBuild". The context is prepared by :mod:`berth.cli.buildcontext` (a tar of the directory
as the docker CLI writes it, :mod:`berth.cli.tarstream`); ``.dockerignore`` (or
``<Dockerfile>.dockerignore``) picks the entries; the Dockerfile and ``.dockerignore`` are always sent.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from berth.cli import output
from berth.cli.buildcontext import BuildContext, ContextError, prepare_context
from berth.cli.flags import FlagSet


def _kv_with_env(values: list[str]) -> dict[str, str | None]:
    """``--build-arg``: ``K=V``, or ``K`` taking its value from the environment (null when unset)."""
    out: dict[str, str | None] = {}
    for value in values:
        key, sep, val = value.partition("=")
        out[key] = val if sep else os.environ.get(key)
    return out


def build_params(args: Any, ctx: BuildContext) -> dict[str, Any]:
    """The POST /build query for the parsed flags, as the docker CLI writes it (JSON values with
    sorted keys, as Go encodes maps). Raises ``berth.cli.runvalues.OptionError`` for a bad size or ulimit."""
    import json

    from berth.cli import runvalues
    from berth.cli.commands.volumes import parse_map

    def encoded(value: Any, sort_keys: bool = True) -> str | None:
        return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys) if value else None

    return {
        "t": args.tag or None, "remote": ctx.remote or None, "dockerfile": ctx.dockerfile or None,
        "q": args.quiet or None, "nocache": args.no_cache or None, "rm": None if args.rm else False,
        "forcerm": args.force_rm or None, "pull": args.pull or None, "target": args.target or None,
        "networkmode": args.network if args.network not in ("", "default") else None,
        "platform": args.platform or None, "cgroupparent": args.cgroup_parent or None,
        "cpusetcpus": args.cpuset_cpus or None, "cpusetmems": args.cpuset_mems or None,
        "cpushares": args.cpu_shares or None, "cpuquota": args.cpu_quota or None,
        "cpuperiod": args.cpu_period or None, "isolation": args.isolation or None,
        "memory": runvalues.memory_bytes("-m, --memory", args.memory) or None,
        "memswap": runvalues.memory_bytes("--memory-swap", args.memory_swap, swap=True) or None,
        "shmsize": runvalues.memory_bytes("--shm-size", args.shm_size) or None,
        "ulimits": encoded([runvalues.ulimit(u) for u in args.ulimit], sort_keys=False),
        "buildargs": encoded(_kv_with_env(args.build_arg)), "labels": encoded(parse_map(args.label)),
        "cachefrom": encoded(args.cache_from), "extrahosts": ",".join(args.add_host) or None,
        "version": "1",
    }


def show_output(response: Any, quiet: bool, out: Any, err: Any) -> tuple[int, str, str]:
    """Print a build's JSON message stream (``stream`` text as is; ``status`` lines; ``aux.ID`` kept).

    Returns (exit status, image ID, buffered text): the status is the error's ``code`` or 1 when the
    stream carries an error (its message goes to ``err``); in quiet mode the text is buffered.
    """
    image_id, buffered = "", list[str]()
    for message in response.iter_json():
        if message.get("error") or message.get("errorDetail"):
            detail = message.get("errorDetail") or {}
            if quiet:
                err.write("".join(buffered))
            err.write(f"{detail.get('message') or message.get('error')}\n")
            response.close()
            return int(detail.get("code") or 1), image_id, ""
        aux = message.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
        text = message.get("stream")
        if text is None and message.get("status"):
            prefix = f"{message['id']}: " if message.get("id") else ""
            text = f"{prefix}{message['status']} {message.get('progress', '')}".rstrip() + "\n"
        if text:
            if quiet:
                buffered.append(text)
            else:
                out.write(text)
                out.flush()
    response.close()
    return 0, image_id, "".join(buffered)


def _build_flags(prog: str) -> FlagSet:
    fs = FlagSet(prog, "[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile", 1, 1)
    for names, kind, default, text in (
            ("--add-host", "list", None, "Add a custom host-to-IP mapping (host:ip)"),
            ("--build-arg", "list", None, "Set build-time variables"),
            ("--cache-from", "list", None, "Images to consider as cache sources"),
            ("--cgroup-parent", "string", None, 'Set the parent cgroup for the "RUN" instructions'),
            ("--compress", "bool", None, "Compress the build context using gzip"),
            ("--cpu-period", "int", None, "Limit the CPU CFS (Completely Fair Scheduler) period"),
            ("--cpu-quota", "int", None, "Limit the CPU CFS (Completely Fair Scheduler) quota"),
            ("-c, --cpu-shares", "int", None, "CPU shares (relative weight)"),
            ("--cpuset-cpus", "string", None, "CPUs in which to allow execution (0-3, 0,1)"),
            ("--cpuset-mems", "string", None, "MEMs in which to allow execution (0-3, 0,1)"),
            ("--disable-content-trust", "bool", True, "Skip image verification (default true)"),
            ("-f, --file", "string", None, "Name of the Dockerfile (Default is \"PATH/Dockerfile\")"),
            ("--force-rm", "bool", None, "Always remove intermediate containers"),
            ("--iidfile", "string", None, "Write the image ID to the file"),
            ("--isolation", "string", None, "Container isolation technology"),
            ("--label", "list", None, "Set metadata for an image"),
            ("-m, --memory", "string", None, "Memory limit"),
            ("--memory-swap", "string", None, "Swap limit equal to memory plus swap"),
            ("--network", "string", "default", "Set the networking mode for the RUN instructions"),
            ("--no-cache", "bool", None, "Do not use cache when building the image"),
            ("--platform", "string", None, "Set platform if server is multi-platform capable"),
            ("--progress", "string", "auto", "Set type of progress output (accepted, ignored)"),
            ("--pull", "bool", None, "Always attempt to pull a newer version of the image"),
            ("-q, --quiet", "bool", None, "Suppress the build output and print image ID on success"),
            ("--rm", "bool", True, "Remove intermediate containers after a successful build (default true)"),
            ("--security-opt", "list", None, "Security options"),
            ("--shm-size", "string", None, "Size of /dev/shm"),
            ("-t, --tag", "list", None, "Name and optionally a tag in the \"name:tag\" format"),
            ("--target", "string", None, "Set the target build stage to build."),
            ("--ulimit", "list", None, "Ulimit options")):
        fs.add(names, kind, default, help=text)
    return fs


def build(ctx: Any, argv: list[str], prog: str) -> int:
    """``build [OPTIONS] PATH | URL | -``: POST /build with the context tar; exits with the build's
    error code (1 when it has none)."""
    fs = _build_flags(prog)
    args, (spec,) = fs.parse_or_exit(argv)
    _check_tags(fs, args.tag)
    if args.iidfile and os.path.exists(args.iidfile):
        os.unlink(args.iidfile)
    try:
        context = prepare_context(spec, args.file, sys.stdin.buffer)
    except ContextError as exc:
        sys.stderr.write(f"unable to prepare context: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"error checking context: {exc}\n")
        return 1
    from berth.cli.runvalues import OptionError
    try:
        params = build_params(args, context)
    except OptionError as exc:
        fs.fail(exc.render())
    response, progress = _send(ctx.client, params, context, args.quiet)
    status, image_id, buffered = show_output(response, args.quiet, sys.stdout,
                                             _Prefixed(sys.stderr, progress if args.quiet else ""))
    if status:
        return status
    if args.quiet:
        sys.stdout.write(buffered)
        image_id = image_id or buffered.strip()  # a quiet build's only output is the image ID
    if args.iidfile:
        if not image_id:
            sys.stderr.write(f"Server did not provide an image ID. Cannot write {args.iidfile}\n")
            return 1
        output.write_file(args.iidfile, image_id.encode())
    return 0


def _check_tags(fs: FlagSet, tags: list[str]) -> None:
    """Refuse a ``-t`` value that is not an image reference, as a flag error (docker's ``ValidateTag``)."""
    from berth.errors import InvalidParameter
    from berth.images import reference
    for tag in tags:
        try:
            reference.parse_normalized_named(tag)
        except InvalidParameter as exc:
            fs.fail(f'invalid argument "{tag}" for "-t, --tag" flag: {exc}')


def _send(client: Any, params: dict[str, Any], context: BuildContext, quiet: bool) -> tuple[Any, str]:
    """POST /build; prints docker's "Sending build context" line once the context is sent (before the
    daemon's error too; on stderr for a quiet build that fails). Returns (response, that line)."""
    from berth.client.api import APIError

    def progress_line() -> str:
        if context.body is None:
            return ""
        # docker's progress writer ends the line with "\r" before the newline, also when not on a terminal
        return f"Sending build context to Docker daemon  {output.human_size(context.reported_size(), 4)}\r\r\n"
    headers = {"Content-Type": "application/x-tar", "X-Registry-Config": "e30="}
    try:
        response = client.request("POST", "/build", params, body=context.body, headers=headers, stream=True)
    except APIError:
        (sys.stderr if quiet else sys.stdout).write(progress_line())
        sys.stdout.flush()
        raise
    line = progress_line()
    if not quiet:
        sys.stdout.write(line)
    return response, line


class _Prefixed:
    """stderr that writes ``prefix`` before its first text (quiet builds show their progress only on error)."""

    def __init__(self, stream: Any, prefix: str) -> None:
        self.stream, self.prefix = stream, prefix

    def write(self, text: str) -> None:
        if self.prefix:
            self.stream.write(self.prefix)
            self.prefix = ""
        self.stream.write(text)


def builder_prune(ctx: Any, argv: list[str], prog: str) -> int:
    """``builder prune``: POST /build/prune after docker's one-line prompt."""
    fs = FlagSet(prog, "", "Remove build cache", 0, 0)
    fs.add("-a, --all", help="Remove all unused build cache, not just dangling ones")
    fs.add("--filter", "list", help='Provide filter values (e.g. "until=24h")', metavar="filter")
    fs.add("-f, --force", help="Do not prompt for confirmation")
    fs.add("--keep-storage", "string", help="Amount of disk space to keep for cache", metavar="bytes")
    args, _ = fs.parse_or_exit(argv)
    from berth.cli.commands.volumes import parse_filters
    filters = parse_filters(fs, args.filter)
    if not args.force:
        which = "all" if args.all else "all dangling"
        sys.stdout.write(f"WARNING! This will remove {which} build cache. Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    report = ctx.client.post("/build/prune", {"all": args.all or None, "filters": filters,
                                              "keep-storage": args.keep_storage or None}) or {}
    sys.stdout.write(deleted_build_cache(report))
    print(f"Total reclaimed space: {output.human_size(report.get('SpaceReclaimed', 0), 4)}")
    return 0


def deleted_build_cache(report: dict[str, Any]) -> str:
    """The ``Deleted build cache objects:`` section of a ``POST /build/prune`` answer (record IDs,
    one a line, then a blank line); ``""`` when none was deleted."""
    deleted = report.get("CachesDeleted") or []
    return "Deleted build cache objects:\n" + "".join(d + "\n" for d in deleted) + "\n" if deleted else ""
