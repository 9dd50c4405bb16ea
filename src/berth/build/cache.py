"""The build cache (docker 20.10's classic rules, "Leverage build cache" in the best-practices
guide and ``image/cache``).

A step hits when an image exists whose local parent is the step's parent image and whose
``container_config`` matches the step's: the command (RUN's text with the ``|N k=v`` build
args in use, a metadata instruction's ``#(nop)`` comment, COPY/ADD's content checksum), and the
environment, labels, ports, volumes, entrypoint, user and working directory it runs with. The
key is a digest of exactly those fields (plus COPY's ``--chown``/``--chmod``, which docker left
out), kept in the SQLite ``build_cache`` table, so hits survive daemon restarts; a row whose
image is gone is dropped on sight.

``--cache-from`` images are extra sources: when given, a local hit counts only if it is in the
parent chain of one of them (as docker does), and a source whose history continues the parent's
history with a ``created_by`` equal to the step's command gives the hit directly, even for an
image pulled or loaded without its parent chain (the missing intermediate image is rebuilt
from the source's layer and history entry).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from berth.images.model import Image

#: container_config fields that decide a hit (docker compares Cmd, Env, Labels, ExposedPorts,
#: Entrypoint, Volumes, User, Tty, OpenStdin; the rest change the command comment anyway).
KEY_FIELDS = ("Cmd", "Entrypoint", "Env", "Labels", "ExposedPorts", "Volumes", "User", "WorkingDir", "Tty",
              "OpenStdin", "Shell", "Healthcheck", "StopSignal", "OnBuild")


def cache_key(container_config: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """The digest of the fields of ``container_config`` that decide a hit, plus ``extra``."""
    chosen = {name: container_config.get(name) or None for name in KEY_FIELDS}
    text = json.dumps([chosen, extra or {}], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CacheProbe:
    """What a step looks up: its parent image, key, command (as history shows it) and the
    config the step's image has (used when an image is rebuilt from a ``--cache-from`` source)."""

    parent: Image | None
    key: str
    created_by: str
    config: dict[str, Any] = field(default_factory=dict)


class BuildCache:
    """Cache lookups for one build. ``images`` is the ImageService; ``sources`` the resolved
    ``--cache-from`` images; ``enabled`` False for ``--no-cache`` (nothing is looked up, every
    new step image is still recorded)."""

    def __init__(self, images: Any, sources: list[Image], enabled: bool = True) -> None:
        self.images = images
        self.db = images.store.db
        self.sources = list(sources)
        self.enabled = enabled

    async def probe(self, probe: CacheProbe) -> Image | None:
        """The cached image for the step, or None (a miss)."""
        if not self.enabled:
            return None
        return await asyncio.to_thread(self._lookup, probe)

    def _lookup(self, probe: CacheProbe) -> Image | None:
        local = self._local(probe)
        if not self.sources:
            return local
        if local is not None and any(self._in_chain(local, src) for src in self.sources):
            return local
        return self._from_sources(probe)

    def record(self, parent: Image | None, key: str, image: Image) -> None:
        """Remember that the step ``key`` on ``parent`` produced ``image``. Blocking (SQLite)."""
        self.db.execute("INSERT OR REPLACE INTO build_cache (parent, key, image_id) VALUES (?, ?, ?)",
                        (parent.id if parent else "", key, image.id))

    def _local(self, probe: CacheProbe) -> Image | None:
        parent_id = probe.parent.id if probe.parent else ""
        row = self.db.query_one("SELECT image_id FROM build_cache WHERE parent = ? AND key = ?",
                                (parent_id, probe.key))
        if row is None:
            return None
        image = self.images.store.by_id(row["image_id"])
        if image is None or image.parent != parent_id:
            self.db.execute("DELETE FROM build_cache WHERE parent = ? AND key = ?", (parent_id, probe.key))
            return None
        return image

    def _in_chain(self, image: Image, source: Image) -> bool:
        current: Image | None = source
        while current is not None:
            if current.id == image.id:
                return True
            current = self.images.store.by_id(current.parent) if current.parent else None
        return False

    def _from_sources(self, probe: CacheProbe) -> Image | None:
        history = (probe.parent.config.get("history") or []) if probe.parent else []
        diff_ids = probe.parent.diff_ids if probe.parent else []
        for source in self.sources:
            entries = source.config.get("history") or []
            if len(entries) <= len(history) or entries[: len(history)] != history:
                continue
            if source.diff_ids[: len(diff_ids)] != diff_ids:
                continue
            entry = entries[len(history)]
            if entry.get("created_by", "") != probe.created_by:
                continue
            self.sources = [source]  # stay on this source from now on, as docker does
            if len(entries) == len(history) + 1:
                self.record(probe.parent, probe.key, source)
                return source
            return self._restore(probe, source, entry)
        return None

    def _restore(self, probe: CacheProbe, source: Image, entry: dict[str, Any]) -> Image:
        """The step's image rebuilt from ``source``: the parent plus the source's layer for this
        history entry (if it has one) and that entry."""
        position = len((probe.parent.config.get("history") or []) if probe.parent else [])
        entries = source.config.get("history") or []
        layer_index = sum(1 for e in entries[:position] if not e.get("empty_layer"))
        stream = None
        if not entry.get("empty_layer"):
            stream = self.images.store.content.open(source.diff_ids[layer_index])
        try:
            image = self.images.create_image(probe.parent, probe.config, dict(entry), layer=stream,
                                             author=source.config.get("author", ""))
        finally:
            if stream is not None:
                stream.close()
        self.record(probe.parent, probe.key, image)
        return image
