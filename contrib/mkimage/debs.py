#!/usr/bin/env python3
"""Fetch .deb files on the host for installing packages in an image that has no network.

Usage: ``debs.py --base BASE.tar DEST_DIR PACKAGE...``

Containers here have no internet, so packages come in through the build context: this script
works out which packages ``apt-get install PACKAGE...`` would add to the image whose root
filesystem tar is ``BASE.tar`` (the host's apt simulates the install against the image's own
dpkg status: ``-o Dir::State::status=...``, recommends off, as ``apt-get install
--no-install-recommends``), downloads exactly those versions with ``apt-get download`` from the
host's own mirror, and puts them in ``DEST_DIR``. In the Dockerfile: ``COPY debs /debs`` then
``RUN apt-get install -y /debs/*.deb`` (or ``dpkg -R -i /debs``).

Downloads are cached under ``<cache>/debs/`` (default ``/var/cache/berth-mkimage``) by file
name (package, version, architecture), so a second run fetches nothing. Stdlib only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    from . import rootfs
except ImportError:  # run as a script: python3 contrib/mkimage/debs.py
    import rootfs  # type: ignore[no-redef]

STATUS = "var/lib/dpkg/status"
# "Inst perl-modules-5.36 (5.36.0-7+deb12u2 Debian:12.11/stable [all])", or with "[old version]"
# after the name for an upgrade (apt-get(8), --simulate).
_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[([^\]]+)\]\)")


@dataclass(frozen=True)
class Package:
    """A binary package to fetch: ``name``, exact ``version``, ``arch`` (``amd64``, ``all``)."""

    name: str
    version: str
    arch: str

    @property
    def filename(self) -> str:
        """The name ``apt-get download`` gives the file (an epoch's ``:`` written ``%3a``)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


def parse_simulation(text: str) -> list[Package]:
    """The packages an ``apt-get -s install`` output would install or upgrade, in its order."""
    found = []
    for line in text.splitlines():
        match = _INST.match(line)
        if match:  # a foreign architecture shows as "name:arch"; the [arch] field says it too
            found.append(Package(match.group(1).partition(":")[0], match.group(2), match.group(3)))
    return found


def base_status(base_tar: Path, out: Path) -> Path:
    """Write the image's dpkg status file (``var/lib/dpkg/status`` in ``base_tar``) to ``out``.

    Raises MkImageError when the tar holds none (not a Debian root filesystem).
    """
    with tarfile.open(base_tar) as tar:
        for name in (STATUS, "./" + STATUS):
            try:
                member = tar.getmember(name)
            except KeyError:
                continue
            source = tar.extractfile(member)
            if source is not None:
                out.write_bytes(source.read())
                return out
    raise rootfs.MkImageError(f"{base_tar} has no {STATUS}: not a Debian root filesystem")


def _apt(argv: list[str], cwd: Path | None = None) -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, check=False, errors="replace")
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("E:")] or done.stderr.splitlines()[-3:]
        hint = ""
        if "Unable to locate package" in done.stderr:
            hint = "\n(is the host's package list current? run apt-get update on the host)"
        elif any(w in done.stderr for w in ("Failed to fetch", "Could not resolve", "Could not connect")):
            hint = "\n(the host's apt mirror is unreachable: check the network and /etc/apt/sources.list*)"
        raise rootfs.MkImageError(f"{' '.join(argv[:3])} failed:\n  " + "\n  ".join(errors) + hint)
    return done.stdout


def resolve(packages: Sequence[str], status: Path) -> list[Package]:
    """What installing ``packages`` adds to a system whose dpkg status is ``status`` (the host's
    apt lists decide versions). Raises MkImageError (unknown package, broken dependencies)."""
    if shutil.which("apt-get") is None:
        raise rootfs.MkImageError("apt-get is not available on this host")
    out = _apt(["apt-get", "-s", "-q", "-o", f"Dir::State::status={status}", "-o", "APT::Install-Recommends=false",
                "-o", "Debug::NoLocking=true", "install", *packages])
    return parse_simulation(out)


def download(wanted: Sequence[Package], cache: rootfs.Cache) -> list[Path]:
    """The cached files of ``wanted``, fetching those not cached yet with ``apt-get download``
    (into a scratch directory, then renamed into place). Raises MkImageError."""
    store = cache.path("debs")
    store.mkdir(parents=True, exist_ok=True)
    with cache.lock("debs"):
        missing = [p for p in wanted if not (store / p.filename).exists()]
        if missing:
            with cache.workdir("debs") as work:
                _apt(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
                      *[f"{p.name}:{p.arch}={p.version}" if p.arch != "all" else f"{p.name}={p.version}"
                        for p in missing]], cwd=work)
                for p in missing:
                    fetched = work / p.filename
                    if not fetched.exists():
                        raise rootfs.MkImageError(f"apt-get download did not produce {p.filename}")
                    os.replace(fetched, store / p.filename)
    return [store / p.filename for p in wanted]


def fetch_debs(packages: Sequence[str], dest: Path, base_tar: Path, cache: rootfs.Cache | None = None) -> list[Path]:
    """Put in ``dest`` (created if needed) the .deb files that installing ``packages`` in the
    image ``base_tar`` needs; returns their paths in ``dest``. Files already in ``dest`` are
    replaced. Raises MkImageError."""
    cache = cache or rootfs.Cache()
    dest.mkdir(parents=True, exist_ok=True)
    with cache.workdir("status") as work:
        wanted = resolve(packages, base_status(base_tar, work / "status"))
    placed = []
    for source in download(wanted, cache):
        rootfs.copy_atomic(source, dest / source.name)
        placed.append(dest / source.name)
    return placed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", required=True, help="root filesystem tar of the image (mkdebian.py's output)")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("dest")
    parser.add_argument("packages", nargs="+")
    args = parser.parse_args(argv)
    try:
        for path in fetch_debs(args.packages, Path(args.dest), Path(args.base), rootfs.Cache(args.cache_dir)):
            print(path)
    except (rootfs.MkImageError, OSError) as err:
        print(f"debs: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
