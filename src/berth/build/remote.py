"""Remote build contexts: ``POST /build?remote=<url>`` (Engine API "ImageBuild", ``remote``).

As dockerd 20.10 (``builder/remotecontext``) decides: a git URL (``git://``, ``git@``,
``github.com/``, or http(s) ending in ``.git`` with an optional ``#fragment``) is cloned with the
``git`` binary; ``#ref:subdir`` picks the ref and the context's directory inside the clone. Any
other http(s) URL is downloaded: a plain-text body is the Dockerfile itself (empty context),
anything else a context tar (maybe compressed). One deliberate difference: without ``#ref``
the remote's default branch (``HEAD``) is fetched, where 20.10 always asked for ``master``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO, cast

from berth.build.context import BuildContext, context_from_directory, extract_tar
from berth.build.dockerignore import clean
from berth.build.sources import SourceTree
from berth.errors import InvalidParameter
from berth.snapshots import fsutil

_GIT_SUFFIX = re.compile(r"\.git(?:#.+)?$")
_GIT_PREFIXES = ("git://", "github.com/", "git@")
_PREAMBLE = 512
_TIMEOUT = 60
_GIT_TIMEOUT = 600
# Transports a context clone (and its submodules) may use: never file:// or ext::.
_GIT_PROTOCOLS = "http:https:git:ssh"


def is_url(text: str) -> bool:
    """docker's ``urlutil.IsURL``: an http:// or https:// address."""
    return text.startswith(("http://", "https://"))


def is_git_url(text: str) -> bool:
    """docker's ``urlutil.IsGitURL``."""
    return (is_url(text) and bool(_GIT_SUFFIX.search(text))) or text.startswith(_GIT_PREFIXES)


def parse_git_url(url: str) -> tuple[str, str, str]:
    """``(remote, ref, subdir)`` of a git context URL; ref "" means the default branch.

    Raises InvalidParameter ``invalid refspec: -x`` for a ref that would be read as an option.
    """
    if not url.startswith(("git://", "git@", "http://", "https://")):
        url = "https://" + url
    remote, _, fragment = url.partition("#")
    ref, _, subdir = fragment.partition(":")
    if ref.startswith("-"):
        raise InvalidParameter(f"invalid refspec: {ref}")
    return remote, ref, subdir


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": _GIT_PROTOCOLS}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=_GIT_TIMEOUT)


def clone_git(url: str, workdir: Path) -> Path:
    """Clone ``url`` into ``workdir`` and return the context directory (the subdir, if given).

    Raises InvalidParameter when git fails (message with git's output) or the subdir is not a
    directory inside the clone.
    """
    remote, ref, subdir = parse_git_url(url)
    if shutil.which("git") is None:
        raise InvalidParameter("unable to prepare context: git is not installed on the daemon host")
    workdir.mkdir(parents=True, exist_ok=True)
    for args in (("init", "-q"), ("remote", "add", "origin", remote)):
        _check(_git(workdir, *args), "error initializing git repository")
    wanted = ref or "HEAD"
    fetched = _git(workdir, "fetch", "--depth", "1", "origin", wanted)
    if fetched.returncode != 0:  # dumb http servers cannot do shallow fetches
        fetched = _git(workdir, "fetch", "origin", wanted)
    _check(fetched, "error fetching")
    _check(_git(workdir, "checkout", "-q", "FETCH_HEAD"), f"error checking out {wanted}")
    _check(_git(workdir, "submodule", "update", "--init", "--recursive", "--depth=1"),
           "error initializing submodules")
    if not subdir:
        return workdir
    root = fsutil.secure_join(workdir, subdir)
    if not root.is_dir():
        raise InvalidParameter(f"error setting git context, not a directory: {clean(subdir)}")
    return root


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise InvalidParameter(f"unable to prepare context: {what}: {output}")


def _is_text(content_type: str, head: bytes) -> bool:
    """docker's ``inspectResponse``: the server's type, or a sniff when it gave none or
    ``application/octet-stream`` (web servers label an extension-less ``Dockerfile`` so)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/octet-stream":
        return media == "text/plain"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")) or head[257:262] == b"ustar":
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)


def download(url: str) -> urllib.request.Request:
    """The GET request the builder sends for ``url`` (remote contexts and ``ADD <url>``)."""
    return urllib.request.Request(url, headers={"User-Agent": "berth-builder"})


def fetch_url_context(url: str, workdir: Path, dockerfile: str) -> BuildContext:
    """Download ``url``: a Dockerfile (text; the context is then empty) or a context tar, unpacked
    into ``workdir/context``."""
    root = workdir / "context"
    root.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(download(url), timeout=_TIMEOUT) as response:  # noqa: S310 - asked for
            head = response.read(_PREAMBLE)
            if _is_text(response.headers.get("Content-Type", ""), head):
                text = (head + response.read()).decode("utf-8", "replace")
                return BuildContext(SourceTree(root, {}), text, dockerfile)
            sums: dict[str, str] = {}
            extract_tar(cast(BinaryIO, _Prefixed(head, cast(BinaryIO, response))), root, sums=sums)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InvalidParameter(f"unable to prepare context: unable to download remote context {url}: {reason}") \
            from None
    return context_from_directory(root, dockerfile, sums)


def fetch_git_context(url: str, workdir: Path, dockerfile: str) -> BuildContext:
    """Clone a git context into ``workdir/git`` (checksums computed from the files)."""
    root = clone_git(url, workdir / "git")
    return context_from_directory(root, dockerfile, None)


def fetch_remote(remote: str, workdir: Path, dockerfile: str) -> BuildContext:
    """The context named by ``remote=``. Raises InvalidParameter for anything else than a git or
    http(s) URL (dockerd: ``remoteURL (x) could not be recognized as URL``)."""
    if is_git_url(remote):
        return fetch_git_context(remote, workdir, dockerfile)
    if is_url(remote):
        return fetch_url_context(remote, workdir, dockerfile)
    raise InvalidParameter(f"remoteURL ({remote}) could not be recognized as URL")


class _Prefixed:
    """A stream that first gives back bytes already read from it."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data = self._head if n is None or n < 0 else self._head[:n]
            self._head = self._head[len(data):]
            return data
        return self._rest.read(n)

