"""Container commands: stop, restart, kill, rm, wait, container inspect, rename, pause, unpause,
container prune, port, logs; and the helpers the container command modules share (docker's error
texts, acting on several containers at once).

Docs: docker CLI reference page of each command; output, messages and exit statuses follow the docker
20.10 CLI (the Engine API 1.41 baseline). ``run``, ``create`` and ``start`` are in :mod:`.run`, ``ps``
in :mod:`.ps`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from berth.cli import output
from berth.cli.commands.images import confirm, filters_param
from berth.cli.flags import FlagSet
from berth.client.api import APIError, path_quote


class CommandFailed(Exception):
    """A failure the command reports itself (the text docker prints, without a prefix)."""


def print_error(text: str) -> None:
    """Write one line to stderr, now (it must not pass output still buffered on stdout)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def daemon_error(exc: APIError, name: str = "", wrapped: bool = False) -> str:
    """docker's text for an API error; ``wrapped`` calls turn 404 into ``Error: No such container: NAME``."""
    if wrapped and exc.status == 404:
        return f"Error: No such container: {name}"
    return f"Error response from daemon: {exc.message}"


def for_each(names: list[str], action: Callable[[str], Any], wrapped: bool = False) -> list[str | None]:
    """Run ``action`` on every name, a few at a time (as docker's ``parallelOperation``); the error text of
    each failure, None for a success, in the order of ``names``."""
    from berth.client.api import ConnectionFailed
    results: list[str | None] = [None] * len(names)
    slots = threading.BoundedSemaphore(16)

    def one(index: int, name: str) -> None:
        with slots:
            try:
                action(name)
            except APIError as exc:
                results[index] = daemon_error(exc, name, wrapped)
            except (CommandFailed, ConnectionFailed) as exc:
                results[index] = str(exc)

    threads = [threading.Thread(target=one, args=(i, n), daemon=True) for i, n in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def report_each(names: list[str], results: list[str | None]) -> int:
    """Print the names that succeeded, then the errors; exit status 1 when any failed."""
    for name, error in zip(names, results, strict=True):
        if error is None:
            print(name)
    sys.stdout.flush()
    errors = [e for e in results if e is not None]
    for error in errors:
        print_error(error)
    return 1 if errors else 0


# ----- lifecycle -----------------------------------------------------------------------------------------------


def _simple_post(ctx: Any, argv: list[str], prog: str, action: str, short: str,
                 time_help: str = "") -> int:
    fs = FlagSet(prog, "[OPTIONS] CONTAINER [CONTAINER...]" if time_help else "CONTAINER [CONTAINER...]",
                 short, 1)
    if time_help:
        fs.add("-t, --time", "int", 10, help=time_help)
    args, names = fs.parse_or_exit(argv)
    params = {"t": args.time} if time_help and "time" in args.explicit else None
    results = for_each(names, lambda n: ctx.client.request("POST", f"/containers/{path_quote(n)}/{action}",
                                                            params))
    return report_each(names, results)


def stop(ctx: Any, argv: list[str], prog: str) -> int:
    """``stop [-t SECONDS]``: names of the stopped containers, errors after them ("docker stop")."""
    return _simple_post(ctx, argv, prog, "stop", "Stop one or more running containers",
                        "Seconds to wait for stop before killing it (default 10)")


def restart(ctx: Any, argv: list[str], prog: str) -> int:
    """``restart [-t SECONDS]`` ("docker restart")."""
    return _simple_post(ctx, argv, prog, "restart", "Restart one or more containers",
                        "Seconds to wait for stop before killing the container (default 10)")


def pause(ctx: Any, argv: list[str], prog: str) -> int:
    """``pause`` ("docker pause")."""
    return _simple_post(ctx, argv, prog, "pause", "Pause all processes within one or more containers")


def unpause(ctx: Any, argv: list[str], prog: str) -> int:
    """``unpause`` ("docker unpause")."""
    return _simple_post(ctx, argv, prog, "unpause", "Unpause all processes within one or more containers")


def kill(ctx: Any, argv: list[str], prog: str) -> int:
    """``kill [-s SIGNAL]``: the signal is passed to the daemon as given ("docker kill")."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers", 1)
    fs.add("-s, --signal", "string", "KILL", help='Signal to send to the container (default "KILL")')
    args, names = fs.parse_or_exit(argv)
    results = for_each(names, lambda n: ctx.client.request("POST", f"/containers/{path_quote(n)}/kill",
                                                            {"signal": args.signal}))
    return report_each(names, results)


def rm(ctx: Any, argv: list[str], prog: str) -> int:
    """``rm [-f] [-v] [-l]``: with ``-f`` a missing container is reported but not a failure ("docker rm")."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", 1)
    fs.add("-f, --force", help="Force the removal of a running container (uses SIGKILL)")
    fs.add("-l, --link", help="Remove the specified link")
    fs.add("-v, --volumes", help="Remove anonymous volumes associated with the container")
    args, names = fs.parse_or_exit(argv)
    params = {"v": args.volumes or None, "link": args.link or None, "force": args.force or None}

    def remove(name: str) -> None:
        name = name.strip("/")
        if not name:
            raise CommandFailed("Container name cannot be empty")
        ctx.client.request("DELETE", f"/containers/{path_quote(name)}", params)

    results = for_each(names, remove, wrapped=True)
    errors = []
    for name, error in zip(names, results, strict=True):
        if error is None:
            print(name)
        elif args.force and error.startswith("Error: No such container: "):
            sys.stdout.flush()
            print_error(error)  # with -f a missing container is reported but is not a failure
        else:
            errors.append(error)
    sys.stdout.flush()
    for error in errors:
        print_error(error)
    return 1 if errors else 0


