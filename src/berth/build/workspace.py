"""A build's scratch space under the data root, and layers made from a mounted snapshot.

Layout: ``<data-root>/build/<build id>/`` holds the unpacked context (``context/``, or the
clone of a remote one), mount points (``mnt/<n>``) and layer tars being written (``tmp/``).
COPY, ADD and WORKDIR change the filesystem without a container: the builder prepares an
overlay snapshot (key ``build-<build id>-<n>``) on the parent image's top layer, mounts it,
lets the step write into the mount, and turns the upper directory into a layer tar with
:func:`berth.snapshots.layer.write_layer` — the same diff a container would have produced.
Everything is removed when the build ends; :func:`cleanup_stale` repairs what a crash left.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from berth.images.model import Image
from berth.snapshots import fsutil
from berth.snapshots.layer import write_layer

SNAPSHOT_PREFIX = "build-"


def _snapshot_key(image: Image | None) -> str | None:
    top = image.top_layer if image is not None else None
    return top.split(":", 1)[1] if top else None


def _unmount_under(root: Path) -> None:
    prefix = str(root) + "/"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            points = [line.split(" ")[4].replace("\\040", " ") for line in f]
    except OSError:
        return
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        fsutil.unmount(Path(point))


def cleanup_stale(build_root: Path, snapshotter: Any) -> None:
    """Daemon start: unmount and delete every build directory and ``build-*`` snapshot."""
    build_root.mkdir(parents=True, exist_ok=True)
    _unmount_under(build_root)
    for entry in build_root.iterdir():
        shutil.rmtree(entry, ignore_errors=True)
    for key in snapshotter.keys():
        if key.startswith(SNAPSHOT_PREFIX):
            try:
                snapshotter.remove(key)
            except Exception:  # noqa: BLE001 - best effort repair, retried at the next start
                pass


class Workspace:
    """The scratch directory of one build (``root``) and its snapshots and mounts."""

    def __init__(self, build_root: Path, build_id: str, snapshotter: Any) -> None:
        self.build_id = build_id
        self.root = build_root / build_id
        self.snapshotter = snapshotter
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._image_mounts: dict[str, Path] = {}
        for sub in ("mnt", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _next(self) -> int:
        with self._lock:
            return next(self._counter)

    def temp_dir(self, name: str) -> Path:
        """A fresh directory under ``tmp/`` (downloads, heredoc files)."""
        path = self.root / "tmp" / f"{name}-{self._next()}"
        path.mkdir(parents=True)
        return path

    def mount_image(self, image: Image) -> Path:
        """A read-only view of ``image``'s root filesystem (mounted once per build). Blocking."""
        with self._lock:
            if image.id in self._image_mounts:
                return self._image_mounts[image.id]
            target = self.root / "mnt" / f"image-{len(self._image_mounts)}"
            target.mkdir(parents=True)
            key = _snapshot_key(image)
            if key is not None:
                self.snapshotter.mount(key, target, readonly=True)
            self._image_mounts[image.id] = target
            return target

    def make_layer(self, parent: Image | None, change: Callable[[Path], None]) -> Path | None:
        """Run ``change(rootfs)`` on a writable view of ``parent`` and return the resulting
        layer tar's path, or None when nothing changed. Blocking."""
        number = self._next()
        key = f"{SNAPSHOT_PREFIX}{self.build_id}-{number}"
        target = self.root / "mnt" / f"step-{number}"
        target.mkdir(parents=True)
        self.snapshotter.prepare(key, _snapshot_key(parent))
        try:
            self.snapshotter.mount(key, target)
            try:
                change(target)
            finally:
                self.snapshotter.unmount(target)
            return self.layer_from_upper(self.snapshotter.upper(key), self.snapshotter.lowers(key))
        finally:
            self.snapshotter.remove(key)
            target.rmdir()

    def layer_from_upper(self, upper: Path, lowers: list[Path]) -> Path | None:
        """Write the diff in ``upper`` as a layer tar under ``tmp/``; None for an empty diff."""
        with os.scandir(upper) as entries:
            empty = next(entries, None) is None
        if empty and not fsutil.is_opaque(upper):
            return None
        path = self.root / "tmp" / f"layer-{self._next()}.tar"
        with open(path, "wb") as out:
            write_layer(upper, out, lower=lowers)
        return path

    def close(self) -> None:
        """Unmount and delete everything of this build."""
        _unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
