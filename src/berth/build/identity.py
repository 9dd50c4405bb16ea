"""``--chown=user[:group]`` for COPY and ADD, resolved in the image being built.

docker 20.10's ``parseChownFlag``: numbers are used as they are; names are looked up in the
image's own ``/etc/passwd`` and ``/etc/group`` (never the host's); a user without a group uses
the same string for the group. Messages are dockerd's.
"""

from __future__ import annotations

from pathlib import Path

from berth.errors import InvalidParameter
from berth.snapshots import fsutil

_PREFIX = "unable to convert uid/gid chown string to host mapping: "


def _lookup(rootfs: Path, table: str, name: str) -> int | None:
    """The numeric id of ``name`` in the image's ``/etc/<table>`` (passwd or group), or None."""
    path = fsutil.secure_join(rootfs, f"/etc/{table}")
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name:
            try:
                return int(fields[2])
            except ValueError:
                return None
    return None


def _resolve(rootfs: Path, table: str, name: str, what: str, kind: str) -> int:
    if name.isdigit():
        return int(name)
    found = _lookup(rootfs, table, name)
    if found is None:
        raise InvalidParameter(f"{_PREFIX}can't find {what} for {kind} {name}: no such {kind}: {name}")
    return found


def parse_chown(rootfs: Path, spec: str) -> tuple[int, int]:
    """``(uid, gid)`` for a ``--chown`` value; ``rootfs`` is the image's root filesystem.

    Raises InvalidParameter, e.g. ``unable to convert uid/gid chown string to host mapping:
    can't find uid for user nobody2: no such user: nobody2``.
    """
    parts = spec.split(":")
    if len(parts) > 2:
        raise InvalidParameter(f"{_PREFIX}invalid chown string format: {spec}")
    user = parts[0]
    group = parts[1] if len(parts) == 2 else parts[0]
    uid = _resolve(rootfs, "passwd", user, "uid", "user")
    gid = _resolve(rootfs, "group", group, "gid", "group")
    return uid, gid


def parse_chmod(spec: str) -> int:
    """An octal ``--chmod`` value (BuildKit's form). Raises InvalidParameter."""
    try:
        mode = int(spec, 8)
    except ValueError:
        raise InvalidParameter(f"invalid chmod parameter {spec!r}: must be an octal mode") from None
    if mode < 0 or mode > 0o7777:
        raise InvalidParameter(f"invalid chmod parameter {spec!r}: must be an octal mode")
    return mode
