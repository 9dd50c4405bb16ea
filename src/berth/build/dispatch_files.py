"""Instructions that change files without running anything: COPY, ADD and WORKDIR.

The step's sources are resolved and checksummed first (the cache key), then — on a miss — the
files are written into a writable view of the parent image (see :mod:`berth.build.workspace`)
and the diff becomes the step's layer. History reads as docker 20.10 writes it:
``/bin/sh -c #(nop) COPY file:<sum> in /dest `` and ``/bin/sh -c #(nop) WORKDIR /app``.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import os
import posixpath
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from berth.build import copy as copying
from berth.build.commands import CopyCommand, ValueCommand
from berth.build.identity import parse_chmod, parse_chown
from berth.build.instructions import Instruction
from berth.build.job import Step
from berth.build.remote import download, is_url
from berth.build.shell import expand_heredoc
from berth.build.sources import SourceTree
from berth.errors import InvalidParameter, NotFound
from berth.snapshots import fsutil

_UNSUPPORTED = ("parents", "exclude")
_TIMEOUT = 60


def normalize_workdir(current: str, requested: str) -> str:
    """docker's ``normalizeWorkdir``: an absolute path as given, a relative one joined to the
    current WORKDIR and cleaned."""
    if requested.startswith("/"):
        return requested
    return posixpath.normpath(posixpath.join("/", current or "/", requested))


def make_workdir(root: Path, path: str) -> None:
    """Create ``path`` (and parents) in the root filesystem ``root``, 0755 root-owned, as docker's
    ``SetupWorkingDirectory`` does. Raises InvalidParameter when a component is not a directory."""
    target = fsutil.secure_join(root, posixpath.normpath(path))
    writer = copying.Writer(root)
    try:
        writer.make_dirs(target)
    except InvalidParameter:
        raise InvalidParameter(f"Cannot mkdir: {posixpath.normpath(path)} is not a directory") from None
    writer.finish()


async def workdir(step: Step, command: ValueCommand, instr: Instruction) -> None:
    """WORKDIR: set, created when missing (a layer holding the new directories)."""
    path = normalize_workdir(step.state.config.get("WorkingDir") or "", command.value)
    step.state.config["WorkingDir"] = path
    container_config = step.state.run_config(step.comment_cmd(f"WORKDIR {path}", joined=True))
    if await step.probe(container_config):
        return
    layer = await asyncio.to_thread(step.job.workspace.make_layer, step.state.image,
                                    lambda root: make_workdir(root, path))
    await step.commit(container_config, layer=layer)


async def copy(step: Step, command: CopyCommand, instr: Instruction) -> None:
    """COPY and ADD (``command.add``)."""
    name = "ADD" if command.add else "COPY"
    for flag in _UNSUPPORTED:
        if flag in instr.flags:
            raise InvalidParameter(f"the --{flag} option is not supported by berth's builder")
    chmod = parse_chmod(command.chmod) if command.chmod else None
    sources = await _sources(step, command, name)
    copying.check_destination(sources, command.dest, name)
    # dockerd 20.10 writes the --chown value glued to the checksum ("--chown=1:2multi:...").
    chown = f"--chown={command.chown}" if command.chown else ""
    comment = f"{name} {chown}{copying.sources_sum(sources)} in {command.dest} "
    container_config = step.state.run_config(step.comment_cmd(comment, joined=True))
    extra = {"chown": command.chown or "", "chmod": command.chmod or ""}
    if await step.probe(container_config, extra):
        return
    dest = copying.destination(step.state.config.get("WorkingDir") or "", command.dest)

    def change(root: Path) -> None:
        owner = parse_chown(root, command.chown) if command.chown else (0, 0)
        writer = copying.Writer(root, owner, chmod)
        for source in sources:
            writer.copy(source, dest)
        writer.finish()

    layer = await asyncio.to_thread(step.job.workspace.make_layer, step.state.image, change)
    await step.commit(container_config, extra, layer=layer)


async def _sources(step: Step, command: CopyCommand, name: str) -> list[copying.CopySource]:
    """Resolve (and checksum) every source: context paths, ``--from`` paths, URLs, heredocs."""
    urls = [s for s in command.sources if is_url(s)]
    if urls and not command.add:
        raise InvalidParameter(f"{name} failed: source can't be a URL for COPY")
    if command.from_stage is not None:
        tree = await _from_tree(step, command.from_stage)
        in_context = False
    else:
        tree, in_context = step.job.context.tree, True
    paths = [s for s in command.sources if not is_url(s)]
    found: list[copying.CopySource] = []
    if paths:
        found += await asyncio.to_thread(copying.resolve_sources, tree, paths, name, in_context=in_context,
                                         extract=command.add)
    for url in urls:
        found.append(await asyncio.to_thread(_download, step, url, command.checksum))
    for doc in command.heredoc_sources:
        found.append(await asyncio.to_thread(_heredoc, step, doc.name, expand_heredoc(
            doc, step.state.scope.variables(), step.job.plan.escape)))
    if not found:
        raise InvalidParameter(f"{name} failed: no source files were specified")
    return found


async def _from_tree(step: Step, ref: str) -> SourceTree:
    """The root filesystem ``--from`` names: an earlier stage (name or index) or an image."""
    image = None
    index = step.job.find_stage(ref, step.stage_index)
    if index is not None:
        image = await step.job.stage_image(index, step.channel)
    else:
        try:
            image = step.job.images.get(ref)
        except NotFound as exc:
            raise InvalidParameter(f"invalid from flag value {ref}: {exc.message}") from None
    if image is None:
        root = await asyncio.to_thread(step.job.workspace.temp_dir, "scratch")
    else:
        root = await asyncio.to_thread(step.job.workspace.mount_image, image)
    return SourceTree(root, None, f"stage {ref}")


def _heredoc(step: Step, name: str, content: str) -> copying.CopySource:
    """A COPY/ADD here-document as a file named after its delimiter (mode 0644, mtime 0)."""
    directory = step.job.workspace.temp_dir("heredoc")
    path = directory / name
    path.write_text(content)
    os.chmod(path, 0o644)
    os.utime(path, ns=(0, 0))
    tree = SourceTree(directory, None, "heredoc")
    return copying.CopySource(tree, name, path, tree.source_sum(name))


def _download(step: Step, url: str, checksum: str | None) -> copying.CopySource:
    """``ADD <url>``: the file named by the URL's last path element, mode 0600, mtime from
    Last-Modified (0 without one), as docker's ``downloadSource``."""
    filename = urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    if not filename:
        raise InvalidParameter(f"cannot determine filename from url: {url}")
    directory = step.job.workspace.temp_dir("download")
    path = directory / filename
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(download(url), timeout=_TIMEOUT) as response, open(path, "xb") as out:  # noqa: S310
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            modified = response.headers.get("Last-Modified")
    except urllib.error.HTTPError as exc:
        raise InvalidParameter(f"ADD failed: failed to GET {url} with status {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise InvalidParameter(f'ADD failed: Get "{url}": {getattr(exc, "reason", exc)}') from None
    if checksum and checksum != "sha256:" + digest.hexdigest():
        raise InvalidParameter(f"ADD failed: digest mismatch {checksum}: sha256:{digest.hexdigest()}")
    os.chmod(path, 0o600)
    mtime = 0
    if modified:
        try:
            mtime = int(email.utils.parsedate_to_datetime(modified).timestamp())
        except (TypeError, ValueError):
            mtime = 0
    os.utime(path, (mtime, mtime))
    tree = SourceTree(directory, None, "download")
    return copying.CopySource(tree, filename, path, tree.source_sum(filename))