def wait(ctx: Any, argv: list[str], prog: str) -> int:
    """``wait``: one exit status per line, errors at the end ("docker wait")."""
    fs = FlagSet(prog, "CONTAINER [CONTAINER...]",
                 "Block until one or more containers stop, then print their exit codes", 1)
    _, names = fs.parse_or_exit(argv)
    errors = []
    for name in names:
        try:
            result = ctx.client.post(f"/containers/{path_quote(name)}/wait") or {}
        except APIError as exc:
            errors.append(daemon_error(exc))
            continue
        print(result.get("StatusCode", 0), flush=True)
    for error in errors:
        print_error(error)
    return 1 if errors else 0


def rename(ctx: Any, argv: list[str], prog: str) -> int:
    """``rename OLD NEW`` ("docker rename")."""
    fs = FlagSet(prog, "CONTAINER NEW_NAME", "Rename a container", 2, 2)
    _, (old, new) = fs.parse_or_exit(argv)
    old, new = old.strip(), new.strip()
    if not old or not new:
        print_error("Error: Neither old nor new names may be empty")
        return 1
    try:
        ctx.client.request("POST", f"/containers/{path_quote(old)}/rename", {"name": new})
    except APIError as exc:
        print_error(daemon_error(exc))
        print_error(f"Error: failed to rename container named {old}")
        return 1
    return 0


