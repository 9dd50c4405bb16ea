"""Resolve a container's ``--user`` against the image's ``/etc/passwd`` and ``/etc/group``.

Accepted forms (``docker run --user``, Dockerfile ``USER``): ``""`` (root), ``name``, ``uid``,
``name:group``, ``uid:gid``, ``name:gid``, ``uid:group``. A numeric uid need not exist in passwd;
a name must. Without an explicit group the user's primary gid comes from passwd (0 if absent)
and the supplementary groups are the ``/etc/group`` entries listing the user's name; with one,
no supplementary groups. ``--group-add`` entries are appended. The primary gid always leads the
supplementary list, as dockerd writes ``additionalGids`` (``docker run busybox id`` prints
``groups=0(root),10(wheel)``; ``-u 1000:1000`` prints ``groups=1000``). Error texts are docker's.

The files are read inside ``rootfs`` with symlinks resolved within it (never out of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from berth.errors import SystemError_
from berth.runtime.mounts import secure_join

MAX_ID = 2**31 - 1
_RANGE_ERROR = f"uids and gids must be in range 0-{MAX_ID}"


class ExecUser(NamedTuple):
    """The identity a container process runs as."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


class _Passwd(NamedTuple):
    name: str
    uid: int
    gid: int
    home: str


class _Group(NamedTuple):
    name: str
    gid: int
    members: tuple[str, ...]


def _lines(rootfs: Path, path: str) -> Iterator[list[str]]:
    try:
        with open(secure_join(rootfs, path), encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    yield line.split(":")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return


def _passwd(rootfs: Path) -> Iterator[_Passwd]:
    for fields in _lines(rootfs, "/etc/passwd"):
        fields += [""] * (7 - len(fields))
        try:
            yield _Passwd(fields[0], int(fields[2]), int(fields[3]), fields[5])
        except ValueError:
            continue


def _groups(rootfs: Path) -> Iterator[_Group]:
    for fields in _lines(rootfs, "/etc/group"):
        fields += [""] * (4 - len(fields))
        try:
            members = tuple(m.strip() for m in fields[3].split(",") if m.strip())
            yield _Group(fields[0], int(fields[2]), members)
        except ValueError:
            continue


def _number(text: str) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    if value > MAX_ID:
        raise SystemError_(_RANGE_ERROR)
    return value


def _find_user(rootfs: Path, spec: str) -> tuple[int, _Passwd | None]:
    uid = _number(spec)
    for entry in _passwd(rootfs):
        if entry.name == spec or (uid is not None and entry.uid == uid):
            return entry.uid, entry
    if uid is None:
        raise SystemError_(f"unable to find user {spec}: no matching entries in passwd file")
    return uid, None


def _find_group(rootfs: Path, spec: str) -> int:
    gid = _number(spec)
    for entry in _groups(rootfs):
        if entry.name == spec or (gid is not None and entry.gid == gid):
            return entry.gid
    if gid is None:
        raise SystemError_(f"unable to find group {spec}: no matching entries in group file")
    return gid


def resolve_user(rootfs: Path, user: str, group_add: Iterable[str] = ()) -> ExecUser:
    """Resolve ``user`` (``name``, ``uid``, ``name:group``, ``uid:gid``...) inside ``rootfs``.

    ``group_add``: ``--group-add`` values (group names or gids). Returns an :class:`ExecUser`
    (unpacks as ``uid, gid, additional_gids, home``; home ``/`` when passwd has no entry).
    Raises :class:`SystemError_` with docker's messages, e.g. ``unable to find user foo: no
    matching entries in passwd file``.
    """
    user_spec, _, group_spec = user.partition(":")
    uid, entry = _find_user(rootfs, user_spec or "0")
    gid = entry.gid if entry else 0
    supplementary: list[int] = []
    if group_spec:
        gid = _find_group(rootfs, group_spec)
    elif entry:
        supplementary = [g.gid for g in _groups(rootfs) if entry.name in g.members]
    for extra in group_add:
        number = _number(extra)
        if number is None:
            found = [g.gid for g in _groups(rootfs) if g.name == extra]
            if not found:
                raise SystemError_(f"Unable to find group {extra}")
            number = found[0]
        supplementary.append(number)
    return ExecUser(uid, gid, tuple(dict.fromkeys([gid, *supplementary])), entry.home if entry else "/")
