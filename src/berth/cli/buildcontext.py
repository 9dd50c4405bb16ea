"""The build context of ``build``: a directory sent as a tar (``.dockerignore`` applied; the
Dockerfile and ``.dockerignore`` always sent), a tar or a Dockerfile on stdin, or a URL the
daemon fetches itself.

Sources: docker CLI reference "docker build" (legacy builder); build-context docs
(https://docs.docker.com/build/concepts/context/).
"""

from __future__ import annotations

import os
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from berth.cli.tarstream import DataEntry, Entry, LocalEntry, TarStream

_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


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