def inspect_container(ctx: Any, argv: list[str], prog: str) -> int:
    """``container inspect [-f FORMAT] [-s]`` ("docker container inspect")."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER [CONTAINER...]",
                 "Display detailed information on one or more containers", 1)
    fs.add("-f, --format", "string", help="Format the output using the given Go template")
    fs.add("-s, --size", help="Display total file sizes")
    args, names = fs.parse_or_exit(argv)
    from berth.cli.commands.inspect import inspect_objects
    return inspect_objects(ctx, names, args.format, kinds=("container",), size=args.size)


def prune(ctx: Any, argv: list[str], prog: str) -> int:
    """``container prune [-f] [--filter k=v]``: asks first unless ``-f`` ("docker container prune")."""
    fs = FlagSet(prog, "[OPTIONS]", "Remove all stopped containers", 0, 0)
    fs.add("--filter", "list", help="Provide filter values (e.g. 'until=<timestamp>')", metavar="filter")
    fs.add("-f, --force", help="Do not prompt for confirmation")
    args, _ = fs.parse_or_exit(argv)
    if not args.force and not confirm("WARNING! This will remove all stopped containers."):
        return 0
    report = ctx.client.post("/containers/prune", {"filters": filters_param(args.filter)}) or {}
    sys.stdout.write(deleted_containers(report))
    print(f"Total reclaimed space: {output.human_size(report.get('SpaceReclaimed', 0), 4)}")
    return 0


def deleted_containers(report: dict[str, Any]) -> str:
    """The ``Deleted Containers:`` section of a ``POST /containers/prune`` answer: the IDs, one a
    line, and a blank line; ``""`` when none was deleted (docker's container prune and system prune)."""
    deleted = report.get("ContainersDeleted") or []
    return "Deleted Containers:\n" + "".join(cid + "\n" for cid in deleted) + "\n" if deleted else ""


def port(ctx: Any, argv: list[str], prog: str) -> int:
    """``port CONTAINER [PORT[/PROTO]]``: ``80/tcp -> 0.0.0.0:49153`` lines, sorted by port ("docker port")."""
    fs = FlagSet(prog, "CONTAINER [PRIVATE_PORT[/PROTO]]",
                 "List port mappings or a specific mapping for the container", 1, 2)
    _, rest = fs.parse_or_exit(argv)
    name = rest[0]
    try:
        info = ctx.client.get(f"/containers/{path_quote(name)}/json")
    except APIError as exc:
        print_error(daemon_error(exc, name, wrapped=True))
        return 1
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if len(rest) == 2:
        number, _, proto = rest[1].partition("/")
        key = f"{number}/{proto or 'tcp'}"
        from berth.cli.runspecs import port_range
        try:
            port_range(number)
        except ValueError as exc:
            print_error(str(exc))
            return 1
        if ports.get(key) is None:
            print_error(f"Error: No public port '{key}' published for {name}")
            return 1
        for binding in ports[key]:
            print(f"{binding['HostIp']}:{binding['HostPort']}")
        return 0
    for key in sorted(ports, key=_port_sort_key):
        for binding in ports[key] or []:
            print(f"{key} -> {binding['HostIp']}:{binding['HostPort']}")
    return 0


def _port_sort_key(key: str) -> tuple[int, str]:
    number, _, proto = key.partition("/")
    return (int(number) if number.isdigit() else 0, proto)


# ----- logs ----------------------------------------------------------------------------------------------------


def logs(ctx: Any, argv: list[str], prog: str) -> int:
    """``logs``: the container is inspected first, its output demultiplexed unless it has a TTY
    ("docker logs")."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER", "Fetch the logs of a container", 1, 1)
    fs.add("--details", help="Show extra details provided to logs")
    fs.add("-f, --follow", help="Follow log output")
    fs.add("--since", "string", help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative "
                                     "(e.g. 42m for 42 minutes)")
    fs.add("-n, --tail", "string", "all", help='Number of lines to show from the end of the logs (default "all")')
    fs.add("-t, --timestamps", help="Show timestamps")
    fs.add("--until", "string", help="Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative "
                                     "(e.g. 42m for 42 minutes)")
    args, (name,) = fs.parse_or_exit(argv)
    try:
        info = ctx.client.get(f"/containers/{path_quote(name)}/json")
    except APIError as exc:
        print_error(daemon_error(exc, name, wrapped=True))
        return 1
    from berth.timeutil import timestamp_param

    params: dict[str, Any] = {"stdout": 1, "stderr": 1}
    for key in ("since", "until"):
        if getattr(args, key):
            try:
                params[key] = timestamp_param(getattr(args, key))
            except ValueError as exc:
                print_error(f'invalid value for "{key}": {exc}')
                return 1
    params.update({"timestamps": args.timestamps or None, "follow": args.follow or None,
                   "tail": args.tail or None, "details": args.details or None})
    from berth.cli.streams import StreamError, copy_stream
    response = ctx.client.request("GET", f"/containers/{info['Id']}/logs", params, stream=True)
    sys.stdout.flush()
    try:
        copy_stream(response.iter_chunks(), tty=info["Config"]["Tty"], stdout=sys.stdout.buffer,
                    stderr=sys.stderr.buffer)
    except StreamError as exc:
        print_error(str(exc))
        return 1
    finally:
        response.close()
    return 0
