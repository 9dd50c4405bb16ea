"""Mount specifications of a container, sans-I/O: ``-v``/``Binds``, ``--mount``/``Mounts``,
``--tmpfs``/``Tmpfs``, ``--volumes-from`` and image ``VOLUME``s parsed into typed values.

Behaviour and error texts are dockerd 20.10's (docs: "Volumes", "Bind mounts", "tmpfs mounts",
"docker run" ``-v``/``--mount``/``--tmpfs``/``--volumes-from``; Engine API v1.41 ``HostConfig``
``Binds``, ``Mounts``, ``Tmpfs``, ``VolumesFrom``). :func:`plan_mounts` applies docker's
precedence: image volumes < volumes-from < ``Binds`` < ``Mounts``, a later mount at the same
destination winning, duplicates among user mounts refused (``Duplicate mount point: /x``).
Checks that need the host (a bind source that exists, a volume name) are the service's.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from berth.errors import InvalidParameter
from berth.goquote import quote, quote_list

VOLUME = "volume"
BIND = "bind"
TMPFS = "tmpfs"

# Where a spec came from (decides copy-up, source creation and precedence).
FROM_IMAGE = "image"
FROM_VOLUMES_FROM = "volumes-from"
FROM_BINDS = "binds"
FROM_MOUNTS = "mounts"

#: docker's rule for local volume names (``daemon/names``: RestrictedNamePattern).
VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
#: Label docker 23 puts on anonymous volumes; berth sets it too.
ANONYMOUS_LABEL = "com.docker.volume.anonymous"

PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
DEFAULT_PROPAGATION = "rprivate"
_RW_MODES = ("rw", "ro")
_LABEL_MODES = ("z", "Z")
_COPY_MODES = ("nocopy",)

#: Options every tmpfs gets before the user's (docker's ``setupMounts``).
TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev", DEFAULT_PROPAGATION)
#: tmpfs data keys docker accepts (``mount.ParseTmpfsOptions``).
TMPFS_DATA_KEYS = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")
# Mount flags by family: a later member of a family replaces an earlier one.
_FLAG_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("ro", "rw"), ("exec", "noexec"), ("suid", "nosuid"), ("dev", "nodev"), ("sync", "async"),
    ("dirsync",), ("remount",), ("mand", "nomand"), ("atime", "noatime"), ("diratime", "nodiratime"),
    ("relatime", "norelatime"), ("strictatime", "nostrictatime"), ("bind",), ("rbind",),
    (*PROPAGATIONS, "unbindable", "runbindable"),
)
_FAMILY_OF = {flag: family[0] for family in _FLAG_FAMILIES for flag in family}


@dataclass(frozen=True)
class MountSpec:
    """One mount of a container, before volumes are created.

    ``type``: ``volume``, ``bind`` or ``tmpfs``. ``destination``: cleaned path in the container.
    ``source``: the volume name (``""`` = a new anonymous volume), the absolute host path of a
    bind, ``""`` for tmpfs. ``mode``: the ``Mode`` ``inspect`` shows (the ``-v`` mode string,
    ``z`` for local volumes given without one). ``propagation``: bind propagation
    (``rprivate`` by default). ``copy_data``: fill an empty volume from the image (not
    ``nocopy``). ``create_source``: a missing bind source is created (``-v``), not refused
    (``--mount``). ``tmpfs_data``: tmpfs data options (``size=64m``, ``mode=1777``).
    ``labels``/``driver_options``/``driver``: for a volume ``--mount`` creates (``driver`` ""
    = the daemon's default, ``local``). ``recursive``: ``rbind``
    rather than ``bind`` (``BindOptions.NonRecursive``). ``origin``: one of the ``FROM_*`` values.
    """

    type: str
    destination: str
    source: str = ""
    read_only: bool = False
    mode: str = ""
    propagation: str = ""
    copy_data: bool = True
    create_source: bool = False
    tmpfs_data: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    driver_options: dict[str, str] = field(default_factory=dict)
    driver: str = ""
    recursive: bool = True
    origin: str = FROM_BINDS

    def to_record(self) -> dict[str, Any]:
        """A JSON-able dict (kept with the container's mount point as ``Spec``)."""
        out = asdict(self)
        out["tmpfs_data"] = list(self.tmpfs_data)
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MountSpec:
        """Inverse of :meth:`to_record`; unknown keys are ignored."""
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        known["tmpfs_data"] = tuple(known.get("tmpfs_data") or ())
        return cls(**known)


def clean_path(path: str) -> str:
    """Go's ``filepath.Clean`` for container paths: ``/x/../y/`` -> ``/y``, ``""`` -> ``.``."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    # normpath keeps a leading '//' (POSIX allows it to be special); Go collapses it.
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def volume_name_error(name: str) -> str | None:
    """docker's complaint about a local volume name, or None when it is valid.

    The service prefixes it with ``create <name>: `` as dockerd does.
    """
    if len(name) == 1:
        return "volume name is too short, names should be at least two alphanumeric characters"
    if VOLUME_NAME.fullmatch(name):
        return None
    return (f"{quote(name)} includes invalid characters for a local volume name, only "
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
            "use absolute path")


def _mode_parts(mode: str) -> list[str] | None:
    """The comma-separated parts of a ``-v`` mode, or None when docker would refuse it."""
    if not mode:
        return []
    parts = mode.split(",")
    counts = {"rw": 0, "label": 0, "propagation": 0, "copy": 0}
    for part in parts:
        if part in _RW_MODES:
            counts["rw"] += 1
        elif part in _LABEL_MODES:
            counts["label"] += 1
        elif part in PROPAGATIONS:
            counts["propagation"] += 1
        elif part in _COPY_MODES:
            counts["copy"] += 1
        else:
            return None
    return parts if max(counts.values()) <= 1 else None


def valid_mode(mode: str) -> bool:
    """True when ``mode`` is a valid ``-v`` mode: at most one each of ``ro|rw``, ``z|Z``, a
    propagation and ``nocopy``, comma-separated (docs: "docker run", ``--volume``)."""
    return _mode_parts(mode) is not None


def _check_target(target: str) -> str:
    """Validate a mount destination; returns it cleaned. Raises ValueError with docker's detail."""
    if not target:
        raise ValueError("field Target must not be empty")
    if clean_path(target) == "/":
        raise ValueError("invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        raise ValueError(f"invalid mount path: '{target}' mount path must be absolute")
    return clean_path(target)


def parse_bind(raw: str) -> MountSpec:
    """Parse one ``HostConfig.Binds`` entry (``-v``).

    Forms: ``/ctr/path`` (anonymous volume), ``name:/ctr/path[:mode]`` (named volume),
    ``/host/path:/ctr/path[:mode]`` (bind). Modes: ``ro|rw``, ``z|Z``, a propagation
    (``[r]shared``, ``[r]slave``, ``[r]private``; binds only), ``nocopy`` (volumes only).

    Raises:
        InvalidParameter: ``invalid volume specification: '<raw>'[: <detail>]`` or
            ``invalid mode: <mode>``, docker's texts.
    """
    parts = raw.split(":")
    source, mode = "", ""
    if len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2:
        if valid_mode(parts[1]):
            raise InvalidParameter(f"invalid volume specification: '{raw}'")
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise InvalidParameter(f"invalid volume specification: '{raw}'")
    if len(parts) > 1 and not source:
        raise InvalidParameter(f"invalid volume specification: '{raw}'")
    modes = _mode_parts(mode)
    if modes is None:
        raise InvalidParameter(f"invalid mode: {mode}")
    kind = BIND if source.startswith("/") else VOLUME
    propagation = next((m for m in modes if m in PROPAGATIONS), "")
    try:
        destination = _check_target(target)
        if kind == VOLUME and propagation:
            raise ValueError("field BindOptions must not be specified")
        if kind == BIND and "nocopy" in modes:
            raise ValueError("field VolumeOptions must not be specified")
    except ValueError as exc:
        raise InvalidParameter(f"invalid volume specification: '{raw}': invalid mount config for type "
                               f'"{kind}": {exc}') from None
    if kind == BIND:
        return MountSpec(BIND, destination, clean_path(source), "ro" in modes, mode,
                         propagation or DEFAULT_PROPAGATION, copy_data=False, create_source=True)
    return MountSpec(VOLUME, destination, source, "ro" in modes, mode or "z", "",
                     copy_data="nocopy" not in modes)


def parse_mount(mount: dict[str, Any]) -> MountSpec:
    """Parse and validate one ``HostConfig.Mounts`` entry (``--mount``; Engine API ``Mount``).

    Does not look at the host: whether a bind source exists is checked by the caller
    (``bind source path does not exist: <path>``).

    Raises:
        InvalidParameter: ``invalid mount config for type "<type>": <detail>`` (docker's texts).
    """
    kind = str(mount.get("Type") or "")
    try:
        return _parse_mount(kind, mount)
    except ValueError as exc:
        raise InvalidParameter(f'invalid mount config for type "{kind}": {exc}') from None


def _parse_mount(kind: str, m: dict[str, Any]) -> MountSpec:
    destination = _check_target(str(m.get("Target") or ""))
    source = str(m.get("Source") or "")
    read_only = bool(m.get("ReadOnly"))
    bind_opts, volume_opts = m.get("BindOptions"), m.get("VolumeOptions")
    if kind == BIND:
        if not source:
            raise ValueError("field Source must not be empty")
        if volume_opts is not None:
            raise ValueError("field VolumeOptions must not be specified")
        if not source.startswith("/"):
            raise ValueError(f"invalid mount path: '{source}' mount path must be absolute")
        bind_opts = bind_opts or {}
        propagation = str(bind_opts.get("Propagation") or "")
        if propagation and propagation not in PROPAGATIONS:
            raise ValueError(f"invalid propagation mode: {propagation}")
        return MountSpec(BIND, destination, clean_path(source), read_only, "",
                         propagation or DEFAULT_PROPAGATION, copy_data=False,
                         create_source=bool(bind_opts.get("CreateMountpoint")),
                         recursive=not bind_opts.get("NonRecursive"), origin=FROM_MOUNTS)
    if kind == VOLUME:
        if bind_opts is not None:
            raise ValueError("field BindOptions must not be specified")
        if not source and read_only:
            raise ValueError("must not set ReadOnly mode when using anonymous volumes")
        volume_opts = volume_opts or {}
        driver = volume_opts.get("DriverConfig") or {}
        return MountSpec(VOLUME, destination, source, read_only, "z", "",
                         copy_data=not volume_opts.get("NoCopy"),
                         labels=dict(volume_opts.get("Labels") or {}),
                         driver_options=dict(driver.get("Options") or {}), driver=str(driver.get("Name") or ""),
                         origin=FROM_MOUNTS)
    if kind == TMPFS:
        if bind_opts is not None:
            raise ValueError("field BindOptions must not be specified")
        if source:
            raise ValueError("field Source must not be specified")
        data = tmpfs_data_from_options(m.get("TmpfsOptions") or {})
        return MountSpec(TMPFS, destination, "", read_only, "", "", copy_data=False, tmpfs_data=data,
                         origin=FROM_MOUNTS)
    raise ValueError("mount type unknown")


def _size_text(size: int) -> str:
    """Bytes as the tmpfs ``size=`` value docker writes: the largest of g/m/k dividing it."""
    for suffix, unit in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def tmpfs_data_from_options(options: dict[str, Any]) -> tuple[str, ...]:
    """``Mount.TmpfsOptions`` (``SizeBytes`` in bytes, ``Mode`` as a number) as tmpfs data
    options: ``mode=<octal>`` then ``size=<n>[kmg]``, zero values left out."""
    out = []
    mode = int(options.get("Mode") or 0)
    if mode:
        out.append(f"mode={mode:o}")
    size = int(options.get("SizeBytes") or 0)
    if size > 0:
        out.append(f"size={_size_text(size)}")
    return tuple(out)


def parse_tmpfs(destination: str, options: str) -> MountSpec:
    """One ``HostConfig.Tmpfs`` entry (``--tmpfs /run:size=64m,mode=1777``).

    The options are checked when the mount is made (:func:`tmpfs_mount_options`), as dockerd
    does at start. Raises InvalidParameter for a relative or ``/`` destination.
    """
    try:
        target = _check_target(destination)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None
    data = tuple(o for o in (options or "").split(",") if o)
    return MountSpec(TMPFS, target, "", False, "", "", copy_data=False, tmpfs_data=data, origin="tmpfs")


def tmpfs_mount_options(spec: MountSpec) -> tuple[str, ...]:
    """The OCI options of a tmpfs mount: ``noexec,nosuid,nodev,rprivate``, then ``ro`` when
    read-only, then the user's options; a later flag replaces an earlier one of its family
    (``exec`` drops ``noexec``) and a later ``key=value`` an earlier one with the same key.

    Raises:
        InvalidParameter: an option that is neither a mount flag nor one of
            :data:`TMPFS_DATA_KEYS` (``invalid tmpfs option ["bogus" "1"]``).
    """
    wanted = [*TMPFS_DEFAULTS, *(("ro",) if spec.read_only else ()), *spec.tmpfs_data]
    merged: list[tuple[str, str]] = []  # (family key, option)
    for option in wanted:
        if option in _FAMILY_OF:
            key = _FAMILY_OF[option]
        else:
            name = option.split("=", 1)[0]
            if name not in TMPFS_DATA_KEYS:
                raise InvalidParameter(f"invalid tmpfs option {quote_list(option.split('=', 1))}")
            key = "=" + name
        merged = [(k, o) for k, o in merged if k != key]
        merged.append((key, option))
    return tuple(o for _, o in merged)


def parse_volumes_from(raw: str) -> tuple[str, str]:
    """``container[:mode]`` of ``--volumes-from`` as ``(container, mode)``; mode ``ro`` makes
    every copied mount read-only. Raises InvalidParameter (``invalid mode: <mode>``)."""
    ref, _, mode = raw.partition(":")
    if mode and not valid_mode(mode):
        raise InvalidParameter(f"invalid mode: {mode}")
    return ref, mode


def from_mount_point(point: dict[str, Any], mode: str) -> MountSpec:
    """A mount of another container (its MountPoint dict) as ``--volumes-from`` copies it:
    same type, source, destination and propagation, read-only when it was or ``mode`` is
    ``ro``, never filled from the image."""
    spec = MountSpec.from_record(point["Spec"]) if isinstance(point.get("Spec"), dict) else None
    kind = str(point.get("Type") or VOLUME)
    source = str(point.get("Name") or "") if kind == VOLUME else str(point.get("Source") or "")
    read_only = not point.get("RW", True) or "ro" in (_mode_parts(mode) or [])
    return MountSpec(kind, str(point["Destination"]), source, read_only, "", str(point.get("Propagation") or ""),
                     copy_data=False, create_source=spec.create_source if spec else False,
                     tmpfs_data=spec.tmpfs_data if spec else (), recursive=spec.recursive if spec else True,
                     origin=FROM_VOLUMES_FROM)


def image_volume(path: str) -> MountSpec:
    """An anonymous volume for ``Config.Volumes`` (image ``VOLUME`` or ``-v /path``)."""
    return MountSpec(VOLUME, clean_path(path), "", False, "", "", copy_data=True, origin=FROM_IMAGE)


def plan_mounts(volumes_from: list[MountSpec], binds: list[MountSpec], mounts: list[MountSpec],
                tmpfs_destinations: set[str], image_volumes: list[str]) -> list[MountSpec]:
    """The container's mounts after docker's precedence, in a stable order.

    ``volumes_from`` mounts come first, ``binds`` replace them, ``mounts`` replace those;
    image volumes (``Config.Volumes`` paths) only fill destinations nobody else took (a
    ``--tmpfs`` included). HostConfig ``Tmpfs`` mounts are not mount points: pass their
    destinations as ``tmpfs_destinations``.

    Raises:
        InvalidParameter: ``Duplicate mount point: <dest>`` for two binds at one destination, a
            bind where a ``--tmpfs`` is, or a ``--mount`` where a bind or another mount is.
    """
    planned: dict[str, MountSpec] = {s.destination: s for s in volumes_from}
    taken: set[str] = set()
    for spec in binds:
        if spec.destination in taken or spec.destination in tmpfs_destinations:
            raise InvalidParameter(f"Duplicate mount point: {spec.destination}")
        taken.add(spec.destination)
        planned[spec.destination] = spec
    for spec in mounts:
        if spec.destination in taken:
            raise InvalidParameter(f"Duplicate mount point: {spec.destination}")
        taken.add(spec.destination)
        planned[spec.destination] = spec
    for path in image_volumes:
        spec = image_volume(path)
        if spec.destination not in planned and spec.destination not in tmpfs_destinations:
            planned[spec.destination] = spec
    return list(planned.values())


def parse_tmpfs_map(tmpfs: dict[str, str] | None) -> list[MountSpec]:
    """Every ``HostConfig.Tmpfs`` entry, sorted by destination. Raises InvalidParameter."""
    return [parse_tmpfs(dest, opts) for dest, opts in sorted((tmpfs or {}).items())]
