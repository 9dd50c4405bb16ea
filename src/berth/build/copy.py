"""COPY and ADD: which files a source names, where they land, and copying them into a rootfs.

Semantics of the Dockerfile reference ("COPY", "ADD") as docker 20.10's classic builder
implements them (``builder/dockerfile/copy.go``):

* a source is cleaned and made relative (leading ``/`` and ``./`` dropped); one that still
  climbs out (``../x``) is ``forbidden path outside the build context``; sources with ``*``,
  ``?`` or ``[`` are Go ``filepath.Match`` patterns tried against every path of the tree;
* a directory source copies its contents, not itself; a file goes *into* the destination
  when that ends in ``/`` or is an existing directory, else *to* it; with several sources the
  destination must end in ``/``; a relative destination is relative to WORKDIR;
* ADD extracts a local tar (plain, gzip, bzip2, xz) into the destination, keeping its owners;
* everything copied belongs to 0:0 unless ``--chown``; modes and mtimes come from the source.

Directory mtimes (berth's choice: dockerd 20.10 stamps the build's current time on every
directory a COPY or ADD creates or writes into, measured with ``stat -c %Y``): the destination
of a directory source takes the source directory's mtime, as ``cp -a`` would (the context root
has none, the docker CLI sends no entry for it); an archive's destination takes the mtime of the
archive's root entry (``./``) when it has one; other directories the step had to create get
mtime 0, and existing directories the step wrote into keep the mtime they had. So the same
sources on the same parent give a byte-identical layer, and no COPY leaves a 1970 directory
where the source had a date. Mtimes never enter the cache checksums (:mod:`berth.build.sources`).
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from berth.build.context import extract_tar
from berth.build.sources import SourceTree, hash_strings
from berth.errors import InvalidParameter
from berth.images.service import decompress
from berth.snapshots import fsutil

_WILDCARD = re.compile(r"(?<!\\)[*?\[]")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CopySource:
    """One thing to copy: ``name`` is the path as written or matched (its base name names a
    file copied into a directory), ``path`` the resolved file in ``tree``, ``sum`` its checksum
    (``file:...`` or ``dir:...``), ``extract`` true for a local archive ADD unpacks."""

    tree: SourceTree
    name: str
    path: Path
    sum: str
    extract: bool = False


def has_wildcards(path: str) -> bool:
    """docker's ``containsWildcards``: an unescaped ``*``, ``?`` or ``[``."""
    return bool(_WILDCARD.search(path))


def _match_regex(pattern: str) -> re.Pattern[str] | None:
    """Go's ``filepath.Match`` as a regex (``*``/``?`` never match ``/``); None when malformed."""
    out: list[str] = []
    pos = 0
    while pos < len(pattern):
        ch = pattern[pos]
        pos += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            klass, pos = _char_class(pattern, pos)
            if klass is None:
                return None
            out.append(klass)
        else:
            if ch == "\\":
                if pos == len(pattern):
                    return None
                ch, pos = pattern[pos], pos + 1
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _char_class(pattern: str, pos: int) -> tuple[str | None, int]:
    """A ``[...]`` class starting after ``[`` (``^`` negates, ``a-z`` ranges, ``\\`` escapes)."""
    out = "[^" if pattern.startswith("^", pos) else "["
    pos += pattern.startswith("^", pos)
    count = 0
    while True:
        if pos >= len(pattern):
            return None, pos
        if pattern[pos] == "]" and count:
            return out + "]", pos + 1
        low, pos = _class_char(pattern, pos)
        if low is None:
            return None, pos
        out += re.escape(low)
        if pattern.startswith("-", pos):
            high, pos = _class_char(pattern, pos + 1)
            if high is None or high < low:
                return None, pos
            out += "-" + re.escape(high)
        count += 1


def _class_char(pattern: str, pos: int) -> tuple[str | None, int]:
    if pos >= len(pattern) or pattern[pos] in "-]":
        return None, pos
    if pattern[pos] == "\\":
        pos += 1
        if pos >= len(pattern):
            return None, pos
    return pattern[pos], pos + 1


def relative_source(path: str) -> str:
    """A source as docker looks it up: leading ``/`` then ``./`` removed (``.`` stays)."""
    return path.lstrip("/").removeprefix("./")


