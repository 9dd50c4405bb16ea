"""``docker commit``: a new image from a container's changes (Engine API v1.41 "Create a new image
from a container", ``POST /commit``; "docker commit" reference).

The container's upper dir becomes one layer on its image (volumes are mounts, never in it; mount
points the runtime created are, as with dockerd). The config is the request body (the
container's own Config when the body is empty), ``changes`` applied, then merged with the
container's Config the way ``docker run`` merges with an image. The history entry's
``created_by`` is the container's Cmd joined with spaces, as dockerd writes it. A container
that did not change anything gives an ``empty_layer`` entry and no new layer, as dockerd does.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
from typing import Any

from berth.containers.create import merge_image_config
from berth.containers.model import Container
from berth.errors import Conflict, InvalidParameter
from berth.images import reference as refs
from berth.images.changes import apply_changes
from berth.snapshots import fsutil
from berth.snapshots.layer import write_layer

PIPE_LIMIT = 8 << 20


class LayerPipe:
    """A bounded in-memory pipe between the thread writing a layer tar and the thread storing
    it; a writer failure reaches the reader as that exception (never as a short, valid tar)."""

    def __init__(self, limit: int = PIPE_LIMIT) -> None:
        self._buffer = bytearray()
        self._limit = limit
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def write(self, data: bytes) -> int:
        """Append ``data``, waiting while the buffer is full. BrokenPipeError once the reader left."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._buffer) < self._limit or self._closed)
            if self._closed:
                raise BrokenPipeError("layer reader closed")
            self._buffer += data
            self._cond.notify_all()
        return len(data)

    def close(self, error: BaseException | None = None) -> None:
        """End of data; with ``error`` the reader raises it instead of seeing the end."""
        with self._cond:
            self._closed = True
            self._error = error
            self._cond.notify_all()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all when negative), ``b""`` at the end; raises the writer's error."""
        with self._cond:
            self._cond.wait_for(lambda: self._buffer or self._closed)
            if self._error is not None:
                raise self._error
            size = len(self._buffer) if size is None or size < 0 else size
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            self._cond.notify_all()
            return data


def commit_config(c: Container, body: dict[str, Any] | None, changes: list[str]) -> dict[str, Any]:
    """The new image's Config: ``body`` (or the container's Config when empty) with ``changes``
    applied, merged with the container's Config. Raises InvalidParameter for a bad change line."""
    base = copy.deepcopy(body) if body else copy.deepcopy(c.config)
    return merge_image_config(apply_changes(base, changes), c.config)


def _reference(repo: str, tag: str) -> Any:
    if not repo:
        return None
    ref = refs.parse_normalized_named(repo + (f":{tag}" if tag else ""))
    if ref.digest:
        raise InvalidParameter("refusing to create a tag with a digest reference")
    return ref


def _is_empty(upper: Any) -> bool:
    with os.scandir(upper) as entries:
        return next(entries, None) is None and not fsutil.is_opaque(upper)


async def commit(containers: Any, ref: str, body: dict[str, Any] | None, *, repo: str = "", tag: str = "",
                 comment: str = "", author: str = "", changes: list[str] | None = None,
                 pause: bool = True) -> dict[str, str]:
    """``POST /commit``: returns ``{"Id": "sha256:..."}``; tags ``repo[:tag]`` when ``repo`` is given.

    Raises NotFound (container), InvalidParameter (reference, changes), Conflict (removal in progress).
    """
    if not ref:
        raise InvalidParameter('invalid name or ID supplied: ""')
    c = containers.get(ref)
    if c.state.status == "removing":
        raise Conflict(f"You cannot commit container {c.id} which is being removed")
    if c.state.status == "dead":
        raise Conflict(f"You cannot commit container {c.id} which is Dead")
    target = _reference(repo, tag)
    config = commit_config(c, body, changes or [])
    paused_here = pause and c.state.running and c.state.status == "running"
    if paused_here:
        await containers.pause(c.id, by_commit=True)
    try:
        image = await _write_image(containers, c, config, comment, author)
        if target is not None:
            containers.images.tag(image.id, repo, tag)
        attrs = {str(k): str(v) for k, v in (c.config.get("Labels") or {}).items()}
        attrs.update({"comment": comment, "imageID": image.id, "imageRef": target.familiar() if target else "",
                      "image": c.image, "name": c.name})
        containers.events.publish("container", "commit", c.id, attrs)
    finally:  # dockerd's order of events: pause, tag, commit, unpause
        # Only the commit's own pause: one the user made meanwhile (after an unpause) stays.
        if paused_here and c.state.status == "paused" and c.state.commit_paused:
            await containers.unpause(c.id)
    return {"Id": image.id}


async def _write_image(containers: Any, c: Container, config: dict[str, Any], comment: str, author: str) -> Any:
    """Store the container's upper dir as a layer on its image, the tar streamed from one worker
    thread to another through a :class:`LayerPipe`."""
    runner, images = containers.runner, containers.images
    parent = images.store.by_id(c.image_id)
    upper, lowers = runner.upper(c.id), runner.lowers(c.id)
    history = {"created_by": " ".join(c.config.get("Cmd") or []), "comment": comment, "author": author}
    extra = {"container": c.id, "container_config": c.config, "author": author, "comment": comment}
    if await asyncio.to_thread(_is_empty, upper):
        return await asyncio.to_thread(images.create_image, parent, config, history, **extra)
    pipe = LayerPipe()

    def produce() -> None:
        try:
            write_layer(upper, pipe, lower=lowers)  # type: ignore[arg-type]
        except BaseException as exc:
            pipe.close(exc if not isinstance(exc, BrokenPipeError) else None)
            raise
        pipe.close()

    def store() -> Any:
        try:
            return images.create_image(parent, config, history, layer=pipe, **extra)
        finally:
            pipe.close(BrokenPipeError("layer reader closed"))

    writer = asyncio.ensure_future(asyncio.to_thread(produce))
    try:
        image = await asyncio.to_thread(store)
    finally:
        try:
            await writer
        except BrokenPipeError:
            pass
    return image
