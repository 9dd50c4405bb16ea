"""The overlayfs snapshotter: committed layers, active (writable) snapshots, their mounts.

Layout under ``root`` (``<data-root>/snapshots``)::

    <key>/fs        layer content (committed) or upper dir (active)
    <key>/work      overlay workdir (active snapshots only)
    <key>/parent    key of the parent snapshot (absent for a base layer or a scratch snapshot)
    <key>/link      the snapshot's short name
    l/<short>       symlink to ../<key>/fs, used in lowerdir= so long chains fit in one page
    .tmp-*          snapshots being built or removed (gone after :meth:`Snapshotter.cleanup`)

Keys are opaque strings chosen by the caller (chain ID hex, container ID, build step ID). The
snapshotter knows nothing of images. Overlay options follow the kernel's overlayfs.rst; the mount
data of mount(2) must fit in one page, hence the ``l/`` names as docker's overlay2 driver does.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

from berth.errors import Conflict, InvalidParameter, NotFound, SystemError_
from berth.snapshots import fsutil
from berth.snapshots.layer import apply_layer

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
_LINKS = "l"
_TMP = ".tmp-"
_EMPTY = ".empty"
_PAGE = 4096
# overlayfs refuses deeper stacks (OVL_MAX_STACK).
_MAX_DEPTH = 500
# Features that make an upper dir depend on its lowers; turned off when the module enables them.
_SELF_CONTAINED = ("redirect_dir", "metacopy", "index")


class Snapshotter:
    """Snapshots of filesystem trees stacked with overlayfs.

    Committed snapshots come from layer tars (:meth:`unpack`) and never change; active ones
    (:meth:`prepare`) have an upper dir the container writes to. Thread-safe within one process.
    """

    def __init__(self, root: Path) -> None:
        """Use ``root`` (created if missing) to hold the snapshots."""
        self.root = Path(root)
        self._links = self.root / _LINKS
        self._links.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _dir(self, key: str) -> Path:
        if not _KEY.fullmatch(key) or key == _LINKS:
            raise InvalidParameter(f"invalid snapshot key {key!r}")
        return self.root / key

    def exists(self, key: str) -> bool:
        """True when snapshot ``key`` exists (committed or active)."""
        return (self._dir(key) / "fs").is_dir()

    def _require(self, key: str) -> Path:
        directory = self._dir(key)
        if not (directory / "fs").is_dir():
            raise NotFound(f"snapshot {key} not found")
        return directory

    def is_active(self, key: str) -> bool:
        """True for a snapshot made by :meth:`prepare` (it has a work dir)."""
        return (self._require(key) / "work").is_dir()

    def unpack(self, key: str, parent: str | None, stream: BinaryIO) -> int:
        """Create the committed snapshot ``key`` on ``parent`` from an uncompressed layer tar.

        Atomic: the layer is unpacked into a temporary directory under ``root`` and renamed into
        place, so a failure or crash leaves no snapshot ``key``. Idempotent: when ``key`` exists
        the stream is not read and its current size is returned.

        Returns:
            the unpacked size in bytes (what docker sums into an image's Size).

        Raises:
            NotFound: ``parent`` does not exist.
            InvalidParameter: bad key, active parent, unsafe/truncated/corrupt tar
                (see :func:`layer.apply_layer`).
        """
        if self.exists(key):
            return self.usage(key)
        self._check_parent(parent)
        return self._create(key, parent, active=False, stream=stream)

    def prepare(self, key: str, parent: str | None) -> None:
        """Create the active snapshot ``key``: an empty upper dir and a work dir over ``parent``.

        ``parent`` None gives a scratch snapshot (an empty tree to start from).

        Raises:
            Conflict: ``key`` exists.
            NotFound: ``parent`` does not exist.
            InvalidParameter: bad key, or ``parent`` is itself active.
        """
        if self.exists(key):
            raise Conflict(f"snapshot {key} already exists")
        self._check_parent(parent)
        self._create(key, parent, active=True, stream=None)

    def _check_parent(self, parent: str | None) -> None:
        if parent is not None and self.is_active(parent):
            raise InvalidParameter(f"snapshot {parent} is active: only committed snapshots can be parents")

    def _create(self, key: str, parent: str | None, *, active: bool, stream: BinaryIO | None) -> int:
        directory = self._dir(key)
        tmp = Path(tempfile.mkdtemp(prefix=_TMP, dir=self.root))
        try:
            (tmp / "fs").mkdir(mode=0o755)
            if active:
                (tmp / "work").mkdir(mode=0o700)
            size = apply_layer(tmp / "fs", stream) if stream is not None else 0
            if parent is not None:
                (tmp / "parent").write_text(parent)
            fsutil.syncfs(tmp)
            with self._lock:
                if directory.exists():
                    if active:
                        raise Conflict(f"snapshot {key} already exists")
                    return self.usage(key)
                if parent is not None:
                    self._require(parent)
                self._publish(tmp, directory, key)
            fsutil.fsync_dir(self.root)
            return size
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _publish(self, tmp: Path, directory: Path, key: str) -> None:
        """Give ``tmp`` a short link and rename it to ``directory`` (caller holds the lock)."""
        while True:
            short = base64.b32encode(secrets.token_bytes(10)).decode().rstrip("=")[:12]
            try:
                os.symlink(f"../{key}/fs", self._links / short)
                break
            except FileExistsError:
                continue
        try:
            _write_synced(tmp / "link", short)
            os.rename(tmp, directory)
        except BaseException:
            (self._links / short).unlink(missing_ok=True)
            raise
        fsutil.fsync_dir(self._links)

    def parent(self, key: str) -> str | None:
        """Key of the parent of ``key``, None for a base layer or scratch snapshot."""
        try:
            return (self._require(key) / "parent").read_text()
        except FileNotFoundError:
            return None

    def keys(self) -> list[str]:
        """Keys of all snapshots, sorted."""
        return sorted(
            entry.name
            for entry in os.scandir(self.root)
            if _KEY.fullmatch(entry.name)
            and entry.name != _LINKS
            and os.path.isdir(os.path.join(entry.path, "fs"))
        )

    def children(self, key: str) -> list[str]:
        """Keys of the snapshots whose parent is ``key``, sorted."""
        self._dir(key)
        return [k for k in self.keys() if self._parent_or_none(k) == key]

    def _parent_or_none(self, key: str) -> str | None:
        try:
            return (self.root / key / "parent").read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _link(self, key: str) -> Path:
        return self._links / (self._require(key) / "link").read_text()

    def lowers(self, key: str) -> list[Path]:
        """The lowerdirs ``key`` is mounted on: its ancestors' ``l/<short>`` paths, top first.

        ``key``'s own directory is not included (for a committed snapshot it is the top of its
        read-only view; see :meth:`mount`).

        Raises:
            NotFound: ``key`` or an ancestor is missing.
            SystemError_: the chain is deeper than overlayfs allows.
        """
        chain: list[Path] = []
        current = self.parent(key)
        while current is not None:
            if len(chain) >= _MAX_DEPTH:
                raise SystemError_(f"snapshot {key}: more than {_MAX_DEPTH} layers")
            chain.append(self._link(current))
            current = self.parent(current)
        return chain

    def upper(self, key: str) -> Path:
        """The ``fs`` directory of ``key``: upper dir of an active snapshot, content of a committed one."""
        return self._require(key) / "fs"

    def usage(self, key: str) -> int:
        """Bytes in ``key``'s own directory (:func:`fsutil.tree_size`): layer size or SizeRw."""
        return fsutil.tree_size(self.upper(key))

    def mount(self, key: str, target: Path, readonly: bool = False) -> None:
        """Mount the view of ``key`` on ``target`` (created if missing).

        An active snapshot is an overlay of its upper dir on its ancestors (on an empty lower
        for a scratch snapshot); ``readonly`` mounts it MS_RDONLY. A committed snapshot can
        only be mounted read-only: an overlay of itself and its ancestors, or a read-only bind
        mount of its own directory when it has no parent.

        Raises:
            NotFound: no snapshot ``key``.
            Conflict: ``readonly`` is False for a committed snapshot.
            SystemError_: the kernel refused the mount.
        """
        target = Path(target)
        lowers = self.lowers(key)
        active = self.is_active(key)
        if not active and not readonly:
            raise Conflict(f"snapshot {key} is committed: mount it read-only or prepare a child")
        target.mkdir(parents=True, exist_ok=True)
        if active:
            empty = self.root / _EMPTY
            empty.mkdir(mode=0o755, exist_ok=True)
            own = self._dir(key)
            options = [
                ("lowerdir", lowers or [empty]),
                ("upperdir", [own / "fs"]),
                ("workdir", [own / "work"]),
            ]
            self._mount_overlay(target, options, fsutil.MS_RDONLY if readonly else 0)
        elif lowers:
            self._mount_overlay(target, [("lowerdir", [self._link(key), *lowers])], fsutil.MS_RDONLY)
        else:
            self._bind_readonly(self.upper(key), target)

    def _mount_overlay(self, target: Path, options: list[tuple[str, list[Path]]], flags: int) -> None:
        extra = "".join(f",{name}=off" for name in _SELF_CONTAINED if _module_enables(name))
        absolute = _overlay_data(options, None) + extra
        try:
            if len(absolute) < _PAGE:
                fsutil.mount("overlay", str(target), "overlay", flags, absolute)
                return
            relative = _overlay_data(options, self.root) + extra
            if len(relative) >= _PAGE:
                raise SystemError_(f"mounting {target}: too many layers for one overlay mount")
            self._mount_from_root(target, flags, relative)
        except OSError as e:
            raise SystemError_(f"mounting overlay on {target}: {e.strerror}") from None

    def _mount_from_root(self, target: Path, flags: int, data: str) -> None:
        # Relative lowerdirs resolve against the mounting process' cwd; a chdir here would race
        # with the daemon's other threads, so a short-lived child mounts from root instead.
        argv = [
            sys.executable,
            "-I",
            "-m",
            "berth.snapshots.fsutil",
            "overlay",
            str(target.absolute()),
            "overlay",
        ]
        proc = subprocess.run([*argv, str(flags), data], cwd=self.root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemError_(f"mounting overlay on {target}: {proc.stderr.strip() or proc.returncode}")

    @staticmethod
    def _bind_readonly(source: Path, target: Path) -> None:
        try:
            fsutil.mount(str(source), str(target), None, fsutil.MS_BIND, None)
            flags = fsutil.MS_BIND | fsutil.MS_REMOUNT | fsutil.MS_RDONLY
            fsutil.mount("none", str(target), None, flags, None)
        except OSError as e:
            fsutil.unmount(target)
            raise SystemError_(f"mounting {source} on {target}: {e.strerror}") from None

    @staticmethod
    def unmount(target: Path) -> None:
        """Unmount ``target`` (lazily when busy); nothing to do when it is not mounted."""
        fsutil.unmount(Path(target))

    def remove(self, key: str) -> None:
        """Remove snapshot ``key`` and its short link; nothing to do when it does not exist.

        Raises:
            Conflict: another snapshot has ``key`` as parent, or ``key`` is in a mounted overlay.
        """
        directory = self._dir(key)
        with self._lock:
            if not directory.exists():
                return
            kids = self.children(key)
            if kids:
                raise Conflict(f"snapshot {key} is the parent of snapshot {kids[0]}")
            if self._mounted(key):
                raise Conflict(f"snapshot {key} is mounted")
            try:
                short = (directory / "link").read_text()
            except FileNotFoundError:
                short = ""
            trash = Path(tempfile.mkdtemp(prefix=_TMP, dir=self.root)) / key
            os.rename(directory, trash)
            if short:
                (self._links / short).unlink(missing_ok=True)
        shutil.rmtree(trash.parent, ignore_errors=True)

    def _mounted(self, key: str) -> bool:
        """True when a mount of this process' namespace uses ``key``'s directories.

        Overlays name them in their options (absolute, or relative as ``l/<short>`` and
        ``<key>/fs``); a read-only bind of a base layer has ``.../<key>/fs`` as its root.
        """
        own = str(self.root / key)
        fs = os.path.realpath(self.root / key / "fs")
        try:
            short = (self.root / key / "link").read_text()
        except FileNotFoundError:
            short = None
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
                lines = f.read().splitlines()
        except OSError:
            return False
        for line in lines:
            fields = line.split(" ")
            sep = fields.index("-")
            if fields[sep + 1] != "overlay":
                if fields[3].endswith(f"/{key}/fs") and fs.endswith(fields[3]):
                    return True
                continue
            for item in re.split(r"(?<!\\)[,:=]", fields[sep + 3]):
                path = item.replace("\\", "")
                if path.startswith(own + "/") or path in (f"{key}/fs", f"{key}/work"):
                    return True
                if short and path.endswith(f"{_LINKS}/{short}"):
                    return True
        return False

    def cleanup(self) -> None:
        """Repair the state a crash can leave: temporary directories and dangling short links."""
        for entry in os.scandir(self.root):
            if entry.name.startswith(_TMP):
                shutil.rmtree(entry.path, ignore_errors=True)
        for entry in os.scandir(self._links):
            if not os.path.exists(entry.path):
                os.unlink(entry.path)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _escape(path: str) -> str:
    """Escape the separators of overlay's option parser (overlayfs.rst, "Multiple lower layers")."""
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def _overlay_data(options: list[tuple[str, list[Path]]], base: Path | None) -> str:
    """``lowerdir=a:b,upperdir=...``, with paths relative to ``base`` when one is given."""

    def show(path: Path) -> str:
        return _escape(os.path.relpath(path, base) if base is not None else str(path.absolute()))

    return ",".join(f"{name}={':'.join(show(p) for p in paths)}" for name, paths in options)


def _module_enables(feature: str) -> bool:
    """True when the overlay module turns ``feature`` on by default (its parameter reads Y)."""
    try:
        return Path(f"/sys/module/overlay/parameters/{feature}").read_text().strip() in ("Y", "on")
    except OSError:
        return False
