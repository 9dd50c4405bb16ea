"""Images in and out: import, save, load, pull, push, search (docs: docker CLI reference for
each command)."""

from __future__ import annotations

import os
import sys
from typing import Any

from berth.cli import output
from berth.cli.flags import FlagSet
from berth.client.api import path_quote


def _file_chunks(f: Any):
    while chunk := f.read(1 << 20):
        yield chunk


def import_(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                 "Import the contents from a tarball to create a filesystem image", 1, 2)
    fs.add("-c, --change", "list", help="Apply Dockerfile instruction to the created image")
    fs.add("-m, --message", "string", help="Set commit message for imported image")
    fs.add("--platform", "string", help="Set platform if server is multi-platform capable")
    args, rest = fs.parse_or_exit(argv)
    source = rest[0]
    params: dict[str, Any] = {"message": args.message or None, "changes": args.change}
    if len(rest) > 1:
        from berth.cli.commands.images import target_reference
        ref = target_reference(rest[1])
        if ref is None:
            return 1
        params["repo"] = ref.familiar_name if ref.domain == "docker.io" else ref.name
        params["tag"] = ref.tag
    body: Any
    if source == "-":
        params["fromSrc"] = "-"
        body = _file_chunks(sys.stdin.buffer)
    elif "://" in source:
        params["fromSrc"] = source
        body = None
    else:
        params["fromSrc"] = "-"
        try:
            f = open(source, "rb")  # noqa: SIM115 - streamed by the request
        except OSError as exc:
            sys.stderr.write(f"open {source}: {exc.strerror.lower() if exc.strerror else exc}\n")
            return 1
        body = _file_chunks(f)
    response = ctx.client.request("POST", "/images/create", params, body=body,
                                  headers={"Content-Type": "application/x-tar"}, stream=True)
    return print_json_messages(response)


def print_json_messages(response: Any, quiet: bool = False) -> int:
    """Print a JSON message stream as docker's ``jsonmessage.DisplayJSONMessagesStream`` does
    (without progress bars); returns 1 when the stream carries an error."""
    status = 0
    for message in response.iter_json():
        if message.get("error") or message.get("errorDetail"):
            detail = message.get("errorDetail") or {}
            sys.stderr.write(f"{detail.get('message') or message.get('error')}\n")
            status = 1
            continue
        if quiet:
            continue
        if "stream" in message:
            sys.stdout.write(message["stream"])
        elif "status" in message:
            prefix = f"{message['id']}: " if message.get("id") else ""
            sys.stdout.write(f"{prefix}{message['status']}\n")
        elif "aux" in message and isinstance(message["aux"], dict) and message["aux"].get("ID") and not quiet:
            pass
        sys.stdout.flush()
    response.close()
    return status


def save(ctx: Any, argv: list[str], prog: str) -> int:
    """``save [-o FILE] IMAGE...``: the archive goes to stdout, or to FILE through a temp file in
    the same directory renamed into place once complete (docker's CopyToFile: mode 0600, and a
    failed save leaves FILE as it was)."""
    fs = FlagSet(prog, "[OPTIONS] IMAGE [IMAGE...]",
                 "Save one or more images to a tar archive (streamed to STDOUT by default)", 1)
    fs.add("-o, --output", "string", help="Write to a file, instead of STDOUT")
    args, names = fs.parse_or_exit(argv)
    if not args.output and sys.stdout.isatty():
        sys.stderr.write("cowardly refusing to save to a terminal. Use the -o flag or redirect\n")
        return 1
    if args.output:
        directory = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(directory):
            sys.stderr.write(f"failed to save image: invalid output path: stat {directory}: "
                             "no such file or directory\n")
            return 1
    response = ctx.client.request("GET", "/images/get", {"names": names}, stream=True)
    if not args.output:
        out = sys.stdout.buffer
        for chunk in response.iter_chunks():
            out.write(chunk)
        out.flush()
        return 0
    import tempfile
    from http.client import HTTPException
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".berth_temp_")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in response.iter_chunks():
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, args.output)
    except (OSError, HTTPException) as exc:  # the daemon broke off the archive, or the disk failed
        os.unlink(tmp)
        sys.stderr.write(f"failed to save image: {str(exc) or type(exc).__name__}\n")
        return 1
    except BaseException:
        os.unlink(tmp)
        raise
    return 0


def load(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS]", "Load an image from a tar archive or STDIN", 0, 0)
    fs.add("-i, --input", "string", help="Read from tar archive file, instead of STDIN")
    fs.add("-q, --quiet", help="Suppress the load output")
    args, _ = fs.parse_or_exit(argv)
    source: Any
    if args.input:
        try:
            source = open(args.input, "rb")  # noqa: SIM115
        except OSError as exc:
            sys.stderr.write(f"open {args.input}: {(exc.strerror or str(exc)).lower()}\n")
            return 1
    else:
        if sys.stdin.isatty():
            sys.stderr.write("requested load from stdin, but stdin is empty\n")
            return 1
        source = sys.stdin.buffer
    response = ctx.client.request("POST", "/images/load", {"quiet": args.quiet or None},
                                  body=_file_chunks(source), headers={"Content-Type": "application/x-tar"},
                                  stream=True)
    return print_json_messages(response)


def pull(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS] NAME[:TAG|@DIGEST]", "Pull an image or a repository from a registry", 1, 1)
    fs.add("-a, --all-tags", help="Download all tagged images in the repository")
    fs.add("-q, --quiet", help="Suppress verbose output")
    fs.add("--platform", "string", help="Set platform if server is multi-platform capable")
    args, (name,) = fs.parse_or_exit(argv)
    from berth.images import reference as refs
    repo, tag = refs.parse_repository_tag(name)
    if not tag and "@" not in name:
        print("Using default tag: latest")
        tag = "latest"
    response = ctx.client.request("POST", "/images/create", {"fromImage": repo, "tag": tag}, stream=True)
    return print_json_messages(response, args.quiet)


def push(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS] NAME[:TAG]", "Push an image or a repository to a registry", 1, 1)
    fs.add("-a, --all-tags", help="Push all tagged images in the repository")
    fs.add("-q, --quiet", help="Suppress verbose output")
    args, (name,) = fs.parse_or_exit(argv)
    from berth.images import reference as refs
    repo, tag = refs.parse_repository_tag(name)
    response = ctx.client.request("POST", f"/images/{path_quote(repo)}/push", {"tag": tag or None},
                                  headers={"X-Registry-Auth": "e30="}, stream=True)
    return print_json_messages(response, args.quiet)


def search(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS] TERM", "Search the Docker Hub for images", 1, 1)
    fs.add("-f, --filter", "list")
    fs.add("--format", "string")
    fs.add("--limit", "int", 25)
    fs.add("--no-trunc")
    args, (term,) = fs.parse_or_exit(argv)
    results = ctx.client.get("/images/search", {"term": term, "limit": args.limit})
    rows = [f"{r.get('name', '')}\t{r.get('description', '')}\t{r.get('star_count', 0)}\t"
            f"{'[OK]' if r.get('is_official') else ''}\t{'[OK]' if r.get('is_automated') else ''}" for r in results]
    sys.stdout.write(output.tabwrite(["NAME\tDESCRIPTION\tSTARS\tOFFICIAL\tAUTOMATED", *rows]))
    return 0
