"""The image service: import, list, inspect, history, tag, delete, prune, save and load.

Behaviour follows docker 20.10's image service (docs: "docker image rm", "docker image prune",
"docker import", "docker save", "docker load"). Blocking work (tar streams, unpacking) runs in the
caller's worker thread; events are published through ``publish`` from the event loop.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from berth.errors import Conflict, InvalidParameter, NotFound
from berth.images import listing, views
from berth.images import reference as refs
from berth.images.archive import LoadedImage, SaveItem, load_archive, write_save
from berth.images.changes import apply_changes
from berth.images.model import Image, encode_config, new_image_config
from berth.images.store import ImageStore
from berth.timeutil import rfc3339_nano

#: ``usage(image_id) -> [(container_id, running)]`` given by the daemon (containers sit above images).
UsageFn = Callable[[str], list[tuple[str, bool]]]
PublishFn = Callable[[str, str, str, dict[str, str]], Any]


@dataclass
class _Conflict:
    hard: bool
    used: bool
    message: str


def decompress(stream: BinaryIO) -> BinaryIO:
    """Wrap ``stream`` in a decompressor when it starts with a gzip, bzip2 or xz magic number
    (docker import accepts compressed tars)."""
    head = stream.read(6)
    rest = _Prefixed(head, stream)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=rest)  # type: ignore[return-value]
    if head.startswith(b"BZh"):
        return bz2.BZ2File(rest)  # type: ignore[return-value]
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(rest)  # type: ignore[return-value,arg-type]
    return rest  # type: ignore[return-value]


class _Prefixed(io.RawIOBase):
    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            data = self._prefix if n is None or n < 0 else self._prefix[:n]
            self._prefix = self._prefix[len(data):]
            return data
        return self._stream.read(n)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class ImageService:
    """Image operations over an :class:`ImageStore`; ``usage`` reports containers using an image."""

    def __init__(self, store: ImageStore, publish: PublishFn, usage: UsageFn | None = None) -> None:
        self.store = store
        self.publish = publish
        self.usage: UsageFn = usage or (lambda _id: [])

    # ----- lookups -----------------------------------------------------------------------
    def get(self, name: str) -> Image:
        """Resolve ``name`` (reference, ID or ID prefix). Raises NotFound."""
        return self.store.resolve(name)

    def inspect(self, name: str) -> dict[str, Any]:
        image = self.get(name)
        return views.inspect(image, self.graph_driver_data(image))

    def graph_driver_data(self, image: Image) -> dict[str, str]:
        top = image.top_layer
        if top is None:
            return {}
        snaps = self.store.snapshotter
        key = top.split(":", 1)[1]
        dirs = [str(snaps.root / k / "fs") for k in [key, *self._ancestors(key)]]
        data = {"MergedDir": str(snaps.root / key / "merged"), "UpperDir": dirs[0],
                "WorkDir": str(snaps.root / key / "work")}
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(dirs[1:])
        return data

    def _ancestors(self, key: str) -> list[str]:
        out = []
        parent = self.store.snapshotter.parent(key)
        while parent:
            out.append(parent)
            parent = self.store.snapshotter.parent(parent)
        return out

    def history(self, name: str) -> list[dict[str, Any]]:
        image = self.get(name)
        sizes = [layer.size for layer in self.store.layers_of(image)]
        chain = [image]
        while chain[-1].parent:
            parent = self.store.by_id(chain[-1].parent)
            if parent is None:
                break
            chain.append(parent)
        return views.history(image, sizes, chain)

    def list_images(self, all_: bool = False, filters: dict[str, list[str]] | None = None,
                    containers_count: bool = False) -> list[dict[str, Any]]:
        """``GET /images/json`` (see :func:`listing.list_images`). Raises InvalidParameter, NotFound."""
        def containers(image: Image) -> int:
            return len(self.usage(image.id)) if containers_count else -1

        return listing.list_images(self.store.images(), filters or {}, all_,
                                   lambda iid: bool(self.store.children(iid)), self.get, containers)

    # ----- references --------------------------------------------------------------------
    def tag(self, name: str, repo: str, tag: str = "") -> None:
        """``POST /images/{name}/tag?repo=&tag=``. Raises NotFound or InvalidParameter."""
        image = self.get(name)
        target = repo + (":" + tag if tag else "")
        ref = refs.parse_normalized_named(target)
        if ref.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        ref = refs.with_default_tag(ref)
        self.store.tag(image, str(ref))
        self.publish("image", "tag", image.id, {"name": ref.familiar()})

    # ----- import ------------------------------------------------------------------------
    def import_image(self, stream: BinaryIO, repo: str = "", tag: str = "", message: str = "",
                     changes: list[str] | None = None, source: str = "-") -> Image:
        """``POST /images/create?fromSrc=...``: a root filesystem tar (maybe compressed) as one layer.

        Config per ``docker import``: defaults from ``changes`` (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
        ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR), one history entry with the comment
        ``Imported from <source>`` (or ``message``). Raises InvalidParameter; leaves nothing on error.
        """
        target = None
        if repo:
            target = refs.with_default_tag(refs.parse_normalized_named(repo + (":" + tag if tag else "")))
        config = apply_changes({}, changes or [])
        layer = self.store.register_layer(decompress(stream), None)
        created = rfc3339_nano()
        comment = message or f"Imported from {source}"
        cfg = new_image_config(config=config, diff_ids=[layer.diff_id], created=created, comment=comment,
                               history=[{"created": created, "comment": comment}])
        image = self.store.add_image(encode_config(cfg))
        if target is not None:  # dockerd tags first, then logs the import
            self.store.tag(image, str(target))
            self.publish("image", "tag", image.id, {"name": target.familiar()})
        self.publish("image", "import", image.id, {"name": image.id})
        return image

    # ----- new images from a parent (commit, build) ---------------------------------------
    def create_image(self, parent: Image | None, config: dict[str, Any], history: dict[str, Any], *,
                     layer: BinaryIO | None = None, container: str = "",
                     container_config: dict[str, Any] | None = None, author: str = "",
                     comment: str = "") -> Image:
        """A child image of ``parent`` (None for scratch) with ``config`` (container.Config) and,
        when ``layer`` is given, one more layer read from that uncompressed tar stream.

        ``history`` is the new history entry (``created_by``, ``comment``...); ``created`` and
        ``empty_layer`` are filled in. The image's local parent is ``parent`` (docker's build cache
        and ``history`` rely on it). Blocking: run in a worker thread.
        """
        diff_ids = list(parent.diff_ids) if parent else []
        top = parent.top_layer if parent else None
        if layer is not None:
            registered = self.store.register_layer(layer, top)
            diff_ids.append(registered.diff_id)
        created = rfc3339_nano()
        entry = {"created": created, **{k: v for k, v in history.items() if v not in (None, "")}}
        if layer is None:
            entry["empty_layer"] = True
        base = parent.config if parent else {}
        cfg = new_image_config(config=config, diff_ids=diff_ids, created=created,
                               history=[*(base.get("history") or []), entry], comment=comment, author=author,
                               container=container, container_config_=container_config,
                               architecture=base.get("architecture", "amd64"), os_=base.get("os", "linux"))
        image = self.store.add_image(encode_config(cfg), parent.id if parent else "")
        return image

    # ----- save / load -------------------------------------------------------------------
    def save_items(self, names: list[str]) -> list[SaveItem]:
        """Resolve ``docker save`` arguments: a repository name without tag saves all its tags."""
        items: dict[str, SaveItem] = {}
        for name in names:
            found = self._save_targets(name)
            for image, tag in found:
                item = items.setdefault(image.id, SaveItem(image))
                if tag and tag not in item.tags:
                    item.tags.append(tag)
        return list(items.values())

    def _save_targets(self, name: str) -> list[tuple[Image, str | None]]:
        """What ``docker save NAME`` saves, in dockerd's order (tarexport parseNames): an ID, every
        tag of a repository named without a tag, else the one tag or digest named.
        Raises InvalidParameter, NotFound with dockerd's messages."""
        if len(name) == 64 and refs.is_image_id_prefix(name):
            return [(self._search(name, "sha256:" + name), None)]
        ref = refs.parse_normalized_named(name)
        if ref.familiar_name == "sha256":
            return [(self._search(name, name), None)]
        if not ref.tag and not ref.digest:
            tagged: list[tuple[Image, str | None]] = [
                (img, views.familiar(t)) for img in self.store.images() for t in img.tags
                if refs.parse_normalized_named(t).name == ref.name]
            return tagged or [(self._search(name, name), None)]
        image = self.store.by_reference(str(ref))
        if image is None:
            raise NotFound("reference does not exist")
        return [(image, ref.familiar() if ref.tag and not ref.digest else None)]

    def _search(self, prefix: str, shown: str) -> Image:
        image = self.store.by_id_prefix(prefix)
        if image is None:
            raise NotFound(f"No such image: {shown}")
        return image

    def save(self, items: list[SaveItem], out: BinaryIO) -> None:
        write_save(self.store, items, out)
        for item in items:
            self.publish("image", "save", item.image.id, {"name": item.image.id})

    def load(self, stream: BinaryIO) -> list[str]:
        """Load an archive; returns docker's messages (``Loaded image: busybox:latest``...)."""
        loaded: list[LoadedImage] = load_archive(self.store, decompress(stream))
        messages = []
        for item in loaded:
            for tag in item.tags:
                old = self.store.lookup(tag)
                if old is not None and old.id != item.image.id:
                    messages.append(f"The image {views.familiar(tag)} already exists, renaming the old one "
                                    f"with ID {old.id} to empty string")
                self.store.tag(item.image, tag)
                messages.append(f"Loaded image: {views.familiar(tag)}")
            if not item.tags:
                messages.append(f"Loaded image ID: {item.image.id}")
            self.publish("image", "load", item.image.id, {"name": item.image.id})
        return messages

    # ----- delete / prune ----------------------------------------------------------------
    def delete(self, name: str, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        """``DELETE /images/{name}`` with docker's untag-vs-delete rules. Raises NotFound, Conflict."""
        image = self.get(name)
        records: list[dict[str, str]] = []
        is_id = refs.is_image_id_prefix(name) and image.id.split(":", 1)[1].startswith(name.split(":")[-1])
        if not is_id:
            ref = refs.with_default_tag(refs.parse_normalized_named(name))
            if not force and self._single_reference(image):
                users = self.usage(image.id)
                if users:
                    raise Conflict(f'conflict: unable to remove repository reference "{name}" (must force) - '
                                   f"container {users[0][0][:12]} is using its referenced image {image.short_id}")
            self.store.untag(str(ref))
            records.append({"Untagged": ref.familiar()})
            self.publish("image", "untag", image.id, {"name": image.id})
            if not ref.digest and not any(refs.parse_normalized_named(t).name == ref.name for t in image.tags):
                for digest_ref in [d for d in image.digests if refs.parse_normalized_named(d).name == ref.name]:
                    self.store.untag(digest_ref)
                    records.append({"Untagged": views.familiar(digest_ref)})
            if image.tags or image.digests:
                return records
            self._delete_helper(image, records, force, prune, quiet=True)
            return records
        if self._single_reference(image):
            conflict = self._conflict(image, hard=True, soft_stopped=not force, soft_refs=False)
            if conflict:
                raise Conflict(self._conflict_message(image, conflict))
            for ref_str in list(image.tags) + list(image.digests):
                self.store.untag(ref_str)
                records.append({"Untagged": views.familiar(ref_str)})
                self.publish("image", "untag", image.id, {"name": image.id})
        self._delete_helper(image, records, force, prune, quiet=False)
        return records

    def _single_reference(self, image: Image) -> bool:
        """At most one tag, and every reference in the same repository (docker's isSingleReference)."""
        all_refs = image.tags + image.digests
        if len(image.tags) > 1:
            return False
        names = {refs.parse_normalized_named(r).name for r in all_refs}
        return len(names) <= 1

    def _conflict(self, image: Image, hard: bool, soft_stopped: bool, soft_refs: bool) -> _Conflict | None:
        if hard and self.store.children(image.id):
            return _Conflict(True, False, "image has dependent child images")
        users = self.usage(image.id)
        running = [cid for cid, is_running in users if is_running]
        if hard and running:
            return _Conflict(True, True, f"image is being used by running container {running[0][:12]}")
        if soft_refs and (image.tags or image.digests):
            return _Conflict(False, False, "image is referenced in multiple repositories")
        stopped = [cid for cid, is_running in users if not is_running]
        if soft_stopped and stopped:
            return _Conflict(False, True, f"image is being used by stopped container {stopped[0][:12]}")
        return None

    @staticmethod
    def _conflict_message(image: Image, conflict: _Conflict) -> str:
        how = "cannot be forced" if conflict.hard else "must be forced"
        return f"conflict: unable to delete {image.short_id} ({how}) - {conflict.message}"

    def _delete_helper(self, image: Image, records: list[dict[str, str]], force: bool, prune: bool,
                       quiet: bool) -> None:
        conflict = self._conflict(image, hard=True, soft_stopped=not force, soft_refs=not force)
        if conflict:
            # docker ignores the conflict of an image it only untagged unless that left it dangling
            # (no reference and no child), e.g. ``rmi`` of a tag whose image is a later build's parent.
            if quiet and (image.tags or image.digests or self.store.children(image.id) or conflict.used):
                return
            raise Conflict(self._conflict_message(image, conflict))
        parent = image.parent
        for ref_str in list(image.tags) + list(image.digests):
            self.store.untag(ref_str)
            records.append({"Untagged": views.familiar(ref_str)})
        removed_layers = self._layers_freed_by(image)
        self.store.delete_image(image)
        self.publish("image", "delete", image.id, {"name": image.id})
        records.append({"Deleted": image.id})
        records.extend({"Deleted": chain} for chain in removed_layers if self.store.layer(chain) is None)
        if prune and parent:
            parent_image = self.store.by_id(parent)
            if parent_image is not None:
                self._delete_helper(parent_image, records, False, True, quiet=True)

    def _layers_freed_by(self, image: Image) -> list[str]:
        used = {c for other in self.store.images() if other.id != image.id for c in other.chain_ids}
        return [c for c in reversed(image.chain_ids) if c not in used]

    def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """``POST /images/prune``: dangling images (or, with ``dangling=false``, every unused image)."""
        listing.check_filters(filters, listing.PRUNE_FILTERS)
        dangling_only = _prune_dangling_only(filters.get("dangling"))
        until = listing.parse_until(filters["until"][-1]) if filters.get("until") else None
        deleted: list[dict[str, str]] = []
        sizes = {}
        for image in self.store.images():
            for layer in self.store.layers_of(image):
                sizes[layer.chain_id] = layer.size
        candidates = [i for i in self.store.images() if not dangling_only or not self.store.children(i.id)]
        for image in candidates:
            if self.store.by_id(image.id) is None or self.usage(image.id):
                continue
            if until is not None and listing.created_ns(image) > until:
                continue
            if not listing.prune_labels_match(image, filters):
                continue
            try:
                if image.tags or image.digests:
                    if dangling_only and image.tags:
                        continue
                    for ref_str in list(image.tags) + list(image.digests):
                        if self.store.by_id(image.id) is not None:
                            deleted.extend(self.delete(ref_str, False, True))
                else:
                    deleted.extend(self.delete(image.id, False, True))
            except (Conflict, NotFound):
                continue
        reclaimed = sum(sizes.get(d["Deleted"], 0) for d in deleted if "Deleted" in d)
        self.publish("image", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def _prune_dangling_only(values: list[str] | None) -> bool:
    """dockerd's prune: ``dangling`` false/0 prunes every unused image, true/1 (default) dangling ones."""
    if not values:
        return True
    if "false" in values or "0" in values:
        return False
    if "true" in values or "1" in values:
        return True
    raise listing.invalid_value("dangling", values)


__all__ = ["ImageService", "decompress"]
