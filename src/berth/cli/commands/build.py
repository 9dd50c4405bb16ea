"""``build`` with the classic builder API (POST /build) and ``builder prune``.

Sources: docker CLI reference "docker build" (legacy builder) and "docker builder prune"; Engine API
v1.41 "ImageBuild"; build-context docs (https://docs.docker.com/build/concepts/context/). The context
is a tar of the directory as the docker CLI writes it: ustar headers (PAX only when a field does not
fit), owner 0:0, mtimes in whole seconds, symlinks kept as symlinks, hard links as links, sockets
skipped, no padding to a 10 KiB record. ``.dockerignore`` (or ``<Dockerfile>.dockerignore``) picks the
entries; the Dockerfile and ``.dockerignore`` are always sent.
"""

from __future__ import annotations

import os
import stat
import sys
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from berth.cli import output
from berth.cli.flags import FlagSet

END_OF_ARCHIVE = b"\0" * (2 * tarfile.BLOCKSIZE)
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


@dataclass(frozen=True)
class DataEntry:
    """A tar entry made from bytes in memory (an injected Dockerfile, an amended .dockerignore)."""

    name: str
    data: bytes
    mode: int = 0o600
    mtime: int = 0


@dataclass(frozen=True)
class LocalEntry:
    """A tar entry read from the local filesystem: ``path`` stored as ``name``."""

    path: str
    name: str


Entry = LocalEntry | DataEntry


def tar_header(info: tarfile.TarInfo) -> bytes:
    """The header block(s) of ``info``: ustar when every field fits, else PAX (as Go's writer picks)."""
    if info.name.isascii() and info.linkname.isascii():
        try:
            return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        except ValueError:
            pass
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def local_tarinfo(path: str, name: str, st: os.stat_result, owner: tuple[int, int] | None) -> tarfile.TarInfo | None:
    """A TarInfo for a local file, or None for a socket (docker skips those)."""
    mode = st.st_mode
    if stat.S_ISSOCK(mode):
        return None
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(mode)
    info.mtime = int(st.st_mtime)
    info.uid, info.gid = owner if owner is not None else (st.st_uid, st.st_gid)
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        info.type, info.size = tarfile.REGTYPE, st.st_size
    return info


class TarStream:
    """Writes entries as a tar stream (an iterator of byte chunks) and counts what it wrote.

    ``written`` is the total so far; ``data_end`` the offset just past the last entry's data,
    before its padding. Raises OSError when a file changes size while it is read.
    """

    def __init__(self, entries: Iterable[Entry], owner: tuple[int, int] | None = (0, 0)) -> None:
        self.entries = entries
        self.owner = owner
        self.written = 0
        self.data_end = 0

    def __iter__(self) -> Iterator[bytes]:
        links: dict[tuple[int, int], str] = {}
        for entry in self.entries:
            if isinstance(entry, DataEntry):
                info = tarfile.TarInfo(entry.name)
                info.size, info.mode, info.mtime = len(entry.data), entry.mode, entry.mtime
                yield self._count(tar_header(info))
                yield self._count(entry.data)
                self.data_end = self.written
                yield self._count(_padding(info.size))
                continue
            yield from self._local(entry, links)
        yield self._count(END_OF_ARCHIVE)

    def _local(self, entry: LocalEntry, links: dict[tuple[int, int], str]) -> Iterator[bytes]:
        st = os.lstat(entry.path)
        info = local_tarinfo(entry.path, entry.name, st, self.owner)
        if info is None:
            return
        if info.type == tarfile.REGTYPE and st.st_nlink > 1:
            first = links.setdefault((st.st_dev, st.st_ino), entry.name)
            if first != entry.name:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
        yield self._count(tar_header(info))
        if info.type == tarfile.REGTYPE:
            yield from self._file_data(entry.path, info.size)
        self.data_end = self.written
        yield self._count(_padding(info.size))

    def _file_data(self, path: str, size: int) -> Iterator[bytes]:
        remaining = size
        with open(path, "rb") as f:
            while remaining:
                chunk = f.read(min(remaining, 1 << 20))
                if not chunk:
                    raise OSError(f"{path}: file shrank while it was archived")
                remaining -= len(chunk)
                yield self._count(chunk)

    def _count(self, chunk: bytes) -> bytes:
        self.written += len(chunk)
        return chunk


# ----- the build context --------------------------------------------------------------------------

class ContextError(Exception):
    """The context cannot be prepared (docker: ``unable to prepare context: ...``)."""


@dataclass
class BuildContext:
    """What POST /build gets: a tar ``body`` (or a ``remote`` URL) and the Dockerfile's name in it.

    ``reported_size`` gives the number for "Sending build context" once the body was sent.
    """

    body: Iterable[bytes] | None
    dockerfile: str
    remote: str = ""
    stream: TarStream | None = None
    injected: bool = False
    counter: list[int] = field(default_factory=lambda: [0])

    def reported_size(self) -> int:
        if self.stream is None:
            return self.counter[0]
        # docker's CLI stops counting an amended context after the injected Dockerfile's data
        return self.stream.data_end if self.injected else self.stream.written


def is_git_url(text: str) -> bool:
    """docker's ``urlutil.IsGitURL``: a git scheme or host prefix, or an http(s) URL ending in ``.git``."""
    if text.startswith(("git://", "github.com/", "git@")):
        return True
    return is_url(text) and text.split("#", 1)[0].endswith(".git")


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def looks_like_archive(head: bytes) -> bool:
    """Whether the first 512 bytes of stdin start a (possibly compressed) tar rather than a Dockerfile.

    As the docker CLI decides it: a compression magic number, or a first tar header that is read
    completely from those 512 bytes, which a PAX or GNU extension header (its records come in the
    next block) is not: docker then takes the stream for a Dockerfile, and so does this.
    """
    if head.startswith(_COMPRESSED_MAGIC):
        return True
    if len(head) < tarfile.BLOCKSIZE:
        return False
    try:
        info = tarfile.TarInfo.frombuf(head[:tarfile.BLOCKSIZE], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return info.type not in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                             tarfile.GNUTYPE_LONGLINK)