def check_inside(path: str, instruction: str) -> None:
    """Refuse a context source that climbs out of the context (docker's wording)."""
    rel = relative_source(path)
    cleaned = posixpath.normpath(rel) if rel else "."
    if cleaned == ".." or cleaned.startswith("../"):
        raise InvalidParameter(f"{instruction} failed: forbidden path outside the build context: {rel} ()")


def resolve_sources(tree: SourceTree, paths: list[str], instruction: str, *, in_context: bool,
                    extract: bool = False) -> list[CopySource]:
    """The sources ``paths`` name in ``tree``, in order (wildcard matches in walk order).

    Raises InvalidParameter: forbidden path (context only), a missing file (``file not found
    in build context or excluded by .dockerignore: stat x: file does not exist``), a symlink
    loop, or no file at all (``no source files were specified``).
    """
    found: list[CopySource] = []
    for given in paths:
        if in_context:
            check_inside(given, instruction)
        rel = relative_source(given)
        if has_wildcards(rel):
            found += _wildcard(tree, rel, extract)
            continue
        try:
            full = tree.resolve(rel)
        except InvalidParameter as err:  # a symlink loop: say which step met it, as other failures do
            raise InvalidParameter(f"{instruction} failed: {err.message}") from None
        if not os.path.lexists(full):
            where = "file not found in build context or excluded by .dockerignore: " if in_context else ""
            raise InvalidParameter(f"{instruction} failed: {where}stat {rel}: file does not exist")
        found.append(_source(tree, rel, full, extract))
    if not found:
        raise InvalidParameter(f"{instruction} failed: no source files were specified")
    return found


def _source(tree: SourceTree, rel: str, full: Path, extract: bool) -> CopySource:
    unpack = extract and full.is_file() and is_archive(full)
    return CopySource(tree, rel, full, tree.source_sum(rel), unpack)


def _wildcard(tree: SourceTree, pattern: str, extract: bool) -> list[CopySource]:
    regex = _match_regex(posixpath.normpath(pattern))
    if regex is None:
        return []
    return [_source(tree, rel, tree.resolve(rel), extract)
            for rel, _ in fsutil.walk(tree.root) if regex.match(rel)]


def is_archive(path: Path) -> bool:
    """True when ``path`` is a tar, maybe gzip/bzip2/xz compressed (docker's ``isArchivePath``)."""
    try:
        with open(path, "rb") as raw, tarfile.open(fileobj=decompress(raw), mode="r|") as tar:
            return tar.next() is not None
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return False


def sources_sum(sources: list[CopySource]) -> str:
    """The checksum in the step's history: one source's sum, else ``multi:`` over all."""
    if len(sources) == 1:
        return sources[0].sum
    return hash_strings("multi", [s.sum for s in sources])


def destination(workdir: str, dest: str) -> str:
    """docker's ``normalizeDest``: a relative ``dest`` joined to WORKDIR, trailing ``/`` kept."""
    if dest.startswith("/"):
        return dest
    joined = posixpath.join("/", workdir or "/", dest)
    joined = posixpath.normpath(joined)
    return joined + "/" if dest.endswith("/") and joined != "/" else joined


def check_destination(sources: list[CopySource], dest: str, instruction: str) -> None:
    """Several sources need a directory destination written with a trailing ``/``."""
    if len(sources) > 1 and not dest.endswith("/"):
        raise InvalidParameter(f"When using {instruction} with more than one source file, the destination must "
                               "be a directory and end with a /")


