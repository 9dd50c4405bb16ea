#!/usr/bin/env python3
"""Make berth's base images from Debian packages and import them (idempotent, cached).

Usage: ``baseimages.py [-H unix:///run/berth/berth.sock] [--berth PATH] [IMAGE...]``

IMAGE is one of ``busybox`` (``busybox:latest`` from the busybox-static package, CMD ``sh``),
``debian`` (``debian:bookworm``, debootstrap minbase, CMD ``bash``) and ``debian-build``
(``debian:bookworm-build``: the same plus build-essential, for the C examples); all three when
none is named. Root filesystem tars are cached (see ``rootfs.Cache``); an image is imported only
when the tag does not already hold exactly that tar as its layer (its diff ID is the tar's
sha256) with that CMD and Env, so a second run takes seconds. The daemon is ``-H``, else
``$BERTH_HOST``, else the CLI's default; the CLI is ``--berth``, else the ``berth`` beside this Python, else the checkout's
``.venv/bin/berth``, else the one on PATH.

Stdlib only: the test-suite and the demo (``make demo``) both use it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    from . import mkbusybox, mkdebian, rootfs
except ImportError:  # run as a script: python3 contrib/mkimage/baseimages.py
    import mkbusybox  # type: ignore[no-redef]
    import mkdebian  # type: ignore[no-redef]
    import rootfs  # type: ignore[no-redef]

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class BaseImage:
    """A base image: its ``tag``, its config's ``cmd`` and ``env`` (set with ``berth import
    -c``), and ``make``, which returns the path of its cached root filesystem tar."""

    tag: str
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    make: Callable[[rootfs.Cache, Callable[[str], None]], Path]

    @property
    def changes(self) -> list[str]:
        """The ``berth import -c`` values."""
        return [*(f"ENV {item}" for item in self.env), "CMD " + json.dumps(list(self.cmd))]


def busybox_tar(cache: rootfs.Cache, say: Callable[[str], None] = print, busybox: str = "/usr/bin/busybox") -> Path:
    """The cached busybox root filesystem tar (keyed by the busybox binary's digest).
    Raises MkImageError when busybox-static is not installed."""
    if not os.path.exists(busybox):
        raise rootfs.MkImageError(f"{busybox} not found: apt-get install busybox-static")
    with open(busybox, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    name = f"busybox-{digest}.tar"
    out = cache.path(name)
    if not out.exists():
        with cache.lock(name):
            if not out.exists():
                cache.root.mkdir(parents=True, exist_ok=True)
                say(f"baseimages: writing {out}")
                mkbusybox.build_tar(str(out), busybox)
    return out


IMAGES: dict[str, BaseImage] = {
    "busybox": BaseImage("busybox:latest", ("sh",), (), busybox_tar),
    # Debian's own images set PATH (docker's default) and run bash.
    "debian": BaseImage("debian:bookworm", ("bash",), (DEFAULT_PATH,),
                        lambda cache, say: mkdebian.debian_tar("bookworm", (), cache, say=say)),
    "debian-build": BaseImage("debian:bookworm-build", ("bash",), (DEFAULT_PATH,),
                              lambda cache, say: mkdebian.debian_tar("bookworm", mkdebian.BUILD_PACKAGES, cache,
                                                                     say=say)),
}


def default_berth() -> str:
    """The berth CLI: the one beside this Python (a venv), else the checkout's ``.venv``, else
    ``berth`` on PATH. Raises MkImageError when there is none."""
    for candidate in (Path(sys.executable).parent / "berth", Path(__file__).resolve().parents[2] / ".venv/bin/berth"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("berth")
    if found is None:
        raise rootfs.MkImageError("the berth CLI was not found (run scripts/setup.sh, or pass --berth)")
    return found


def tar_digest(tar: Path) -> str:
    """``sha256:<hex>`` of ``tar``, remembered in ``<tar>.sha256`` beside it (written atomically)."""
    sidecar = tar.with_name(tar.name + ".sha256")
    try:
        if sidecar.stat().st_mtime >= tar.stat().st_mtime:
            return sidecar.read_text().strip()
    except OSError:
        pass
    digest = rootfs.sha256_file(tar)
    tmp = sidecar.with_name(f".{sidecar.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(digest + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, sidecar)
    return digest


class Berth:
    """The berth CLI against one daemon (``host`` None: the CLI's own default)."""

    def __init__(self, cli: str | None = None, host: str | None = None) -> None:
        self.argv = [cli or default_berth(), *(["-H", host] if host else [])]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.argv, *args], capture_output=True, text=True, check=False)

    def inspect(self, tag: str) -> dict[str, Any] | None:
        """``image inspect`` of ``tag``, or None when it is not there."""
        done = self.run("image", "inspect", tag)
        return json.loads(done.stdout)[0] if done.returncode == 0 else None

    def import_tar(self, tar: Path, tag: str, changes: Sequence[str]) -> str:
        """``berth import -c ... TAR TAG``; the new image ID. Raises MkImageError."""
        args = [item for change in changes for item in ("-c", change)]
        done = self.run("import", *args, str(tar), tag)
        if done.returncode != 0:
            raise rootfs.MkImageError(f"berth import {tag} failed: {done.stderr.strip()}")
        return done.stdout.strip()


def ensure_image(image: BaseImage, berth: Berth, cache: rootfs.Cache, say: Callable[[str], None] = print) -> bool:
    """Make and import ``image`` unless the tag already holds that very tar; True if imported.
    Raises MkImageError."""
    tar = image.make(cache, say)
    found = berth.inspect(image.tag)
    if found and (found["RootFS"]["Layers"], found["Config"]["Cmd"], found["Config"]["Env"] or []) == (
            [tar_digest(tar)], list(image.cmd), list(image.env)):
        say(f"baseimages: {image.tag} is up to date")
        return False
    say(f"baseimages: importing {image.tag}")
    berth.import_tar(tar, image.tag, image.changes)
    return True


def ensure_images(names: Sequence[str] = tuple(IMAGES), host: str | None = None, cli: str | None = None,
                  cache: rootfs.Cache | None = None, say: Callable[[str], None] = print) -> list[str]:
    """Make sure the base images ``names`` (keys of :data:`IMAGES`) are in the daemon at
    ``host``; returns their tags. Raises MkImageError, KeyError for an unknown name."""
    cache = cache or rootfs.Cache()
    berth = Berth(cli, host)
    chosen = [IMAGES[name] for name in names]
    for image in chosen:
        ensure_image(image, berth, cache, say)
    return [image.tag for image in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help=f"{' | '.join(IMAGES)} (default: all of them)")
    parser.add_argument("-H", "--host", default=None, help="daemon socket (default $BERTH_HOST)")
    parser.add_argument("--berth", default=None, help="berth CLI to use")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.images) - set(IMAGES))
    if unknown:
        parser.error(f"unknown image {', '.join(unknown)}: choose from {', '.join(IMAGES)}")
    try:
        tags = ensure_images(args.images or list(IMAGES), args.host, args.berth, rootfs.Cache(args.cache_dir))
    except rootfs.MkImageError as err:
        print(f"baseimages: {err}", file=sys.stderr)
        return 1
    print("\n".join(tags))
    return 0


if __name__ == "__main__":
    sys.exit(main())
