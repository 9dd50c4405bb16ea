"""``run``, ``create`` and ``start``: creating containers and starting them, attached or not.

Docs: docker CLI reference "docker run", "docker create", "docker start"; output, messages and exit
statuses follow the docker 20.10 CLI (the Engine API 1.41 baseline). ``run``'s order of calls is
docker's: create (pulling the image when it is missing), attach, wait (``condition=next-exit``, or
``removed`` with ``--rm``), start.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from berth.cli import output
from berth.cli.commands.containers import CommandFailed, daemon_error, print_error
from berth.cli.flags import FlagSet
from berth.client.api import APIError, path_quote

CREATE_USAGE = "[OPTIONS] IMAGE [COMMAND] [ARG...]"


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
                print_error(f"{prefix}{message['status']}")
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
        print_error(warning)
    if request.pull == "always" and ref is not None:
        _pull(ctx, ref, request.platform, quiet)
    try:
        created = ctx.client.post("/containers/create", request.params, request.body)
    except APIError as exc:
        # docker's CLI pulls on any 404 because dockerd's create only 404s for the image; berthd
        # also checks the networks at create, and a missing network is no reason to pull.
        if exc.status != 404 or not exc.message.startswith("No such image") or request.pull != "missing" \
                or ref is None:
            raise
        print_error(f"Unable to find image '{ref.familiar()}' locally")
        _pull(ctx, ref, request.platform, quiet)
        created = ctx.client.post("/containers/create", request.params, request.body)
    for warning in created.get("Warnings") or []:
        print_error(f"WARNING: {warning}")
    if request.cidfile:
        _write_cidfile(request.cidfile, created["Id"])
    return created["Id"]


def _write_cidfile(path: str, cid: str) -> None:
    """Write the ID (no newline) to a new file: a temp file linked into place, so a reader never sees
    half an ID and a file that appeared meanwhile is not overwritten."""
    try:
        output.write_file(path, cid.encode(), exclusive=True)
    except FileExistsError:
        raise CommandFailed(f"container ID file found, make sure the other container isn't running or delete "
                            f"{path}") from None


def create(ctx: Any, argv: list[str], prog: str) -> int:
    """``create``: prints the new container's full ID."""
    fs = _create_flagset(prog, run=False)
    args, positional = fs.parse_or_exit(argv)
    request = _request_or_exit(fs, args, positional)
    try:
        print(_create_container(ctx, request, args.quiet))
    except CommandFailed as exc:
        print_error(str(exc))
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
    print_error(line + (f"\nSee '{prog} --help'." if with_help else ""))
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
            print_error("Conflicting options: -a and -d")
            return 1
        body.update(AttachStdin=False, AttachStdout=False, AttachStderr=False, StdinOnce=False)
    elif body["Tty"] and body["AttachStdin"] and not sys.stdin.isatty():
        print_error("the input device is not a TTY")
        return 1
    try:
        cid = _create_container(ctx, request, args.quiet)
    except APIError as exc:
        return _run_failed(prog, daemon_error(exc), True)
    except CommandFailed as exc:
        return _run_failed(prog, str(exc), True)
    if not body["AttachStdout"] and not body["AttachStderr"]:
        print(cid, flush=True)  # before the start, as docker does (-d, or -a stdin alone)
    if args.detach:
        try:
            ctx.client.request("POST", f"/containers/{cid}/start")
        except APIError as exc:
            return _run_failed(prog, daemon_error(exc), False)
        return 0
    session = AttachedSession(ctx.client, cid, tty=body["Tty"], stdin=body["AttachStdin"],
                              stdout=body["AttachStdout"], stderr=body["AttachStderr"],
                              auto_remove=body["HostConfig"]["AutoRemove"], detach_keys=args.detach_keys,
                              sig_proxy=args.sig_proxy and not body["Tty"])
    try:
        return session.run()
    except APIError as exc:
        return _run_failed(prog, daemon_error(exc), False)


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
            print_error(str(exc))
            return "eof"


def _wait_status(waiter: Any) -> int:
    """The container's exit status from the ``POST wait`` response; 125 with docker's message
    when the daemon reports an error or the response breaks off (the daemon went away)."""
    try:
        result = waiter.json() or {}
    except (OSError, ValueError):
        print_error("error waiting for container: unexpected EOF")
        return 125
    finally:
        waiter.close()
    error = (result.get("Error") or {}).get("Message")
    if error:
        print_error(f"Error waiting for container: {error}")
        return 125
    return int(result.get("StatusCode", 125))


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
            print_error("you cannot start and attach multiple containers at once")
            return 1
        try:
            info = ctx.client.get(f"/containers/{path_quote(names[0])}/json")
        except APIError as exc:
            print_error(daemon_error(exc, names[0], wrapped=True))
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
            print_error(daemon_error(exc))
            failed.append(name)
            continue
        print(name, flush=True)
    if failed:
        print_error(f"Error: failed to start containers: {', '.join(failed)}")
        return 1
    return 0
