"""The ``local`` volume driver: one directory per volume under ``<data-root>/volumes/<name>/_data``.

Behaviour is docker's local driver (docs: "docker volume create", "Driver-specific options";
``volume/local``): the options ``type``, ``device`` and ``o`` mount a filesystem on ``_data``
(``type=tmpfs,device=tmpfs,o=size=64m``; ``type=none,o=bind,device=/path``; any mount(2) type)
when the first container using the volume starts, and unmount it when the last one stops.
Directories are created and removed with renames, so a crash leaves either the old or the new
state (temporary ``.tmp-*`` and ``.trash-*`` entries are swept by :meth:`LocalDriver.sweep`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from berth.errors import InvalidParameter, SystemError_
from berth.runtime import linux
from berth.runtime.mounts import mount_with_options, parse_options
from berth.snapshots.fsutil import fsync_dir, tree_size, unmount

DRIVER = "local"
OPTION_KEYS = ("type", "device", "o", "size")
#: An option and those it cannot go without (dockerd's local driver ``mandatoryOpts``).
_REQUIRES = {"device": ("type",), "type": ("device",), "o": ("device",)}
# go-units RAMInBytes: a number, an optional binary multiple, an optional "i" and "b"
_SIZE = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")
_ROOT_MODE = 0o701   # docker's mode for volumes/ and volumes/<name>: others may traverse only
_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"


@dataclass
class Volume:
    """A volume's metadata, as stored in the ``volumes`` table.

    ``created_at``: RFC 3339 (seconds, UTC). ``labels``/``options`` (driver options ``type``,
    ``device``, ``o``, ``size``) as the creator gave them: None when it sent none, which inspect
    shows as ``null`` where an empty map shows as ``{}`` (dockerd keeps the difference). ``anonymous``: created for a container without a name (docker 20.10
    gives no label for this; berth keeps the flag and sets :data:`mountspec.ANONYMOUS_LABEL`).
    ``removing``: the removal started but may not have finished (finished on the next start).
    """

    name: str
    created_at: str
    labels: dict[str, str] | None = None
    options: dict[str, str] | None = None
    anonymous: bool = False
    driver: str = DRIVER
    removing: bool = False

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Volume:
        return cls(**{k: v for k, v in record.items() if k in cls.__dataclass_fields__})

    @property
    def needs_mount(self) -> bool:
        """True when the driver mounts something on ``_data`` (a ``type`` or ``device`` given)."""
        options = self.options or {}
        return bool(options.get("type") or options.get("device"))

    def option(self, key: str) -> str:
        """The driver option ``key`` ("" when not given)."""
        return (self.options or {}).get(key, "")


def validate_options(options: dict[str, str]) -> None:
    """Check ``docker volume create -o`` options for the local driver (docs: "docker volume
    create", "Driver-specific options"; dockerd's local driver ``validateOpts``/``setOpts``).

    ``size`` is a quota (go-units size such as ``10g``), which needs filesystem quota support
    berth does not have: any size above zero is refused, as dockerd refuses it without quotas.

    Raises:
        InvalidParameter: ``invalid option: "<key>"`` for an unknown key, ``missing required
            option: "<key>"`` (``type``/``device``/``o`` need ``device``/``type``), ``invalid
            size: '<text>'``, ``quota size requested but no quota support`` (docker's texts,
            without the ``create <name>: `` prefix the service adds).
    """
    for key in options:
        if key not in OPTION_KEYS:
            raise InvalidParameter(f'invalid option: "{key}"')
    for key, needed in _REQUIRES.items():
        missing = [other for other in needed if key in options and other not in options]
        if missing:
            raise InvalidParameter(f'missing required option: "{missing[0]}"')
    if "size" in options and _size_in_bytes(options["size"]) > 0:
        raise InvalidParameter("quota size requested but no quota support")


def _size_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes`` (``512k``, ``1.5g``: binary multiples). Raises InvalidParameter."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise InvalidParameter(f"invalid size: '{text}'")
    power = " kmgtp".index((match.group(2) or " ").lower())
    try:
        number = float(match.group(1))
    except ValueError:  # "1.2.3" matches go-units' pattern and then fails Go's ParseFloat
        raise InvalidParameter(f'strconv.ParseFloat: parsing "{match.group(1)}": invalid syntax') from None
    return int(number * 1024 ** power)


class LocalDriver:
    """Volume directories under ``root`` (``<data-root>/volumes``) and their mounts.

    Mount users are container ids held in memory (:meth:`acquire`/:meth:`release`); after a
    daemon restart the service gives them back with :meth:`adopt`. Thread-safe.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._users: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    # ----- directories -----------------------------------------------------------------
    def volume_dir(self, name: str) -> Path:
        return self.root / name

    def data_path(self, name: str) -> Path:
        """``<root>/<name>/_data``: the volume's ``Mountpoint``."""
        return self.root / name / "_data"

    def sweep(self) -> None:
        """Create ``root`` (mode 0701) and delete what interrupted creations/removals left."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, _ROOT_MODE)
        for entry in os.listdir(self.root):
            if entry.startswith((_TMP_PREFIX, _TRASH_PREFIX)):
                self._remove_tree(self.root / entry)

    def names_on_disk(self) -> list[str]:
        """Names of the volume directories present (temporary entries left out)."""
        if not self.root.is_dir():
            return []
        return sorted(e for e in os.listdir(self.root)
                      if not e.startswith(".") and (self.root / e / "_data").is_dir())

    def create(self, name: str) -> None:
        """Create ``<root>/<name>/_data`` atomically (no-op when it exists). Raises SystemError_."""
        if self.data_path(name).is_dir():
            return
        tmp = self.root / f"{_TMP_PREFIX}{secrets.token_hex(8)}"
        try:
            (tmp / "_data").mkdir(parents=True, mode=0o755)
            os.chmod(tmp, _ROOT_MODE)
            os.chmod(tmp / "_data", 0o755)
            os.rename(tmp, self.volume_dir(name))
            fsync_dir(self.root)
        except OSError as exc:
            self._remove_tree(tmp)
            raise SystemError_(f"error while creating volume root path '{self.volume_dir(name)}': "
                               f"{linux.go_strerror(exc)}") from None

    def remove(self, name: str) -> None:
        """Delete the volume's directory: unmount anything left on ``_data`` first, so a bind
        device is never emptied, then rename it away and delete it. Idempotent."""
        target = self.volume_dir(name)
        if not target.exists():
            return
        unmount(self.data_path(name))
        trash = self.root / f"{_TRASH_PREFIX}{secrets.token_hex(8)}"
        try:
            os.rename(target, trash)
            fsync_dir(self.root)
        except OSError as exc:
            raise SystemError_(f"error removing volume path '{target}': {linux.go_strerror(exc)}") from None
        self._remove_tree(trash)

    @staticmethod
    def _remove_tree(path: Path) -> None:
        # Never descend into a mount: that would delete someone's host files through a bind.
        if not path.exists():
            return
        for dirpath, dirnames, _ in os.walk(path, topdown=False):
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if os.path.ismount(p):
                    unmount(Path(p))
        shutil.rmtree(path, ignore_errors=True)

    def is_empty(self, name: str) -> bool:
        """True when ``_data`` holds no entries."""
        with os.scandir(self.data_path(name)) as it:
            return next(it, None) is None

    def size(self, name: str) -> int:
        """Bytes used by the files of the volume (docker's ``UsageData.Size``)."""
        path = self.data_path(name)
        return tree_size(path) if path.is_dir() else 0

    # ----- mounts ------------------------------------------------------------------------
    def users(self, name: str) -> set[str]:
        """Container ids holding the volume mounted (started and not yet stopped)."""
        with self._lock:
            return set(self._users.get(name, ()))

    def adopt(self, volume: Volume, user: str) -> None:
        """Record ``user`` as holding ``volume`` without mounting (daemon restart: the mount is
        still there)."""
        with self._lock:
            self._users.setdefault(volume.name, set()).add(user)

    def acquire(self, volume: Volume, user: str) -> Path:
        """Mount the volume for ``user`` (mounted on the first user) and return its ``_data``.

        Raises:
            SystemError_: docker's ``failed to mount local volume: mount <device>:<path>[, flags:
                0x..][, data: ..]: <errno text>`` (a container's start prefixes it with
                ``error while mounting volume '<path>': ``, a copy-up at create does not).
        """
        path = self.data_path(volume.name)
        with self._lock:
            users = self._users.setdefault(volume.name, set())
            if volume.needs_mount and not users:
                try:
                    self._mount(volume, path)
                except BaseException:
                    self._users.pop(volume.name, None)
                    raise
            users.add(user)
        return path

    def release(self, volume_name: str, user: str) -> bool:
        """Drop ``user``; unmount ``_data`` when it was the last. Returns True when ``user`` held it."""
        with self._lock:
            users = self._users.get(volume_name)
            if users is None or user not in users:
                return False
            users.discard(user)
            if users:
                return True
            del self._users[volume_name]
        unmount(self.data_path(volume_name))
        return True

    def unmount_unused(self, volume: Volume) -> None:
        """Unmount ``_data`` when nobody holds the volume (repair after a crash)."""
        if volume.needs_mount and not self.users(volume.name) and os.path.ismount(self.data_path(volume.name)):
            unmount(self.data_path(volume.name))

    @staticmethod
    def _mount(volume: Volume, path: Path) -> None:
        device, fstype = volume.option("device"), volume.option("type")
        flags, propagation, data = parse_options([o for o in volume.option("o").split(",") if o])
        try:
            mount_with_options(device, path, fstype or None, flags & ~linux.MS_REMOUNT, propagation, data)
        except OSError as exc:
            text = f"mount {device}:{path}"
            if flags:
                text += f", flags: {flags:#x}"
            if data:
                text += f", data: {data}"
            raise SystemError_(f"failed to mount local volume: {text}: {linux.go_strerror(exc)}") from None


def mount_source_info(path: str) -> tuple[str, set[str]]:
    """The mount point holding ``path`` on the host and its propagation (``shared``,
    ``master`` optional fields of ``/proc/self/mountinfo``, proc(5))."""
    real = os.path.realpath(path)
    best, tags = "/", set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            inside = real == point or real.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                sep = fields.index("-")
                best, tags = point, {t.split(":", 1)[0] for t in fields[6:sep]}
    return best, tags


def check_propagation(source: str, propagation: str) -> None:
    """docker's rule for bind propagation: ``[r]shared`` needs the source's mount to be shared,
    ``[r]slave`` needs it shared or a slave. Raises SystemError_ with docker's text."""
    if propagation not in ("shared", "rshared", "slave", "rslave"):
        return
    point, tags = mount_source_info(source)
    if propagation.endswith("shared") and "shared" not in tags:
        raise SystemError_(f"path {source} is mounted on {point} but it is not a shared mount")
    if propagation.endswith("slave") and not tags & {"shared", "master"}:
        raise SystemError_(f"path {source} is mounted on {point} but it is not a shared or slave mount")


def ensure_bind_source(source: str, create: bool) -> None:
    """A bind's host path at start: created as a directory when missing and ``create`` (``-v``,
    docker's behaviour), else it must exist.

    Raises:
        InvalidParameter: ``invalid mount config for type "bind": bind source path does not
            exist: <path>`` (the source vanished since create).
        SystemError_: the directory could not be created.
    """
    try:
        os.stat(source)
        return
    except FileNotFoundError:
        if not create:
            raise InvalidParameter(f'invalid mount config for type "bind": bind source path does not exist: '
                                   f"{source}") from None
    except OSError:
        return
    try:
        os.makedirs(source, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise SystemError_(f"error while creating mount source path '{source}': "
                           f"mkdir {source}: {linux.go_strerror(exc)}") from None

