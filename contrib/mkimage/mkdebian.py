#!/usr/bin/env python3
"""Make a Debian root filesystem tar with ``debootstrap --variant=minbase`` (cached).

Usage: ``mkdebian.py [--suite bookworm] [--include build-essential,...] [--cache-dir DIR] [OUT.tar]``

The mirror is the one the host's own apt sources name (see :mod:`aptsources`), read at run time.
The result is cached as ``<cache>/debian-<suite>-minbase[+<packages>]-v<N>.tar`` (default cache
``/var/cache/berth-mkimage``), so a second run takes no time; with ``OUT.tar`` the cached tar is
also copied there. Import it with ``berth import -c 'CMD ["bash"]' OUT.tar debian:bookworm``
(or let ``baseimages.py`` do everything).

The root filesystem is trimmed as Debian's own container images are: the host's hostname and
resolv.conf (copied in by debootstrap) emptied, the apt package lists and downloaded .debs
removed, ``policy-rc.d`` refusing to start services, dpkg's ``force-unsafe-io``.

Stdlib only: the test-suite and the demo both import it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

try:
    from . import aptsources, rootfs
except ImportError:  # run as a script: python3 contrib/mkimage/mkdebian.py
    import aptsources  # type: ignore[no-redef]
    import rootfs  # type: ignore[no-redef]

# Bumped whenever finish_rootfs changes what the tar holds, so stale cache entries are not reused.
FORMAT = 1
BUILD_PACKAGES = ("build-essential",)
_DOCKER_FILES = {
    "usr/sbin/policy-rc.d": ("#!/bin/sh\n# Services are not started while packages install in an image.\nexit 101\n",
                             0o755),
    "etc/dpkg/dpkg.cfg.d/docker-apt-speedup": ("# No fsync per file: an image layer is written once.\n"
                                               "force-unsafe-io\n", 0o644),
}
_EMPTIED = ("etc/hostname", "etc/resolv.conf")


def cache_name(suite: str, include: Sequence[str] = ()) -> str:
    """The cache file name of a root filesystem (``debian-bookworm-minbase-v1.tar``,
    ``debian-bookworm-minbase+build-essential-v1.tar``); long package lists are hashed."""
    packages = ",".join(sorted(set(include)))
    if len(packages) > 40:
        packages = "h" + hashlib.sha256(packages.encode()).hexdigest()[:16]
    extra = f"+{packages}" if packages else ""
    return f"debian-{suite}-minbase{extra}-v{FORMAT}.tar"


def debootstrap_argv(suite: str, target: Path, source: aptsources.AptSource,
                     include: Sequence[str] = ()) -> list[str]:
    """The debootstrap command line (debootstrap(8)): minbase, main only, the keyring the
    host's entry names when it exists."""
    argv = ["debootstrap", "--variant=minbase", "--components=main"]
    if include:
        argv.append("--include=" + ",".join(sorted(set(include))))
    if source.signed_by and os.path.isfile(source.signed_by):
        argv.append("--keyring=" + source.signed_by)
    return [*argv, suite, str(target), source.uri]


def _failure(log: str, code: int, source: aptsources.AptSource) -> rootfs.MkImageError:
    """A clear error from debootstrap's output: its E:/W: lines, and what to check."""
    lines = [line for line in log.splitlines() if line.startswith(("E:", "W:"))] or log.splitlines()[-5:]
    hint = ""
    if any(word in log for word in ("Failed getting release file", "Couldn't download", "Could not resolve",
                                    "Connection refused", "Failed to connect", "Temporary failure")):
        hint = (f"\nthe mirror {source.uri} (from {source.origin or 'the host apt sources'}) is unreachable: "
                "check the network and the host's apt sources")
    return rootfs.MkImageError(f"debootstrap failed (exit status {code}):\n  " + "\n  ".join(lines[-8:]) + hint)


def run_debootstrap(suite: str, target: Path, source: aptsources.AptSource, include: Sequence[str] = (),
                    say: Callable[[str], None] = print) -> None:
    """Run debootstrap into ``target``. Raises MkImageError (debootstrap missing, mirror
    unreachable, a package that does not exist...)."""
    if shutil.which("debootstrap") is None:
        raise rootfs.MkImageError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise rootfs.MkImageError("debootstrap must run as root")
    argv = debootstrap_argv(suite, target, source, include)
    say(f"mkdebian: {' '.join(argv)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          errors="replace", check=False)
    if done.returncode != 0:
        log = done.stdout
        with_details = target / "debootstrap" / "debootstrap.log"
        if with_details.exists():
            log += "\n" + with_details.read_text(errors="replace")[-4000:]
        raise _failure(log, done.returncode, source)


def finish_rootfs(target: Path) -> None:
    """Trim a fresh debootstrap target into an image root filesystem (see the module doc)."""
    for rel in _EMPTIED:
        path = target / rel
        if path.exists() or path.is_symlink():
            path.unlink()
            path.write_text("")
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*",
                    "var/log/bootstrap.log"):
        for path in target.glob(pattern):
            if path.is_file() and path.name != "lock":
                path.unlink()
    for rel, (text, mode) in _DOCKER_FILES.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)


def debian_tar(suite: str = "bookworm", include: Sequence[str] = (), cache: rootfs.Cache | None = None,
               source: aptsources.AptSource | None = None, say: Callable[[str], None] = print) -> Path:
    """The cached root filesystem tar of ``suite`` (minbase, plus ``include`` packages and
    their dependencies), made first when missing. ``source`` defaults to the host's mirror.

    Raises MkImageError (no mirror in the host's apt sources, debootstrap missing or failing).
    """
    cache = cache or rootfs.Cache()
    name = cache_name(suite, include)
    out = cache.path(name)
    if out.exists():
        return out
    with cache.lock(name):
        if out.exists():
            return out
        try:
            source = source or aptsources.host_mirror(suite)
        except aptsources.NoMirror as err:
            raise rootfs.MkImageError(str(err)) from None
        with cache.workdir(name) as work:
            target = work / "rootfs"
            run_debootstrap(suite, target, source, include, say)
            finish_rootfs(target)
            say(f"mkdebian: writing {out}")
            rootfs.write_rootfs_tar(target, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out", nargs="?", help="copy the tar here too")
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--include", default="", help="comma-separated extra packages (e.g. build-essential)")
    parser.add_argument("--cache-dir", default=None, help=f"default $BERTH_MKIMAGE_CACHE or {rootfs.DEFAULT_CACHE}")
    args = parser.parse_args(argv)
    include = [p for p in args.include.split(",") if p]
    try:
        tar = debian_tar(args.suite, include, rootfs.Cache(args.cache_dir))
        if args.out:
            rootfs.copy_atomic(tar, Path(args.out))
    except (rootfs.MkImageError, OSError) as err:
        print(f"mkdebian: {err}", file=sys.stderr)
        return 1
    print(args.out or tar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
