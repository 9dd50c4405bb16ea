"""Container I/O commands: exec, attach, top, diff, commit, export, update.

Sources: the docker CLI reference page of each command; Engine API v1.41 ("ContainerTop",
"ContainerChanges", "ImageCommit", "ContainerExport", "ContainerUpdate", "ContainerExec", "ExecStart",
"ExecInspect", "ContainerAttach"). ``stats`` and ``cp`` have modules of their own.
"""

from __future__ import annotations

import os
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
        from berth.cli.commands.images import target_reference
        ref = target_reference(rest[1])
        if ref is None:
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
