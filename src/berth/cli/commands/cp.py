"""``cp``: copying files between a container and the local filesystem (or a tar stream on ``-``).

Sources: docker CLI reference "docker cp" (its path rules: trailing ``/`` and ``/.``, symlinks
followed with ``-L``, what may overwrite what); Engine API v1.41 "ContainerArchive",
"ContainerArchiveInfo", "PutContainerArchive". The pure path rules (``split_cp_arg``, ``plan_copy``,
``rebase``) are unit-tested without a daemon.
"""

from __future__ import annotations

import os
import posixpath
import stat
import sys
from typing import Any

from berth.cli import output
from berth.cli.flags import FlagSet
from berth.client.api import APIError, path_quote

# ----- cp: path rules (pure) ----------------------------------------------------------------------------

class CopyError(Exception):
    """A ``cp`` refusal; the message is docker's (``no such directory``, ``cannot copy directory``...)."""


class CopyInfo:
    """One side of a copy: ``path``, whether it ``exists`` and ``is_dir``, and the ``rebase_name`` its
    archive root takes when a followed symlink had another name (docker's ``archive.CopyInfo``)."""

    def __init__(self, path: str, exists: bool = False, is_dir: bool = False, rebase_name: str = "") -> None:
        self.path, self.exists, self.is_dir, self.rebase_name = path, exists, is_dir, rebase_name

    def __repr__(self) -> str:
        return f"CopyInfo({self.path!r}, exists={self.exists}, is_dir={self.is_dir}, rebase={self.rebase_name!r})"


def split_cp_arg(arg: str) -> tuple[str, str]:
    """``CONTAINER:PATH`` -> (container, path); a local path (absolute, or starting with ``.``, or
    without a colon) -> ("", path)."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return "", arg
    return container, path


def asserts_directory(path: str) -> bool:
    """A path ending in ``/`` or naming ``.`` (``dir/.``, ``.``, empty) must be a directory."""
    return path.endswith("/") or split_dir_entry(path)[1] == "."


def split_dir_entry(path: str) -> tuple[str, str]:
    """(parent, entry) of a path after Go's ``filepath.Clean``, keeping a trailing ``/.``:
    ``/a/b/`` -> (``/a``, ``b``); ``/a/b/.`` -> (``/a/b``, ``.``); ``/`` -> (``/``, ``/``)."""
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if path == "." or path.endswith("/.") and cleaned != ".":
        return cleaned, "."
    if cleaned == "/":
        return "/", "/"
    parent = posixpath.dirname(cleaned) or "."
    return parent, posixpath.basename(cleaned)


def rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """After following a symlink: (resolved path keeping ``path``'s trailing ``/`` or ``/.``, the
    name the archive root must take, or "" when the base names already agree)."""
    if path.endswith("/.") and not resolved.endswith("/."):
        resolved += "/."
    elif path.endswith("/") and not resolved.endswith("/"):
        resolved += "/"
    src_base, res_base = split_dir_entry(path)[1], split_dir_entry(resolved)[1]
    return resolved, src_base if src_base != res_base else ""


def plan_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, str, str]:
    """Where to extract an archive of ``src`` so that it lands at ``dst`` ("docker cp" rules).

    Returns (directory to extract into, archive root name, new root name); the names are equal when
    no entry needs renaming. Raises CopyError: ``cannot copy directory`` (directory onto a file),
    ``no such directory`` (file to a missing path asserting a directory).
    """
    dst_dir, dst_base = split_dir_entry(dst.path)
    src_base = src.rebase_name or split_dir_entry(src.path)[1]
    if dst.exists and dst.is_dir:
        return dst.path, src_base, src_base
    if dst.exists and src.is_dir:
        raise CopyError("cannot copy directory")
    if not dst.exists and not src.is_dir and asserts_directory(dst.path):
        raise CopyError("no such directory")
    return dst_dir, src_base, dst_base


def rebase(name: str, old: str, new: str) -> str:
    """An archive entry's name with its root ``old`` renamed to ``new`` (other entries unchanged)."""
    if old == new:
        return name
    if old == "/":
        return new + "/" + name.lstrip("/") if name.strip("/") else new
    if name == old or name == old + "/":
        return new + name[len(old):]
    if name.startswith(old + "/"):
        return new + name[len(old):]
    return name


# ----- cp: the two directions ------------------------------------------------------------------------------

# Go's os.FileMode type bits, as the path-stat header carries them
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_IRREGULAR = 1 << 19


def container_stat(client: Any, container: str, path: str) -> dict[str, Any]:
    """HEAD /containers/{id}/archive: the path's stat (see :func:`path_stat`). Raises APIError."""
    response = client.request("HEAD", f"/containers/{path_quote(container)}/archive", {"path": path})
    return path_stat(response.headers)


def path_stat(headers: dict[str, str]) -> dict[str, Any]:
    """The decoded ``X-Docker-Container-Path-Stat`` header (base64 JSON: ``name``, ``size``, ``mode``
    as Go's ``os.FileMode`` bits, ``mtime``, ``linkTarget``); ``{}`` when absent."""
    import base64
    import json
    return json.loads(base64.b64decode(headers.get("x-docker-container-path-stat", "") or "e30="))