def _counted(chunks: Iterable[bytes], counter: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        counter[0] += len(chunk)
        yield chunk


def stdin_context(stdin: BinaryIO, dockerfile: str) -> BuildContext:
    """``build -``: stdin is a tar (sent as is) or a Dockerfile (sent as the only file)."""
    head = stdin.read(tarfile.BLOCKSIZE)
    if looks_like_archive(head):
        rest = iter(lambda: stdin.read(1 << 20), b"")
        ctx = BuildContext(None, dockerfile)
        ctx.body = _counted(_chain(head, rest), ctx.counter)
        return ctx
    data = head + stdin.read()
    tar = TarStream([DataEntry("Dockerfile", data, 0o600, int(time.time()))])
    return BuildContext(tar, "Dockerfile", stream=tar)


def _chain(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _resolve_dockerfile(context_dir: str, dockerfile: str) -> str:
    if not dockerfile:
        path = os.path.join(context_dir, "Dockerfile")
        if not os.path.lexists(path) and os.path.lexists(os.path.join(context_dir, "dockerfile")):
            path = os.path.join(context_dir, "dockerfile")
    else:
        path = os.path.abspath(dockerfile)
    try:
        os.lstat(path)
    except OSError as exc:
        raise ContextError(f"unable to evaluate symlinks in Dockerfile path: lstat {path}: "
                           f"{(exc.strerror or str(exc)).lower()}") from None
    return os.path.realpath(path)


def directory_context(context_dir: str, dockerfile: str, stdin_dockerfile: bytes | None,
                      random_name: str) -> BuildContext:
    """A local directory context. The Dockerfile comes from ``-f`` (relative to the working
    directory), stdin (``-f -``) or ``<context>/Dockerfile``; one outside the context, or from stdin,
    is added under ``random_name`` and listed in ``.dockerignore`` so that the daemon drops it, as
    the docker CLI does. Raises ContextError with docker's messages."""
    from pathlib import Path

    from berth.build import dockerignore
    from berth.errors import InvalidParameter

    if not os.path.isdir(context_dir):
        raise ContextError(f'path "{context_dir}" not found')
    root = os.path.realpath(context_dir)
    path = None if stdin_dockerfile is not None else _resolve_dockerfile(root, dockerfile)
    if path is not None and os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ContextError(f"the Dockerfile ({dockerfile or 'Dockerfile'}) cannot be empty")
    relative = os.path.relpath(path, root) if path is not None else ".."
    inside = not relative.startswith("..")
    ignore_file = dockerignore.select_ignore_file(Path(root), path or "Dockerfile")
    try:
        patterns = dockerignore.read_patterns(ignore_file.read_text()) if ignore_file else []
    except (InvalidParameter, OSError) as exc:
        raise ContextError(f"error checking context: {exc}") from None
    # an outside (or stdin) Dockerfile is not one of the context's files, so nothing is kept for it
    keep = relative if inside else (path or os.devnull)
    names = list(dockerignore.walk_context(Path(root), patterns, keep))
    entries: list[Entry] = [LocalEntry(os.path.join(root, name), name) for name in names]
    if inside:
        tar = TarStream(entries)
        return BuildContext(tar, Path(relative).as_posix(), stream=tar)
    data = stdin_dockerfile if stdin_dockerfile is not None else Path(str(path)).read_bytes()
    now = int(time.time())
    ignore_entry = next((e for e in entries if e.name == ".dockerignore"), None)
    old = Path(ignore_entry.path).read_bytes() if isinstance(ignore_entry, LocalEntry) else b""
    amended = DataEntry(".dockerignore", old + f"\n{random_name}\n".encode(), 0o600, now)
    entries = [amended if e is ignore_entry else e for e in entries]
    if ignore_entry is None:
        entries.append(amended)
    entries.append(DataEntry(random_name, data, 0o600, now))
    tar = TarStream(entries)
    return BuildContext(tar, random_name, stream=tar, injected=True)


def prepare_context(spec: str, dockerfile: str, stdin: BinaryIO) -> BuildContext:
    """The context for ``build PATH|URL|-`` (docs: "docker build", "Build context"). Raises ContextError."""
    if spec == "-":
        if dockerfile == "-":
            raise ContextError("invalid argument: can't use stdin for both build context and dockerfile")
        return stdin_context(stdin, dockerfile or "Dockerfile")
    if is_git_url(spec) or is_url(spec):
        return BuildContext(None, "" if dockerfile == "-" else dockerfile, remote=spec)
    stdin_dockerfile = stdin.read() if dockerfile == "-" else None
    return directory_context(spec, "" if dockerfile == "-" else dockerfile, stdin_dockerfile,
                             ".dockerfile." + os.urandom(10).hex())


# ----- the request and its output -------------------------------------------------------------------

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
        _write_atomic(args.iidfile, image_id.encode())
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


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
    deleted = report.get("CachesDeleted") or []
    if deleted:
        sys.stdout.write("Deleted build cache objects:\n" + "".join(d + "\n" for d in deleted) + "\n")
    print(f"Total reclaimed space: {output.human_size(report.get('SpaceReclaimed', 0))}")
    return 0