@dataclass
class Writer:
    """Copies sources into the root filesystem ``root`` (a mounted snapshot) for one step."""

    root: Path
    owner: tuple[int, int] = (0, 0)
    chmod: int | None = None

    def __post_init__(self) -> None:
        self._kept: dict[Path, int] = {}      # existing directories written into -> their mtime
        self._stamped: set[Path] = set()      # destinations given their source's mtime
        self._created: list[Path] = []
        self._dir_times: list[tuple[Path, int]] = []
        self._links: dict[tuple[int, int], Path] = {}

    def copy(self, source: CopySource, dest: str) -> None:
        """Copy one source to the (absolute, normalised) destination."""
        target = fsutil.secure_join(self.root, dest)
        if source.extract:
            self.make_dirs(target)
            with open(source.path, "rb") as raw:
                root_mtime = extract_tar(raw, target)
            if root_mtime is not None:
                self._stamp(target, root_mtime)
        elif source.path.is_dir():
            self.make_dirs(target)
            self._copy_tree(source.path, target)
            if source.path != source.tree.root:
                self._stamp(target, os.lstat(source.path).st_mtime_ns)
        else:
            if dest.endswith("/") or target.is_dir():
                target = target / posixpath.basename(source.name.rstrip("/") or source.path.name)
            self.make_dirs(target.parent)
            self._copy_entry(source.path, target, os.stat(source.path))

    def finish(self) -> None:
        """Set directory mtimes now that nothing changes inside them (see module docstring)."""
        for path, ns in reversed(self._dir_times):
            os.utime(path, ns=(ns, ns), follow_symlinks=False)
        for path in self._created:
            os.utime(path, ns=(0, 0), follow_symlinks=False)
        for path, ns in self._kept.items():
            if path.is_dir() and not path.is_symlink():
                os.utime(path, ns=(ns, ns), follow_symlinks=False)

    def make_dirs(self, target: Path) -> None:
        """Create ``target`` (inside ``root``) and its missing parents, 0755, owned by the step's
        owner. Raises InvalidParameter when one of them exists and is not a directory."""
        rel = target.relative_to(self.root)
        current = self.root
        self._keep_time(current)
        for part in rel.parts:
            current = current / part
            if os.path.lexists(current) and (current.is_symlink() or not current.is_dir()):
                raise InvalidParameter(f"failed to copy files: mkdir /{current.relative_to(self.root)}: "
                                       "not a directory")
            if not current.exists():
                os.mkdir(current, 0o755)
                os.chown(current, *self.owner)
                os.chmod(current, 0o755)
                self._created.append(current)
            else:
                self._keep_time(current)

    def _stamp(self, directory: Path, ns: int) -> None:
        """Give ``directory`` the mtime ``ns`` at :meth:`finish` (a later copy to it wins)."""
        if directory in self._created:
            self._created.remove(directory)
        self._kept.pop(directory, None)
        self._stamped.add(directory)
        self._dir_times = [(path, t) for path, t in self._dir_times if path != directory]
        self._dir_times.append((directory, ns))

    def _keep_time(self, path: Path) -> None:
        if path not in self._kept and path not in self._created and path not in self._stamped:
            self._kept[path] = os.lstat(path).st_mtime_ns

    def _copy_tree(self, source: Path, target: Path) -> None:
        for rel, st in fsutil.walk(source):
            self._copy_entry(source / rel, target / rel, st)

    def _copy_entry(self, source: Path, target: Path, st: os.stat_result) -> None:
        if os.path.lexists(target) and not (stat.S_ISDIR(st.st_mode) and target.is_dir()
                                            and not target.is_symlink()):
            _remove(target)
        self._kept.pop(target, None)
        kind = stat.S_IFMT(st.st_mode)
        inode = (st.st_dev, st.st_ino)
        if kind != stat.S_IFDIR and st.st_nlink > 1 and inode in self._links:
            os.link(self._links[inode], target, follow_symlinks=False)
            return
        if kind == stat.S_IFDIR:
            if not target.exists():
                os.mkdir(target, 0o700)
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(source), target)
        elif kind == stat.S_IFREG:
            _copy_file(source, target)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
            os.mknod(target, kind | 0o600, st.st_rdev)
        else:
            return  # sockets cannot be copied (tar has no type for them)
        if st.st_nlink > 1 and kind != stat.S_IFDIR:
            self._links[inode] = target
        self._set_metadata(source, target, st)

    def _set_metadata(self, source: Path, target: Path, st: os.stat_result) -> None:
        os.chown(target, *self.owner, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(target, self.chmod if self.chmod is not None else stat.S_IMODE(st.st_mode))
            for name, value in fsutil.read_xattrs(source).items():
                try:
                    os.setxattr(target, name, value, follow_symlinks=False)
                except OSError:
                    pass
        if stat.S_ISDIR(st.st_mode):
            self._dir_times.append((target, st.st_mtime_ns))
        else:
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_file(source: Path, target: Path) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)
