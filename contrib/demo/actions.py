"""The demo's Python steps: fetching .deb files on the host, picking a free port, comparing image
sizes, reading a file a container wrote into a bind-mounted folder. Each returns the text to print
and raises RuntimeError when what it shows is not so."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from contrib.demo import contexts
from contrib.demo.course import Actions
from contrib.mkimage import baseimages, debs, rootfs

COURSE_PACKAGES = ("cowsay",)


def _fetch_debs(workdir: Path, cache: rootfs.Cache) -> Callable[[str], Callable[[dict[str, str]], str]]:
    def for_context(context: str) -> Callable[[dict[str, str]], str]:
        def run(values: dict[str, str]) -> str:
            dest = workdir / context / "debs"
            shutil.rmtree(dest, ignore_errors=True)
            base_tar = baseimages.IMAGES["debian"].make(cache, lambda _line: None)
            try:
                placed = debs.fetch_debs(COURSE_PACKAGES, dest, base_tar, cache)
            except rootfs.MkImageError as exc:
                if "apt-get update" not in str(exc):
                    raise RuntimeError(str(exc)) from None
                # A fresh machine may have no package lists yet (setup.sh updates them only when it
                # installs something): fetch them once and try again.
                subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
                try:
                    placed = debs.fetch_debs(COURSE_PACKAGES, dest, base_tar, cache)
                except rootfs.MkImageError as again:
                    raise RuntimeError(str(again)) from None
            return "\n".join(f"{context}/debs/{p.name}" for p in placed)
        return run
    return for_context


def free_port(values: dict[str, str], preferred: int = 8000) -> str:
    """Store in ``values["fixed_port"]`` ``preferred`` when nothing listens there, else a free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            values["fixed_port"] = str(s.getsockname()[1])
            break
    chosen = values["fixed_port"]
    return f"host port {chosen}" + ("" if chosen == str(preferred) else f" ({preferred} is taken)")


def compare_sizes(values: dict[str, str]) -> str:
    """Say how the single-stage and multi-stage images' sizes compare (captured by inspect steps)."""
    single, multi = int(values["hello_size"]), int(values["hello_multi_size"])
    if multi >= single:
        raise RuntimeError(f"the multi-stage image ({multi} B) is not smaller than the single-stage one ({single} B)")
    return (f"hello: {single / 1e6:.1f} MB, hello-multi: {multi / 1e6:.1f} MB: the multi-stage image is "
            f"{(single - multi) / 1e6:.1f} MB smaller (no gcc, no headers, no hello.c)")


def _show_host_file(workdir: Path) -> Callable[[dict[str, str]], str]:
    def run(values: dict[str, str]) -> str:
        path = workdir / "code" / "from-container.txt"
        try:
            return path.read_text()
        except OSError as exc:
            raise RuntimeError(f"the container's file is not on the host: {exc}") from None
    return run


def _git(*argv: str, cwd: Path) -> None:
    done = subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(argv)}: {done.stderr.strip()}")


def make_git_repo(root: Path) -> Path:
    """A repository ``root/rootfs.git`` whose branch ``container`` holds ``docker/Dockerfile`` (the
    layout of the course's ``rootfs.git#container:docker``), ready for git's "dumb" HTTP transport."""
    work = root / "rootfs"
    (work / "docker").mkdir(parents=True)
    (work / "docker" / "Dockerfile").write_text(contexts.FROMGIT_DOCKERFILE)
    ident = ("-c", "user.name=berth demo", "-c", "user.email=demo@localhost")
    _git("init", "-q", "-b", "container", ".", cwd=work)
    _git("add", "docker/Dockerfile", cwd=work)
    _git(*ident, "commit", "-q", "-m", "Dockerfile in docker/ on branch container", cwd=work)
    _git("clone", "-q", "--bare", str(work), str(root / "rootfs.git"), cwd=root)
    _git("update-server-info", cwd=root / "rootfs.git")
    return root / "rootfs.git"


def _serve_git(workdir: Path) -> Callable[[dict[str, str]], str]:
    def run(values: dict[str, str]) -> str:
        root = workdir / "git"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        make_git_repo(root)
        handler = functools.partial(_QuietHandler, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # A daemon thread: the server lives as long as the demo does, and only on loopback.
        threading.Thread(target=server.serve_forever, daemon=True).start()
        values["git_url"] = f"http://127.0.0.1:{server.server_address[1]}/rootfs.git"
        return f"serving {values['git_url']} (branch container, Dockerfile in docker/)"
    return run


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def make_actions(workdir: Path, cache: rootfs.Cache | None = None) -> Actions:
    """The actions for a walk in ``workdir`` (mkimage's cache for .deb files and base tars)."""
    cache = cache or rootfs.Cache()
    return Actions(fetch_debs=_fetch_debs(workdir, cache), free_port=free_port, compare_sizes=compare_sizes,
                   show_host_file=_show_host_file(workdir), serve_git=_serve_git(workdir))