def _link_target(st: dict[str, Any], path: str) -> str:
    """Where a symlink reported by :func:`path_stat` at ``path`` points, as an absolute path."""
    target = st.get("linkTarget", "")
    return target if target.startswith("/") else posixpath.join(posixpath.dirname(path), target)


def cp(ctx: Any, argv: list[str], prog: str) -> int:
    """``cp`` between a container and the local filesystem (or a tar on stdin/stdout with ``-``)."""
    fs = FlagSet(prog, "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
                 "Copy files/folders between a container and the local filesystem", 2, 2)
    fs.add("-a, --archive", help="Archive mode (copy all uid/gid information)")
    fs.add("-L, --follow-link", help="Always follow symbol link in SRC_PATH")
    fs.add("-q, --quiet", help="Suppress progress output during copy. Progress output is automatically "
                               "suppressed if no terminal is attached")
    args, (source, destination) = fs.parse_or_exit(argv)
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    if src_container and dst_container:
        sys.stderr.write("copying between containers is not supported\n")
        return 1
    if not src_container and not dst_container:
        sys.stderr.write("must specify at least one container source\n")
        return 1
    progress = not args.quiet and os.isatty(sys.stderr.fileno())
    try:
        if src_container:
            copied = _copy_from_container(ctx.client, src_container, src_path, dst_path, args.follow_link)
            shown = "STDOUT" if dst_path == "-" else os.path.abspath(dst_path)
        else:
            copied = _copy_to_container(ctx.client, src_path, dst_container, dst_path, args)
            shown = destination
    except CopyError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    if progress and copied >= 0:
        sys.stderr.write(f"Successfully copied {output.human_size(copied)} to {shown}\n")
    return 0


class _CountingReader:
    """A file-like wrapper counting the bytes read through it."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.count = raw, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


def _copy_from_container(client: Any, container: str, src_path: str, dst_path: str, follow: bool) -> int:
    rename = ""
    if follow:
        try:
            st = container_stat(client, container, src_path)
        except APIError:
            st = {}
        if st.get("mode", 0) & GO_MODE_SYMLINK:
            src_path, rename = rebase_name(src_path, _link_target(st, src_path))
    if dst_path != "-":
        _check_output_path(dst_path)
    response = client.request("GET", f"/containers/{path_quote(container)}/archive", {"path": src_path},
                              stream=True)
    if dst_path == "-":
        for chunk in response.iter_chunks():
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return -1
    st = path_stat(response.headers)
    src = CopyInfo(src_path, True, bool(st.get("mode", 0) & GO_MODE_DIR), rename)
    dst = local_destination(_absolute_keep_trailer(dst_path))
    target_dir, old, new = plan_copy(src, dst)
    original = split_dir_entry(src_path)[1]
    counted = _CountingReader(response.raw)
    extract_archive(counted, target_dir, lambda name: rebase(rebase(name, original, rename or original), old, new))
    response.close()
    return counted.count


def _absolute_keep_trailer(path: str) -> str:
    absolute = os.path.abspath(path)
    if path.endswith("/.") or path == ".":
        return absolute.rstrip("/") + "/."
    if path.endswith("/"):
        return absolute.rstrip("/") + "/"
    return absolute


def _check_output_path(path: str) -> None:
    """docker's ``ValidateOutputPath``: the parent directory must exist; an existing path must not be
    a device."""
    absolute = _absolute_keep_trailer(path)
    parent = os.path.dirname(os.path.normpath(absolute))
    if not os.path.exists(parent):
        raise CopyError(f'invalid output path: directory "{parent}" does not exist')
    try:
        mode = os.stat(absolute).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CopyError(str(exc)) from None
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise CopyError(f'invalid output path: "{absolute}" must be a directory or a regular file: got a device')


def local_destination(path: str) -> CopyInfo:
    """The local destination, a symlink at its end followed (at most 10 times)."""
    current = path
    for _ in range(10):
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return CopyInfo(current)
        except NotADirectoryError:
            raise CopyError("not a directory") from None
        if not stat.S_ISLNK(st.st_mode):
            return CopyInfo(current, True, stat.S_ISDIR(st.st_mode))
        target = os.readlink(current.rstrip("/"))
        current = rebase_name(current, os.path.join(os.path.dirname(current.rstrip("/")), target))[0]
    raise CopyError(f"too many symlinks in {path}")


def _copy_to_container(client: Any, src_path: str, container: str, dst_path: str, args: Any) -> int:
    dst = _container_destination(client, container, dst_path)
    params = {"path": dst.path, "noOverwriteDirNonDir": "true", "copyUIDGID": "true" if args.archive else None}
    if src_path == "-":
        if not (dst.exists and dst.is_dir):
            raise CopyError(f'destination "{container}:{dst_path}" must be a directory')
        counted = _CountingReader(sys.stdin.buffer)
        body = iter(lambda: counted.read(1 << 20), b"")
        client.request("PUT", f"/containers/{path_quote(container)}/archive", params, body=body,
                       headers={"Content-Type": "application/x-tar"})
        return counted.count
    from berth.cli.tarstream import TarStream
    src = local_source(src_path, args.follow_link)
    target_dir, old, new = plan_copy(src, dst)
    tar = TarStream(source_entries(src, lambda name: rebase(name, old, new)), owner=None)
    params["path"] = target_dir
    try:
        client.request("PUT", f"/containers/{path_quote(container)}/archive", params, body=iter(tar),
                       headers={"Content-Type": "application/x-tar"})
    except OSError as exc:
        raise CopyError(str(exc)) from None
    return tar.written


def _container_destination(client: Any, container: str, path: str) -> CopyInfo:
    """The destination inside the container (a symlink followed once); a failed stat means "does
    not exist", and the extraction reports any real conflict."""
    try:
        st = container_stat(client, container, path)
        if st.get("mode", 0) & GO_MODE_SYMLINK:
            path = rebase_name(path, _link_target(st, path))[0]
            st = container_stat(client, container, path)
    except APIError:
        return CopyInfo(path)
    mode = st.get("mode", 0)
    refusal = "got a device" if mode & GO_MODE_DEVICE else "got an irregular file" if mode & GO_MODE_IRREGULAR else ""
    if refusal:
        raise CopyError(f'destination "{container}:{path}" must be a directory or a regular file: {refusal}')
    return CopyInfo(path, True, bool(mode & GO_MODE_DIR))


