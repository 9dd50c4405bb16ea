"""Layer tars in and out: apply an OCI layer changeset to a snapshot, write one from an upper dir.

The format is the OCI image spec's "Image Layer Filesystem Changeset" (layer.md): a tar whose
deletions are ``.wh.<name>`` entries and ``.wh..wh..opq`` opaque markers. On disk the snapshotter
keeps overlayfs' own representation (0/0 character devices, ``trusted.overlay.opaque=y``), so a
layer directory can be used as an overlay lowerdir as it is.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from berth.errors import BerthError, InvalidParameter, NotFound, SystemError_
from berth.snapshots import fsutil
from berth.snapshots.tarutil import (
    ENCODING,
    ERRORS,
    TrackedStream,
    add_file,
    clean_name,
    make_node,
    marker,
    mtime_ns,
    open_writer,
    xattrs_from_pax,
)

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_AUFS_META = ".wh..wh."
METACOPY_XATTR = "trusted.overlay.metacopy"
REDIRECT_XATTR = "trusted.overlay.redirect"

_CHUNK = 1 << 20
_READ_SIZE = 64 << 10
_SPARSE_CHUNK = 64 << 10
# Failures of the machine, not of the tar: report them as such.
_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM}


def apply_layer(target: Path, stream: BinaryIO) -> int:
    """Unpack an uncompressed layer tar from ``stream`` into the empty directory ``target``.

    Whiteouts become overlay whiteouts whatever their position among their siblings (image-spec
    layer.md "Whiteouts": they apply to lower layers only); modes, numeric owners, mtimes (ns),
    xattrs (``SCHILY.xattr.*``, ``LIBARCHIVE.xattr.*``), hard links to earlier entries, symlinks,
    devices, fifos and sparse files are kept. The stream is read once, front to back.

    Safety (as docker refuses them): names whose cleaned path leaves the root and hard links whose
    target leaves it ("invalid hardlink") are refused. Symlinks are stored as they are, absolute or
    climbing above the root (``../../../etc/x``): dockerd unpacks in a chroot, where ``..`` stops at
    the root, and so do the kernel inside a container and :func:`fsutil.secure_join`, through which
    every write goes; an entry written through a symlink that leads to no directory is refused
    ("no such file or directory", dockerd's ENOENT in its chroot). So a layer never writes outside
    ``target``.

    Returns:
        the unpacked size in bytes: file sizes plus symlink target lengths, hard links once
        (what :func:`fsutil.tree_size` gives for the result).

    An empty stream (0 bytes) is an empty layer, as for dockerd.

    Raises:
        InvalidParameter: unsafe, truncated or corrupt tar; ``target`` is left half-filled and
            the caller discards it.
        SystemError_: the disk failed (ENOSPC, EIO...).
    """
    tracked = TrackedStream(stream, _READ_SIZE)
    unpacker = _Unpacker(Path(target))
    try:
        with tarfile.open(
            fileobj=cast(BinaryIO, tracked), mode="r|", bufsize=_READ_SIZE, encoding=ENCODING, errors=ERRORS
        ) as tar:
            for member in tar:
                unpacker.apply(tar, member)
            tracked.check_end(tar.offset)
    except tarfile.TarError as e:
        if tracked.consumed == 0:
            return 0  # a 0-byte layer is an empty one: `docker import` of an empty file makes one
        raise InvalidParameter(f"unpacking layer: {e}") from None
    unpacker.finish()
    return unpacker.size


class _Unpacker:
    """State of one layer extraction: the root, the size so far, directory mtimes to set last."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.size = 0
        self._dir_times: list[tuple[Path, int]] = []

    def apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = clean_name(member.name)
        try:
            self._apply(tar, member, name)
        except BerthError:
            raise
        except OSError as e:
            if e.errno in _SYSTEM_ERRNOS:
                raise SystemError_(f"unpacking layer: {member.name}: {e.strerror}") from None
            raise InvalidParameter(f'unpacking layer: "{member.name}": {e.strerror}') from None

    def _apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> None:
        if not name:
            if not member.isdir():
                raise InvalidParameter(f'unpacking layer: root entry "{member.name}" is not a directory')
            self._set_metadata(self.root, member)
            return
        if name.startswith(_AUFS_META):
            return  # aufs bookkeeping (.wh..wh.plnk/, .wh..wh.aufs), meaningless on overlay
        parent_rel, base = posixpath.split(name)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent_rel, base, member.name)
            return
        path = self._parent(parent_rel) / base
        was_whiteout = self._clear(path, member)
        self._create(tar, member, path, parent_rel)
        if was_whiteout and member.isdir():
            # The same layer deleted the lower entry and made a new directory: hide what was below.
            fsutil.set_opaque(path)
        if not member.islnk():
            self._set_metadata(path, member)

    def _parent(self, rel: str) -> Path:
        """The directory ``rel`` inside the root, created (0755, root-owned) where missing."""
        resolved = fsutil.secure_join(self.root, rel)
        if resolved != self.root / rel:
            self._check_links_lead_to_dirs(rel)
        current = self.root
        for part in resolved.relative_to(self.root).parts:
            current = current / part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current, 0o755)
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if fsutil.is_whiteout(st):
                os.unlink(current)
                os.mkdir(current, 0o755)
                fsutil.set_opaque(current)
                continue
            raise InvalidParameter(f'unpacking layer: "{rel}" is not a directory')
        return current

    def _check_links_lead_to_dirs(self, rel: str) -> None:
        """Refuse an entry whose directory path passes through a symlink that does not lead to a
        directory: dockerd unpacks in a chroot and fails there with ENOENT rather than create the
        link's missing target, so a layer cannot make directories by writing through a link."""
        prefix = self.root
        for part in rel.split("/"):
            prefix = prefix / part
            try:
                st = os.lstat(prefix)
            except (FileNotFoundError, NotADirectoryError):
                return
            if stat.S_ISLNK(st.st_mode):
                target = fsutil.secure_join(self.root, str(prefix.relative_to(self.root)))
                if not target.is_dir():
                    raise InvalidParameter(
                        f'unpacking layer: "{rel}": no such file or directory (symlink '
                        f'"{prefix.relative_to(self.root)}" -> "{os.readlink(prefix)}" leads to no directory)')

    def _whiteout(self, parent_rel: str, base: str, raw_name: str) -> None:
        if base == OPAQUE_MARKER:
            fsutil.set_opaque(self._parent(parent_rel))
            return
        if base.startswith(_AUFS_META):
            return
        hidden = base[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", ".."):
            raise InvalidParameter(f'unpacking layer: invalid whiteout "{raw_name}"')
        path = self._parent(parent_rel) / hidden
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            fsutil.make_whiteout(path)
            return
        if stat.S_ISDIR(st.st_mode):
            # This layer's own directory stays; only what lies below it goes.
            fsutil.set_opaque(path)

    @staticmethod
    def _clear(path: Path, member: tarfile.TarInfo) -> bool:
        """Remove what sits at ``path`` unless both are directories; True when it was a whiteout."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if member.isdir():
                return False
            shutil.rmtree(path)
        else:
            os.unlink(path)
        return fsutil.is_whiteout(st)

    def _create(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, parent_rel: str) -> None:
        if member.isdir():
            if not path.is_dir():
                os.mkdir(path, 0o700)
        elif member.issym():
            os.symlink(member.linkname, path)
            self.size += len(os.fsencode(member.linkname))
        elif member.islnk():
            self._hardlink(member, path)
        elif member.isreg():
            _write_file(tar, member, path)
            self.size += member.size
        elif not make_node(member, path):
            log.warning("unpacking layer: skipping %s of unknown type %r", member.name, member.type)

    def _hardlink(self, member: tarfile.TarInfo, path: Path) -> None:
        refused = f'unpacking layer: invalid hardlink "{member.name}" -> "{member.linkname}"'
        try:
            link = clean_name(member.linkname)
        except InvalidParameter:
            raise InvalidParameter(refused) from None
        if not link:
            raise InvalidParameter(refused)
        link_parent, link_base = posixpath.split(link)
        source = fsutil.secure_join(self.root, link_parent) / link_base
        try:
            st = os.lstat(source)
        except (FileNotFoundError, NotADirectoryError):
            raise InvalidParameter(f"{refused}: no such entry earlier in the layer") from None
        if stat.S_ISDIR(st.st_mode) or fsutil.is_whiteout(st):
            raise InvalidParameter(f"{refused}: not a file")
        os.link(source, path, follow_symlinks=False)

    def _set_metadata(self, path: Path, member: tarfile.TarInfo) -> None:
        # chown clears set-id bits and file capabilities, so it comes before chmod and xattrs.
        os.chown(path, member.uid, member.gid, follow_symlinks=False)
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)
        for name, value in xattrs_from_pax(member.pax_headers).items():
            _set_xattr(path, name, value)
        ns = mtime_ns(member)
        if member.isdir():
            self._dir_times.append((path, ns))
        else:
            os.utime(path, ns=(ns, ns), follow_symlinks=False)

    def finish(self) -> None:
        """Set directory mtimes, deepest last-seen first, now that nothing changes inside them."""
        for path, ns in reversed(self._dir_times):
            try:
                os.utime(path, ns=(ns, ns), follow_symlinks=False)
            except FileNotFoundError:
                pass  # replaced later in the same layer


def _set_xattr(path: Path, name: str, value: bytes) -> None:
    if name.startswith(fsutil.OVERLAY_XATTR_PREFIX):
        return  # overlay's own bookkeeping must not come from a layer
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EPERM):
            raise
        log.warning("unpacking layer: cannot set xattr %s on %s: %s", name, path, e.strerror)


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        data = tar.extractfile(member)
        if data is None:
            return
        if not member.issparse():
            shutil.copyfileobj(data, out, _CHUNK)
            return
        # Keep the holes: skip runs of zeros instead of writing them.
        while chunk := data.read(_SPARSE_CHUNK):
            if chunk.count(0) == len(chunk):
                out.seek(len(chunk), os.SEEK_CUR)
            else:
                out.write(chunk)
        out.truncate(member.size)


def write_layer(upper: Path, out: BinaryIO, *, lower: list[Path] | None = None) -> None:
    """Write the overlay upper dir ``upper`` to ``out`` as an OCI layer tar (pax format).

    Overlay whiteouts become ``.wh.<name>`` entries and an opaque directory its entry followed by
    ``<dir>/.wh..wh..opq`` (image-spec layer.md "Whiteouts"). Entries come depth first, parents
    before children; among siblings the opaque marker first, then whiteouts (the spec's
    SHOULD), then the rest, each group in name-byte order. Owners are numeric (empty
    uname/gname), mtimes whole seconds, hard links inside ``upper`` are link entries, xattrs
    are ``SCHILY.xattr.*`` records (``trusted.overlay.*`` left out), sockets are skipped. Equal
    trees give byte-identical tars.

    Args:
        upper: the upper (diff) directory.
        out: binary stream written front to back (need not be seekable).
        lower: the lowerdirs the upper was mounted on, top first; only read when overlay stored
            a file as metadata-only copy-up (``metacopy=on``) and its data lives below.

    Raises:
        SystemError_: a metadata-only file whose data is in no lower.
    """
    with open_writer(out) as tar:
        links: dict[tuple[int, int], str] = {}
        if fsutil.is_opaque(upper):
            tar.addfile(marker(OPAQUE_MARKER))
        for rel, st in _layer_walk(upper, ""):
            path = upper / rel
            if fsutil.is_whiteout(st):
                parent, base = posixpath.split(rel)
                tar.addfile(marker(posixpath.join(parent, WHITEOUT_PREFIX + base)))
                continue
            data = _metacopy_source(path, rel, lower or []) if stat.S_ISREG(st.st_mode) else None
            add_file(tar, rel, path, st, links, data)
            if stat.S_ISDIR(st.st_mode) and fsutil.is_opaque(path):
                tar.addfile(marker(f"{rel}/{OPAQUE_MARKER}"))


def _layer_walk(root: Path, rel: str) -> Iterator[tuple[str, os.stat_result]]:
    """Like :func:`fsutil.walk`, with whiteouts before their siblings."""
    entries = [(e.name, e.stat(follow_symlinks=False)) for e in fsutil.sorted_entries(root / rel)]
    entries.sort(key=lambda item: not fsutil.is_whiteout(item[1]))
    for name, st in entries:
        child = f"{rel}/{name}" if rel else name
        yield child, st
        if stat.S_ISDIR(st.st_mode):
            yield from _layer_walk(root, child)


def _metacopy_source(path: Path, rel: str, lowers: list[Path]) -> Path | None:
    """Where the data of a metadata-only copy-up lives (overlayfs.rst "Metadata only copy up")."""
    try:
        os.getxattr(path, METACOPY_XATTR, follow_symlinks=False)
    except OSError:
        return None
    try:
        redirect = os.fsdecode(os.getxattr(path, REDIRECT_XATTR, follow_symlinks=False))
        origin = (
            redirect.lstrip("/")
            if redirect.startswith("/")
            else posixpath.join(posixpath.dirname(rel), redirect)
        )
    except OSError:
        origin = rel
    for lower in lowers:
        candidate = fsutil.secure_join(lower, posixpath.dirname(origin)) / posixpath.basename(origin)
        if candidate.is_file():
            return candidate
    raise SystemError_(f"writing layer: data of /{rel} is in no lower layer")


def write_tree(
    root: Path, out: BinaryIO, *, paths: list[str] | None = None, rename: dict[str, str] | None = None
) -> None:
    """Write a plain tar of a filesystem tree (``docker export``, archive GET, build context copies).

    Entries get the same headers as :func:`write_layer` but no whiteout conversion. Without
    ``paths`` the whole tree is written with names relative to ``root`` (no entry for the root
    itself). With ``paths``, each path (inside ``root``, resolved with :func:`fsutil.secure_join`
    for its directories, its last component taken as it is) is written with its subtree.

    Args:
        root: the tree, e.g. a mounted container rootfs.
        out: binary stream written front to back.
        paths: paths inside ``root`` such as ``"/var/log"``; ``..`` cannot leave ``root``.
        rename: top-level name in the tar for a path of ``paths`` (keyed by the path as given),
            e.g. ``{"/var/log": "log"}`` as docker names ``docker cp ctr:/var/log``; the empty
            name writes the directory's contents only.

    Raises:
        NotFound: a path of ``paths`` does not exist.
    """
    with open_writer(out) as tar:
        links: dict[tuple[int, int], str] = {}
        if paths is None:
            for rel, st in fsutil.walk(root):
                add_file(tar, rel, root / rel, st, links)
            return
        for given in paths:
            rel = posixpath.normpath("/" + given).lstrip("/")
            parent, base = posixpath.split(rel)
            path = fsutil.secure_join(root, parent) / base if base else root
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                raise NotFound(f"{given}: no such file or directory") from None
            name = (rename or {}).get(given, rel)
            if name:
                add_file(tar, name, path, st, links)
            if stat.S_ISDIR(st.st_mode):
                for sub, sub_st in fsutil.walk(path):
                    add_file(tar, f"{name}/{sub}" if name else sub, path / sub, sub_st, links)
