"""Root filesystem tars and the cache they live in.

:func:`write_rootfs_tar` turns a directory (a debootstrap target) into the tar ``berth import``
takes: entries sorted, owners numeric (names dropped, as image layers carry them), hard links
kept as links, file capabilities and other ``security.*``/``trusted.*``/``user.*`` xattrs as
``SCHILY.xattr.*`` PAX records (how layer tars carry them), sockets skipped, and the contents of
the directories a container runtime mounts over (``dev``, ``proc``, ``sys``) left out.

:class:`Cache` is a directory (``/var/cache/berth-mkimage`` unless ``BERTH_MKIMAGE_CACHE``
says otherwise) of finished artefacts, each published by rename so a reader never sees half a
file, and guarded by a per-key ``flock`` so two runs (the demo and the tests) never make the
same artefact at once.

Stdlib only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

DEFAULT_CACHE = "/var/cache/berth-mkimage"
MOUNTED_OVER = ("dev", "proc", "sys")
_XATTR_PREFIXES = ("security.", "trusted.", "user.")


class MkImageError(Exception):
    """A base image cannot be made; the message says why and what to do."""


def sha256_file(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes (a layer's diff ID when the file is a layer tar)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def iter_tree(root: Path) -> Iterator[str]:
    """Relative paths of everything under ``root``, depth first in name order (a directory
    before its contents), symlinks not followed; the contents of :data:`MOUNTED_OVER` skipped."""

    def visit(rel: str) -> Iterator[str]:
        path = root / rel if rel else root
        for name in sorted(os.listdir(path)):
            child = f"{rel}/{name}" if rel else name
            yield child
            if rel == "" and name in MOUNTED_OVER:
                continue
            if stat.S_ISDIR(os.lstat(root / child).st_mode):
                yield from visit(child)

    return visit("")


def _xattrs(path: Path) -> dict[str, str]:
    """The xattrs worth keeping in an image, as PAX records (values as latin-1 text, which
    ``tarfile`` writes back byte for byte)."""
    records = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    for name in names:
        if name.startswith(_XATTR_PREFIXES) and name != "security.selinux":
            with contextlib.suppress(OSError):
                value = os.getxattr(path, name, follow_symlinks=False)
                records["SCHILY.xattr." + name] = value.decode("latin-1")
    return records


def write_rootfs_tar(root: Path, out: Path) -> None:
    """Write ``root`` as a root filesystem tar to ``out`` atomically (temp file, fsync, rename).

    Raises OSError for unreadable files (the temp file is removed).
    """
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT,
                              encoding="utf-8", errors="surrogateescape") as tar:
                for rel in iter_tree(root):
                    path = root / rel
                    mode = os.lstat(path).st_mode
                    if stat.S_ISSOCK(mode):
                        continue
                    info = tar.gettarinfo(str(path), arcname=rel)
                    info.uname = info.gname = ""
                    info.pax_headers = {**info.pax_headers, **_xattrs(path)}
                    if info.isreg():
                        with open(path, "rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def copy_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temp file beside it (fsync, rename): a reader
    sees the old file or the whole new one."""
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copymode(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Cache:
    """The artefact cache: ``path(name)`` is where a finished artefact lives; ``lock(name)``
    holds it exclusively while it is being made; ``workdir(name)`` is scratch space on the
    same filesystem (so a finished artefact is published by rename)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root or os.environ.get("BERTH_MKIMAGE_CACHE") or DEFAULT_CACHE)

    def path(self, name: str) -> Path:
        """Where artefact ``name`` lives (it may not exist yet)."""
        return self.root / name

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the lock of ``name`` (blocking until another maker is done)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{name}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def workdir(self, name: str) -> Iterator[Path]:
        """A fresh scratch directory, removed afterwards (mounts below it are undone first)."""
        path = self.root / f".work-{name}-{os.getpid()}"
        remove_tree(path)
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            remove_tree(path)


def remove_tree(path: Path) -> None:
    """Unmount whatever is mounted below ``path`` (a debootstrap that died leaves ``proc`` and
    ``sys`` mounted), then delete it."""
    prefix = str(path) + "/"
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
        for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)