def local_source(path: str, follow: bool) -> CopyInfo:
    """The local source: with ``follow`` every symlink is resolved (the archive root keeps the name
    given); otherwise only the parent directory's, so that a symlink is copied as a link."""
    absolute = _absolute_keep_trailer(path)
    if follow:
        resolved, rename = rebase_name(absolute, os.path.realpath(absolute))
    else:
        parent, base = split_dir_entry(absolute)
        resolved = os.path.join(os.path.realpath(parent), base) if base not in ("/", ".") else absolute
        resolved, rename = rebase_name(absolute, resolved)[0], ""
    try:
        st = os.lstat(resolved)
    except NotADirectoryError:
        raise CopyError("not a directory") from None
    except OSError as exc:
        raise CopyError(f"lstat {resolved}: {(exc.strerror or str(exc)).lower()}") from None
    return CopyInfo(resolved, True, stat.S_ISDIR(st.st_mode), rename)


def source_entries(src: CopyInfo, rename: Any) -> list[Any]:
    """The tar entries of a local source: its root (named like the source, or its rebase name), then
    everything below it in lexical walk order, symlinks not followed."""
    from berth.cli.tarstream import LocalEntry
    root_name = src.rebase_name or split_dir_entry(src.path)[1]
    entries = [LocalEntry(src.path, rename(root_name))]
    if not src.is_dir:
        return entries

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda entry: entry.name)
        for child in children:
            name = f"{prefix}/{child.name}"
            entries.append(LocalEntry(child.path, rename(name)))
            if child.is_dir(follow_symlinks=False):
                walk(child.path, name)
    walk(src.path, root_name)
    return entries


def extract_archive(stream: Any, dest: str, rename: Any) -> None:
    """Extract a tar stream under ``dest``, renaming entries with ``rename``, never changing owners
    (docker's CLI untars with NoLchown), refusing entries that would leave ``dest`` and type changes
    between directories and other files (``noOverwriteDirNonDir``). Raises CopyError."""
    import tarfile

    class _NoChownTarFile(tarfile.TarFile):
        def chown(self, tarinfo: tarfile.TarInfo, targetpath: Any, numeric_owner: bool) -> None:
            pass

    root = os.path.realpath(dest)
    directories = []
    with _NoChownTarFile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            member.name = _inside(rename(member.name), member.name)
            if member.name == ".":
                continue
            if member.islnk():
                member.linkname = _inside(rename(member.linkname), member.linkname)
            target = os.path.join(root, member.name)
            parent = os.path.realpath(os.path.dirname(target))
            if parent != root and not parent.startswith(root + "/"):
                raise CopyError(f'"{member.name}" is outside of "{dest}"')
            _clear_target(target, member)
            tar.extract(member, root, set_attrs=not member.isdir(), filter="fully_trusted")
            if member.isdir():
                directories.append(member)
        for member in reversed(directories):
            path = os.path.join(root, member.name)
            tar.chmod(member, path)
            tar.utime(member, path)


def _inside(name: str, original: str) -> str:
    """An entry name made relative and clean; one climbing out with ``..`` is refused."""
    cleaned = posixpath.normpath("/" + name).lstrip("/") or "."
    if name.startswith("..") and (name == ".." or name.startswith("../")):
        raise CopyError(f'invalid archive entry "{original}": outside of the destination')
    return cleaned


def _clear_target(target: str, member: Any) -> None:
    """Make room for ``member`` at ``target``: replace a non-directory, keep a directory for a
    directory, refuse to change one kind into the other (docker's noOverwriteDirNonDir)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if member.isdir():
            return
        raise CopyError(f'cannot overwrite directory "{target}" with non-directory "{member.name}"')
    if member.isdir():
        raise CopyError(f'cannot overwrite non-directory "{target}" with directory "{member.name}"')
    os.unlink(target)
