"""Container commands: run, create, start, stop, restart, kill, rm, ps, logs, wait, container inspect,
rename, pause, unpause, container prune, port.

Docs: docker CLI reference page of each command; output, messages and exit statuses follow the docker
20.10 CLI (the Engine API 1.41 baseline). ``run``'s order of calls is docker's: create (pulling the image
when it is missing), attach, wait (``condition=next-exit``, or ``removed`` with ``--rm``), start.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from berth.cli import output
from berth.cli.commands.images import confirm, filters_param, go_time, since
from berth.cli.flags import FlagSet
from berth.client.api import APIError, path_quote

PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_TITLES = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
             "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
             "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES",
             "Networks": "NETWORKS"}
CREATE_USAGE = "[OPTIONS] IMAGE [COMMAND] [ARG...]"


class CommandFailed(Exception):
    """A failure the command reports itself (the text docker prints, without a prefix)."""


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _daemon_error(exc: APIError, name: str = "", wrapped: bool = False) -> str:
    """docker's text for an API error; ``wrapped`` calls turn 404 into ``Error: No such container: NAME``."""
    if wrapped and exc.status == 404:
        return f"Error: No such container: {name}"
    return f"Error response from daemon: {exc.message}"


def _for_each(names: list[str], action: Callable[[str], Any], wrapped: bool = False) -> list[str | None]:
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
                results[index] = _daemon_error(exc, name, wrapped)
            except (CommandFailed, ConnectionFailed) as exc:
                results[index] = str(exc)

    threads = [threading.Thread(target=one, args=(i, n), daemon=True) for i, n in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _report_each(names: list[str], results: list[str | None]) -> int:
    """Print the names that succeeded, then the errors; exit status 1 when any failed."""
    for name, error in zip(names, results, strict=True):
        if error is None:
            print(name)
    sys.stdout.flush()
    errors = [e for e in results if e is not None]
    for error in errors:
        _err(error)
    return 1 if errors else 0


# ----- create / run ---------------------------------------------------------------------------------------


def _create_flagset(prog: str, run: bool) -> FlagSet:
    from berth.cli.runopts import add_create_flags
    short = "Run a command in a new container" if run else "Create a new container"
    return add_create_flags(FlagSet(prog, CREATE_USAGE, short, 1, interspersed=False), run=run)


def _request_or_exit(fs: FlagSet, args: Any, positional: list[str]) -> Any:
    from berth.cli.runopts import build_create_request
    from berth.cli.runvalues import OptionError

    try:
        request = build_create_request(args, positional)
        if request.pull not in ("always", "missing", "never"):
            raise OptionError(f"invalid pull option: '{request.pull}': must be one of \"always\", "
                              f"\"missing\" or \"never\"")
    except OptionError as exc:
        fs.fail(exc.render("berth"))
    return request


def _image_reference(image: str) -> Any:
    """The named reference of ``image`` (tag ``latest`` added), or None for an image ID."""
    from berth.errors import InvalidParameter
    from berth.images import reference as refs
    if len(image.split(":")[-1]) == 64 and refs.is_image_id_prefix(image):
        return None
    try:
        return refs.with_default_tag(refs.parse_normalized_named(image))
    except InvalidParameter as exc:
        raise CommandFailed(str(exc)) from None


def _pull(ctx: Any, ref: Any, platform: str, quiet: bool) -> None:
    """Pull ``ref`` for ``run``/``create``, showing progress on stderr (docker keeps stdout for the ID)."""
    params = {"fromImage": ref.familiar_name, "tag": ref.digest or ref.tag, "platform": platform or None}
    response = ctx.client.request("POST", "/images/create", params, headers={"X-Registry-Auth": "e30="},
                                  stream=True)
    try:
        for message in response.iter_json():
            if message.get("error") or message.get("errorDetail"):
                detail = message.get("errorDetail") or {}
                raise CommandFailed(detail.get("message") or message.get("error"))
            if not quiet and "status" in message:
                prefix = f"{message['id']}: " if message.get("id") else ""
                _err(f"{prefix}{message['status']}")
    finally:
        response.close()


def _create_container(ctx: Any, request: Any, quiet: bool) -> str:
    """POST /containers/create (pulling a missing image per ``--pull``); returns the new ID.

    Raises APIError or CommandFailed. Honours ``--cidfile`` (refused when the file exists, written
    without a newline once the container exists).
    """
    import os
    if request.cidfile and os.path.exists(request.cidfile):
        raise CommandFailed(f"container ID file found, make sure the other container isn't running or delete "
                            f"{request.cidfile}")
    ref = _image_reference(request.image)
    for warning in request.warnings:
        _err(warning)
    if request.pull == "always" and ref is not None:
        _pull(ctx, ref, request.platform, quiet)
    try:
        created = ctx.client.post("/containers/create", request.params, request.body)
    except APIError as exc:
        if exc.status != 404 or request.pull != "missing" or ref is None:
            raise
        _err(f"Unable to find image '{ref.familiar()}' locally")
        _pull(ctx, ref, request.platform, quiet)
        created = ctx.client.post("/containers/create", request.params, request.body)
    for warning in created.get("Warnings") or []:
        _err(f"WARNING: {warning}")
    if request.cidfile:
        _write_cidfile(request.cidfile, created["Id"])
    return created["Id"]


def _write_cidfile(path: str, cid: str) -> None:
    """Write the ID (no newline) to a new file: a temp file linked into place, so a reader never sees
    half an ID and a file that appeared meanwhile is not overwritten."""
    import os
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(cid)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    except FileExistsError:
        raise CommandFailed(f"container ID file found, make sure the other container isn't running or delete "
                            f"{path}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def create(ctx: Any, argv: list[str], prog: str) -> int:
    """``create``: prints the new container's full ID."""
    fs = _create_flagset(prog, run=False)
    args, positional = fs.parse_or_exit(argv)
    request = _request_or_exit(fs, args, positional)
    try:
        print(_create_container(ctx, request, args.quiet))
    except CommandFailed as exc:
        _err(str(exc))
        return 1
    return 0


def start_error_status(message: str) -> int:
    """docker's exit status for a failed ``run``: 127 command not found, 126 not executable, else 125."""
    text = message.removeprefix("Error response from daemon: ")
    if any(s in text for s in ("executable file not found", "no such file or directory",
                               "system cannot find the file specified")):
        return 127
    if "permission denied" in text or "is a directory" in text:
        return 126
    return 125


def _run_failed(prog: str, text: str, with_help: bool) -> int:
    line = f"berth: {text.rstrip('.')}."
    _err(line + (f"\nSee '{prog} --help'." if with_help else ""))
    return start_error_status(text)


def run(ctx: Any, argv: list[str], prog: str) -> int:
    """``run``: create, attach, start and wait; exits with the container's status (125/126/127 when
    docker would: see :func:`start_error_status`)."""
    fs = _create_flagset(prog, run=True)
    args, positional = fs.parse_or_exit(argv)
    request = _request_or_exit(fs, args, positional)
    if args.detach_keys:
        from berth.cli.streams import parse_detach_keys
        from berth.errors import InvalidParameter
        try:
            parse_detach_keys(args.detach_keys)
        except InvalidParameter:  # checked before creating, so no container is left behind
            fs.fail(f"berth: Invalid detach keys ({args.detach_keys}) provided.")
    body = request.body
    if args.detach:
        if args.attach:
            _err("Conflicting options: -a and -d")
            return 1
        body.update(AttachStdin=False, AttachStdout=False, AttachStderr=False, StdinOnce=False)
    elif body["Tty"] and body["AttachStdin"] and not sys.stdin.isatty():
        _err("the input device is not a TTY")
        return 1
    try:
        cid = _create_container(ctx, request, args.quiet)
    except APIError as exc:
        return _run_failed(prog, _daemon_error(exc), True)
    except CommandFailed as exc:
        return _run_failed(prog, str(exc), True)
    if not body["AttachStdout"] and not body["AttachStderr"]:
        print(cid, flush=True)  # before the start, as docker does (-d, or -a stdin alone)
    if args.detach:
        try:
            ctx.client.request("POST", f"/containers/{cid}/start")
        except APIError as exc:
            return _run_failed(prog, _daemon_error(exc), False)
        return 0
    session = AttachedSession(ctx.client, cid, tty=body["Tty"], stdin=body["AttachStdin"],
                              stdout=body["AttachStdout"], stderr=body["AttachStderr"],
                              auto_remove=body["HostConfig"]["AutoRemove"], detach_keys=args.detach_keys,
                              sig_proxy=args.sig_proxy and not body["Tty"])
    try:
        return session.run()
    except APIError as exc:
        return _run_failed(prog, _daemon_error(exc), False)


class AttachedSession:
    """Attach to a created container, start it, stream its I/O and wait for its exit status.

    Used by ``run`` and ``start -a``. Order as docker's CLI: hijacked attach, ``POST wait`` (its response
    head arrives before start, so the exit cannot be missed), start, then the streams. A start failure
    raises APIError after the attachment is closed (and, with ``--rm``, after the removal).
    """

    def __init__(self, client: Any, cid: str, *, tty: bool, stdin: bool, stdout: bool, stderr: bool,
                 auto_remove: bool, detach_keys: str, sig_proxy: bool) -> None:
        self.client, self.cid, self.tty = client, cid, tty
        self.streams = {"stdin": stdin, "stdout": stdout, "stderr": stderr}
        self.auto_remove, self.detach_keys, self.sig_proxy = auto_remove, detach_keys, sig_proxy

    def _attach(self) -> tuple[Any, bytes] | tuple[None, bytes]:
        if not any(self.streams.values()):
            return None, b""
        params: dict[str, Any] = {"stream": 1, **{k: 1 for k, v in self.streams.items() if v}}
        if self.detach_keys:
            params["detachKeys"] = self.detach_keys
        return self.client.hijack(f"/containers/{self.cid}/attach", params)

    def _detach_bytes(self) -> bytes | None:
        from berth.cli.streams import DEFAULT_DETACH_KEYS, parse_detach_keys
        from berth.errors import InvalidParameter
        if not (self.tty and self.streams["stdin"]):
            return None
        try:
            return parse_detach_keys(self.detach_keys) if self.detach_keys else DEFAULT_DETACH_KEYS
        except InvalidParameter:
            return DEFAULT_DETACH_KEYS  # docker warns and falls back to the default keys

    def run(self) -> int:
        """Returns the exit status (0 after a detach). Raises APIError when the start fails."""
        from berth.cli import streams
        sock, leftover = self._attach()
        condition = "removed" if self.auto_remove else "next-exit"
        waiter = self.client.request("POST", f"/containers/{self.cid}/wait", {"condition": condition},
                                     stream=True)
        raw = streams.RawTerminal(enabled=self.tty and self.streams["stdin"])
        with streams.SignalProxy(self.client, self.cid, self.sig_proxy), raw:
            try:
                self.client.request("POST", f"/containers/{self.cid}/start")
            except APIError:
                if sock is not None:
                    sock.close()
                if self.auto_remove:  # docker waits for the daemon to remove it; bounded here
                    reader = threading.Thread(target=waiter.read, daemon=True)
                    reader.start()
                    reader.join(10)
                waiter.close()
                raise
            stop_resize = (streams.resize_loop(self.client, f"/containers/{self.cid}/resize")
                           if self.tty and sys.stdout.isatty() else lambda: None)
            try:
                result = self._stream(sock, leftover)
            finally:
                stop_resize()
        if result == "detached":
            waiter.close()
            return 0
        return _wait_status(waiter)

    def _stream(self, sock: Any, leftover: bytes) -> str:
        from berth.cli import streams
        if sock is None:
            return "eof"
        sys.stdout.flush()
        stdin = sys.stdin.buffer if self.streams["stdin"] else None
        try:
            return streams.stream_hijacked(sock, leftover, tty=self.tty, stdin=stdin,
                                           stdout=sys.stdout.buffer, stderr=sys.stderr.buffer,
                                           detach_keys=self._detach_bytes())
        except streams.StreamError as exc:
            _err(str(exc))
            return "eof"


def _wait_status(waiter: Any) -> int:
    try:
        result = waiter.json() or {}
    finally:
        waiter.close()
    error = (result.get("Error") or {}).get("Message")
    if error:
        _err(f"Error waiting for container: {error}")
        return 125
    return int(result.get("StatusCode", 125))


# ----- lifecycle ---------------------------------------------------------------------------------------------


def start(ctx: Any, argv: list[str], prog: str) -> int:
    """``start``: start each container and print its name; with ``-a``/``-i`` attach to one container and
    exit with its status (docker CLI reference "docker start")."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers", 1)
    fs.add("-a, --attach", help="Attach STDOUT/STDERR and forward signals")
    fs.add("--detach-keys", "string", help="Override the key sequence for detaching a container")
    fs.add("-i, --interactive", help="Attach container's STDIN")
    args, names = fs.parse_or_exit(argv)
    if args.attach or args.interactive:
        if len(names) > 1:
            _err("you cannot start and attach multiple containers at once")
            return 1
        try:
            info = ctx.client.get(f"/containers/{path_quote(names[0])}/json")
        except APIError as exc:
            _err(_daemon_error(exc, names[0], wrapped=True))
            return 1
        config = info["Config"]
        session = AttachedSession(ctx.client, info["Id"], tty=config["Tty"],
                                  stdin=args.interactive and config["OpenStdin"], stdout=True, stderr=True,
                                  auto_remove=info["HostConfig"].get("AutoRemove", False),
                                  detach_keys=args.detach_keys, sig_proxy=not config["Tty"])
        return session.run()
    failed = []
    for name in names:  # one by one, as docker starts them
        try:
            ctx.client.request("POST", f"/containers/{path_quote(name)}/start")
        except APIError as exc:
            sys.stdout.flush()
            _err(_daemon_error(exc))
            failed.append(name)
            continue
        print(name, flush=True)
    if failed:
        _err(f"Error: failed to start containers: {', '.join(failed)}")
        return 1
    return 0


def _simple_post(ctx: Any, argv: list[str], prog: str, action: str, short: str,
                 time_help: str = "") -> int:
    fs = FlagSet(prog, "[OPTIONS] CONTAINER [CONTAINER...]" if time_help else "CONTAINER [CONTAINER...]",
                 short, 1)
    if time_help:
        fs.add("-t, --time", "int", 10, help=time_help)
    args, names = fs.parse_or_exit(argv)
    params = {"t": args.time} if time_help and "time" in args.explicit else None
    results = _for_each(names, lambda n: ctx.client.request("POST", f"/containers/{path_quote(n)}/{action}",
                                                            params))
    return _report_each(names, results)


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
    results = _for_each(names, lambda n: ctx.client.request("POST", f"/containers/{path_quote(n)}/kill",
                                                            {"signal": args.signal}))
    return _report_each(names, results)


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

    results = _for_each(names, remove, wrapped=True)
    errors = []
    for name, error in zip(names, results, strict=True):
        if error is None:
            print(name)
        elif args.force and error.startswith("Error: No such container: "):
            sys.stdout.flush()
            _err(error)  # with -f a missing container is reported but is not a failure
        else:
            errors.append(error)
    sys.stdout.flush()
    for error in errors:
        _err(error)
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
            errors.append(_daemon_error(exc))
            continue
        print(result.get("StatusCode", 0), flush=True)
    for error in errors:
        _err(error)
    return 1 if errors else 0


def rename(ctx: Any, argv: list[str], prog: str) -> int:
    """``rename OLD NEW`` ("docker rename")."""
    fs = FlagSet(prog, "CONTAINER NEW_NAME", "Rename a container", 2, 2)
    _, (old, new) = fs.parse_or_exit(argv)
    old, new = old.strip(), new.strip()
    if not old or not new:
        _err("Error: Neither old nor new names may be empty")
        return 1
    try:
        ctx.client.request("POST", f"/containers/{path_quote(old)}/rename", {"name": new})
    except APIError as exc:
        _err(_daemon_error(exc))
        _err(f"Error: failed to rename container named {old}")
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
    deleted = report.get("ContainersDeleted") or []
    if deleted:
        print("Deleted Containers:")
        for cid in deleted:
            print(cid)
        print()
    print(f"Total reclaimed space: {output.human_size(report.get('SpaceReclaimed', 0))}")
    return 0


def port(ctx: Any, argv: list[str], prog: str) -> int:
    """``port CONTAINER [PORT[/PROTO]]``: ``80/tcp -> 0.0.0.0:49153`` lines, sorted by port ("docker port")."""
    fs = FlagSet(prog, "CONTAINER [PRIVATE_PORT[/PROTO]]",
                 "List port mappings or a specific mapping for the container", 1, 2)
    _, rest = fs.parse_or_exit(argv)
    name = rest[0]
    try:
        info = ctx.client.get(f"/containers/{path_quote(name)}/json")
    except APIError as exc:
        _err(_daemon_error(exc, name, wrapped=True))
        return 1
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if len(rest) == 2:
        number, _, proto = rest[1].partition("/")
        key = f"{number}/{proto or 'tcp'}"
        from berth.cli.runspecs import port_range
        try:
            port_range(number)
        except ValueError as exc:
            _err(str(exc))
            return 1
        if ports.get(key) is None:
            _err(f"Error: No public port '{key}' published for {name}")
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


# ----- logs -----------------------------------------------------------------------------------------------


_LOG_DATE = (r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
             r"(Z|z|[+-]\d{2}:\d{2})?")


def logs_timestamp(value: str, now: float | None = None) -> str:
    """A ``--since``/``--until`` value as the API wants it (docker's ``GetTimestamp``): a Go duration
    is that long ago in whole seconds; an RFC 3339 date or a prefix of one (``2013-01-02``,
    ``2013-01-02T13:23``; local time without a zone) becomes ``SECONDS.NANOS``; a Unix time is passed on.

    Raises ValueError ``failed to parse value as time or duration: "VALUE"``.
    """
    import re
    import time
    from datetime import UTC, datetime, timedelta, timezone

    from berth.cli.runvalues import OptionError, duration_ns
    now = time.time() if now is None else now
    if value != "0":
        try:
            return str(int(now - duration_ns("", value) / 1e9))
        except OptionError:
            pass
    match = re.fullmatch(_LOG_DATE, value)
    if match:
        *fields, frac, zone = match.groups()
        year, month, day, hour, minute, second = (int(f or 0) for f in fields)
        if zone in (None, ""):
            tz = datetime.fromtimestamp(now).astimezone().tzinfo
        elif zone in "Zz":
            tz = UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        seconds = int(datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp())
        return f"{seconds}.{int((frac or '0').ljust(9, '0')):09d}"
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    raise ValueError(f'failed to parse value as time or duration: "{value}"')


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
        _err(_daemon_error(exc, name, wrapped=True))
        return 1
    params: dict[str, Any] = {"stdout": 1, "stderr": 1}
    for key in ("since", "until"):
        if getattr(args, key):
            try:
                params[key] = logs_timestamp(getattr(args, key))
            except ValueError as exc:
                _err(f'invalid value for "{key}": {exc}')
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
        _err(str(exc))
        return 1
    finally:
        response.close()
    return 0


# ----- ps ---------------------------------------------------------------------------------------------------


def display_ports(ports: list[dict[str, Any]]) -> str:
    """The PORTS column as docker 20.10 writes it: unpublished ports and same-number mappings grouped
    into ranges per address and protocol (``8000-8002/tcp``, ``0.0.0.0:80->80/tcp``), then the other
    mappings (``0.0.0.0:49153->80/tcp``, ``:::49153->80/tcp``), all sorted by private port."""
    ordered = sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""), p.get("PublicPort", 0),
                                           p.get("Type", "")))
    groups: dict[str, list[int]] = {}  # key -> [first, last]; insertion order is display order
    result: list[str] = []
    mappings: list[str] = []
    for item in ordered:
        private, kind, ip = item.get("PrivatePort", 0), item.get("Type", ""), item.get("IP", "")
        key = kind
        if ip:
            if item.get("PublicPort", 0) != private:
                mappings.append(f"{ip}:{item.get('PublicPort', 0)}->{private}/{kind}")
                continue
            key = f"{ip}/{kind}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_port_group(key, *group))
            group[0] = group[1] = private
    result.extend(_port_group(key, *group) for key, group in groups.items())
    return ", ".join(result + mappings)


def _port_group(key: str, first: int, last: int) -> str:
    ip, _, kind = key.rpartition("/")
    span = str(first) if first == last else f"{first}-{last}"
    return f"{ip}:{span}->{span}/{kind}" if ip else f"{span}/{kind}"


class ContainerRow:
    """One row of ``ps`` (the fields of docker's container formatter context)."""

    def __init__(self, summary: dict[str, Any], trunc: bool) -> None:
        self._s = summary
        self._trunc = trunc

    @property
    def ID(self) -> str:
        return output.truncate_id(self._s["Id"]) if self._trunc else self._s["Id"]

    @property
    def Names(self) -> str:
        names = [n[1:] if n.startswith("/") else n for n in self._s.get("Names") or []]
        if self._trunc:  # link aliases (other/alias) only with --no-trunc
            names = next(([n] for n in names if "/" not in n), names)
        return ",".join(names)

    @property
    def Image(self) -> str:
        image = self._s.get("Image") or ""
        if not image:
            return "<no image>"
        if not self._trunc:
            return image
        short = output.truncate_id(self._s.get("ImageID", ""))
        if short == output.truncate_id(image):
            return short
        from berth.errors import InvalidParameter
        from berth.images import reference as refs
        try:
            ref = refs.parse_normalized_named(image)
        except InvalidParameter:
            return image
        return f"{ref.familiar_name}:{ref.tag}" if ref.tag else ref.familiar_name

    @property
    def Command(self) -> str:
        from berth.cli.runvalues import go_quote
        command = self._s.get("Command", "")
        return go_quote(output.ellipsis(command, 20) if self._trunc else command)

    @property
    def CreatedAt(self) -> str:
        return go_time(self._s.get("Created", 0))

    @property
    def RunningFor(self) -> str:
        return since(self._s.get("Created", 0))

    @property
    def Ports(self) -> str:
        return display_ports(self._s.get("Ports") or [])

    @property
    def State(self) -> str:
        return self._s.get("State", "")

    @property
    def Status(self) -> str:
        return self._s.get("Status", "")

    @property
    def Size(self) -> str:
        rw = output.human_size(self._s.get("SizeRw", 0) or 0)
        rootfs = self._s.get("SizeRootFs", 0) or 0
        return f"{rw} (virtual {output.human_size(rootfs)})" if rootfs > 0 else rw

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted((self._s.get("Labels") or {}).items()))

    def Label(self, name: str) -> str:
        return (self._s.get("Labels") or {}).get(name, "")

    @property
    def Mounts(self) -> str:
        names = [m.get("Name") or m.get("Source", "") for m in self._s.get("Mounts") or []]
        return ",".join(output.ellipsis(n, 15) if self._trunc else n for n in names)

    @property
    def LocalVolumes(self) -> str:
        return str(sum(1 for m in self._s.get("Mounts") or [] if m.get("Driver") == "local"))

    @property
    def Networks(self) -> str:
        return ",".join(sorted((self._s.get("NetworkSettings") or {}).get("Networks") or {}))

    def to_json(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in (
            "Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks",
            "Ports", "RunningFor", "Size", "State", "Status")}


class _PsHeader:
    """What a ``ps`` table template's header row is rendered from: each field gives its column title;
    ``.Label "a.b-c"`` gives ``b c`` as docker's formatter does."""

    def __getattr__(self, name: str) -> str:
        if name in PS_TITLES:
            return PS_TITLES[name]
        raise AttributeError(name)

    def Label(self, name: str) -> str:
        return name.split(".")[-1].replace("-", " ").replace("_", " ")


def _go_json(value: Any) -> str:
    """Go's ``json.Marshal`` text: compact, non-ASCII kept, ``<``, ``>`` and ``&`` escaped."""
    import json
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_rows(fmt: str, rows: list[ContainerRow]) -> str:
    """Render ``ps`` rows with a ``--format`` value (``table ...``, ``json``, ``{{json .}}`` or a template).

    Raises TemplateError (from berth.gotemplate) for a template that does not parse or execute.
    """
    from berth.gotemplate import Template
    if fmt.strip() in ("json", "{{json .}}", "{{ json . }}"):
        return "".join(_go_json(row.to_json()) + "\n" for row in rows)
    is_table = fmt.startswith("table")
    text = (fmt[len("table"):] if is_table else fmt).strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    template = Template(text)
    lines = [template.execute(row) for row in rows]
    if not is_table:
        return "".join(line + "\n" for line in lines)
    return output.tabwrite([template.execute(_PsHeader()), *lines])


def ps(ctx: Any, argv: list[str], prog: str) -> int:
    """``ps``: docker's columns and ``--format`` fields; ``.Size`` in a format asks the daemon for sizes
    ("docker ps")."""
    fs = FlagSet(prog, "[OPTIONS]", "List containers", 0, 0)
    fs.add("-a, --all", help="Show all containers (default shows just running)")
    fs.add("-f, --filter", "list", help="Filter output based on conditions provided", metavar="filter")
    fs.add("--format", "string", help="Pretty-print containers using a Go template")
    fs.add("-n, --last", "int", -1, help="Show n last created containers (includes all states) (default -1)")
    fs.add("-l, --latest", help="Show the latest created container (includes all states)")
    fs.add("--no-trunc", help="Don't truncate output")
    fs.add("-q, --quiet", help="Only display container IDs")
    fs.add("-s, --size", help="Display total file sizes")
    args, _ = fs.parse_or_exit(argv)
    from berth.gotemplate import Template, TemplateError
    fmt = args.format or ("{{.ID}}" if args.quiet else "table")
    if fmt.strip() == "table":
        fmt = PS_TABLE + ("\t{{.Size}}" if args.size else "")
    try:
        Template(fmt[len("table"):] if fmt.startswith("table") else fmt)
    except TemplateError as exc:
        _err(f"failed to parse template: {exc}")
        return 1
    size = args.size or "Size" in fmt or "json" in fmt
    limit = 1 if args.latest and args.last == -1 else args.last
    summaries = ctx.client.get("/containers/json", {
        "all": args.all or None, "limit": limit if limit != -1 else None, "size": size or None,
        "filters": filters_param(args.filter)})
    try:
        text = render_rows(fmt, [ContainerRow(s, not args.no_trunc) for s in summaries])
    except TemplateError as exc:
        _err(f"failed to execute template: {exc}")
        return 1
    sys.stdout.write(text)
    return 0
