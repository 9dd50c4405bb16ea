"""The local image store: layers (blob + snapshot), image configs, tags and digests.

Layers are identified by diff ID and chain ID (OCI image spec, "Layer DiffID", "Layer ChainID").
A layer tar is kept as a blob (its digest is the diff ID: we store tars uncompressed, so ``save``
gives back the exact bytes) and unpacked once into the overlay snapshot named by the chain ID's hex.
An image is its config blob (ID = config digest) plus a row in ``images``; names live in ``tags``.

Write order keeps crashes harmless: blob, then snapshot, then the database row; startup
(:meth:`ImageStore.collect_garbage`) removes blobs and snapshots that no row reaches.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from berth.errors import Conflict, InvalidParameter, NotFound
from berth.images import reference as refs
from berth.images.model import Image, chain_ids, image_id
from berth.store.blobs import ContentStore
from berth.store.db import Database
from berth.timeutil import rfc3339_nano

log = logging.getLogger("berth.images")


@dataclass(frozen=True)
class Layer:
    """A registered layer: ``size`` is the unpacked size in bytes; ``blob`` the stored tar's digest."""

    chain_id: str
    diff_id: str
    parent: str | None
    size: int
    blob: str

    @property
    def snapshot_key(self) -> str:
        return self.chain_id.split(":", 1)[1]


class ImageStore:
    """Images, layers and references on top of the database, the content store and the snapshotter.

    ``snapshotter`` is a :class:`berth.snapshots.overlay.Snapshotter`. Methods are thread-safe (the
    daemon calls the slow ones — layer registration — from worker threads).
    """

    def __init__(self, db: Database, content: ContentStore, snapshotter) -> None:
        self.db = db
        self.content = content
        self.snapshotter = snapshotter
        self._lock = threading.RLock()
        self._images: dict[str, Image] = {}
        self._load()

    # ----- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        for row in self.db.query("SELECT * FROM images"):
            try:
                config = json.loads(self.content.read(row["id"]))
            except (NotFound, ValueError):
                log.warning("image %s has no readable config; dropping it", row["id"])
                self._drop_row(row["id"])
                continue
            self._images[row["id"]] = Image(row["id"], config, row["parent"] or "", row["size"],
                                            row["created"], row["last_tag"] or "", row["added"])
        for row in self.db.query("SELECT ref, image_id FROM tags"):
            if row["image_id"] in self._images:
                self._images[row["image_id"]].tags.append(row["ref"])
        for row in self.db.query("SELECT ref, image_id FROM digests"):
            if row["image_id"] in self._images:
                self._images[row["image_id"]].digests.append(row["ref"])
        # rows left by berth versions that kept them after their image was deleted
        self.db.execute("DELETE FROM build_cache WHERE image_id NOT IN (SELECT id FROM images) "
                        "OR (parent != '' AND parent NOT IN (SELECT id FROM images))")

    def _drop_row(self, iid: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM tags WHERE image_id = ?", (iid,))
            tx.execute("DELETE FROM digests WHERE image_id = ?", (iid,))
            _forget_build_steps(tx, iid)
            tx.execute("DELETE FROM images WHERE id = ?", (iid,))

    # ----- layers --------------------------------------------------------------------------
    def layer(self, chain_id: str) -> Layer | None:
        row = self.db.query_one("SELECT * FROM layers WHERE chain_id = ?", (chain_id,))
        if row is None:
            return None
        return Layer(row["chain_id"], row["diff_id"], row["parent"], row["size"], row["blob"])

    def register_layer(self, stream: BinaryIO, parent: str | None, expected_diff_id: str | None = None) -> Layer:
        """Store an uncompressed layer tar read from ``stream`` on top of layer ``parent`` (a chain ID).

        The tar is stored as a blob, then unpacked into a snapshot. Raises InvalidParameter for a
        corrupt or unsafe tar, or when the content does not match ``expected_diff_id``; on error
        nothing new is left behind.
        """
        if parent is not None and self.layer(parent) is None:
            raise NotFound(f"layer {parent} not found")
        digest, _ = self.content.copy_from(stream, expected_diff_id)
        return self.register_blob_layer(digest, parent)

    def register_blob_layer(self, diff_id: str, parent: str | None) -> Layer:
        """Register the stored layer tar blob ``diff_id`` on top of ``parent`` (unpacking it once)."""
        chain = chain_ids([parent, diff_id])[-1] if parent else diff_id
        with self._lock:
            existing = self.layer(chain)
            if existing is not None:
                return existing
            key = chain.split(":", 1)[1]
            parent_key = parent.split(":", 1)[1] if parent else None
            try:
                with self.content.open(diff_id) as blob:
                    size = self.snapshotter.unpack(key, parent_key, blob)
            except BaseException:
                if not self._blob_referenced(diff_id):
                    self.content.delete(diff_id)
                raise
            self.db.execute("INSERT INTO layers (chain_id, diff_id, parent, size, blob) VALUES (?, ?, ?, ?, ?)",
                            (chain, diff_id, parent, size, diff_id))
            return Layer(chain, diff_id, parent, size, diff_id)

    def _blob_referenced(self, digest: str) -> bool:
        return self.db.query_one("SELECT 1 FROM layers WHERE blob = ?", (digest,)) is not None

    def layers_of(self, image: Image) -> list[Layer]:
        """The image's layers, bottom first. Raises NotFound when one is missing."""
        out = []
        for chain in image.chain_ids:
            layer = self.layer(chain)
            if layer is None:
                raise NotFound(f"layer {chain} of image {image.id} not found")
            out.append(layer)
        return out

    # ----- images --------------------------------------------------------------------------
    def add_image(self, config_bytes: bytes, parent: str = "") -> Image:
        """Store an image config whose layers are registered; returns the (maybe existing) image.

        Raises InvalidParameter for a config that is not JSON or names an unregistered layer.
        """
        try:
            config = json.loads(config_bytes)
        except ValueError as exc:
            raise InvalidParameter(f"invalid image config: {exc}") from None
        if not isinstance(config, dict) or not isinstance(config.get("rootfs", {}), dict):
            raise InvalidParameter("invalid image config: not an object")
        iid = image_id(config_bytes)
        with self._lock:
            if iid in self._images:
                return self._images[iid]
            image = Image(iid, config, parent or "", 0, str(config.get("created", "")), "", time.time())
            layers = self.layers_of(image)
            image.size = sum(layer.size for layer in layers)
            self.content.put(config_bytes)
            self.db.execute("INSERT INTO images (id, parent, created, size, last_tag, added) VALUES (?, ?, ?, ?, ?, ?)",
                            (iid, image.parent, image.created, image.size, "", image.added))
            self._images[iid] = image
            return image

    def images(self) -> list[Image]:
        """Every image, oldest first."""
        with self._lock:
            return sorted(self._images.values(), key=lambda i: i.added)

    def by_id(self, iid: str) -> Image | None:
        return self._images.get(iid)

    def children(self, iid: str) -> list[Image]:
        """Images whose local parent is ``iid``."""
        return [i for i in self._images.values() if i.parent == iid]

    def resolve(self, name: str) -> Image:
        """Find an image by full ID, reference (tag or digest) or ID prefix (docker's GetImage order).

        Raises NotFound with dockerd's ``No such image: busybox:latest`` (the name as a tagged
        familiar reference, ``sha256:<hex>`` for a full hex ID; ErrImageDoesNotExist), or
        InvalidParameter for a name that is neither an ID nor a valid reference.
        """
        image = self.lookup(name)
        if image is None:
            raise NotFound(f"No such image: {_missing_name(name)}")
        return image

    def lookup(self, name: str) -> Image | None:
        """Like :meth:`resolve` but returns ``None`` when nothing matches."""
        with self._lock:
            if name.startswith("sha256:") and len(name) == 71:
                return self._images.get(name)
            try:
                ref = refs.parse_normalized_named(name)
            except InvalidParameter:
                ref = None
            if ref is not None:
                image = self.by_reference(str(refs.with_default_tag(ref)))
                if image is not None:
                    return image
            if refs.is_image_id_prefix(name):
                return self.by_id_prefix(name)
            return None

    def by_reference(self, ref: str) -> Image | None:
        """The image a normalised tag (``docker.io/library/busybox:latest``) or digest reference names."""
        table = "digests" if "@" in ref else "tags"
        row = self.db.query_one(f"SELECT image_id FROM {table} WHERE ref = ?", (ref,))  # noqa: S608
        return self._images.get(row["image_id"]) if row is not None else None

    def by_id_prefix(self, prefix: str) -> Image | None:
        """The one image whose ID starts with ``prefix`` (hex, ``sha256:`` optional); None when no
        image or more than one matches."""
        with self._lock:
            return self._by_prefix(prefix)

    def _by_prefix(self, prefix: str) -> Image | None:
        hexpart = prefix.split(":", 1)[-1]
        found = [i for i in self._images.values() if i.id.split(":", 1)[1].startswith(hexpart)]
        return found[0] if len(found) == 1 else None  # an ambiguous prefix names nothing

    # ----- references ----------------------------------------------------------------------
    def tag(self, image: Image, ref: str) -> str | None:
        """Point the normalised reference ``ref`` at ``image``; returns the image ID it moved from."""
        with self._lock:
            row = self.db.query_one("SELECT image_id FROM tags WHERE ref = ?", (ref,))
            old = row["image_id"] if row else None
            now = rfc3339_nano()
            with self.db.transaction() as tx:
                tx.execute("INSERT OR REPLACE INTO tags (ref, image_id) VALUES (?, ?)", (ref, image.id))
                tx.execute("UPDATE images SET last_tag = ? WHERE id = ?", (now, image.id))
            if old and old in self._images and ref in self._images[old].tags:
                self._images[old].tags.remove(ref)
            if ref not in image.tags:
                image.tags.append(ref)
            image.last_tag_time = now
            return old if old != image.id else None

    def add_digest(self, image: Image, ref: str) -> None:
        """Record a ``name@sha256:...`` reference (RepoDigests) for ``image``."""
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO digests (ref, image_id) VALUES (?, ?)", (ref, image.id))
            if ref not in image.digests:
                image.digests.append(ref)

    def untag(self, ref: str) -> Image | None:
        """Remove a tag or digest reference; returns the image it named, or None."""
        with self._lock:
            for table in ("tags", "digests"):
                row = self.db.query_one(f"SELECT image_id FROM {table} WHERE ref = ?", (ref,))
                if row is None:
                    continue
                self.db.execute(f"DELETE FROM {table} WHERE ref = ?", (ref,))
                image = self._images.get(row["image_id"])
                if image is not None:
                    (image.tags if table == "tags" else image.digests).remove(ref)
                return image
            return None

    # ----- removal -------------------------------------------------------------------------
    def delete_image(self, image: Image) -> None:
        """Remove an untagged image with no children, the build cache rows naming it (as a step's
        result or parent, in the same transaction as its row) and the layers no other image uses.

        Raises Conflict when it still has references or child images.
        """
        with self._lock:
            if image.tags or image.digests:
                raise Conflict(f"image {image.id} is still referenced")
            if self.children(image.id):
                raise Conflict(f"image {image.id} has dependent child images")
            with self.db.transaction() as tx:
                _forget_build_steps(tx, image.id)
                tx.execute("DELETE FROM images WHERE id = ?", (image.id,))
            self._images.pop(image.id, None)
            self.content.delete(image.id)
            self._release_layers(image.chain_ids)

    def release_layers(self, chains: list[str]) -> None:
        """Remove the layers of ``chains`` (a stack, bottom first) from the top down while no image
        uses them: snapshot, row and, when nothing else needs it, the tar blob."""
        with self._lock:
            self._release_layers(chains)

    def _release_layers(self, chains: list[str]) -> None:
        used = {c for i in self._images.values() for c in i.chain_ids}
        for chain in reversed(chains):
            if chain in used:
                break
            layer = self.layer(chain)
            if layer is None:
                continue
            try:
                self.snapshotter.remove(layer.snapshot_key)
            except Conflict:
                break  # a container or build snapshot still sits on it; keep it
            self.db.execute("DELETE FROM layers WHERE chain_id = ?", (chain,))
            if not self._blob_referenced(layer.blob):
                self.content.delete(layer.blob)

    def collect_garbage(self, keep_snapshots: Iterable[str] = ()) -> None:
        """Startup repair: drop layers no image uses, then blobs and snapshots nothing reaches.

        ``keep_snapshots`` are active snapshot keys owned by containers.
        """
        with self._lock:
            used_chains = {c for i in self._images.values() for c in i.chain_ids}
            rows = self.db.query("SELECT chain_id FROM layers")
            for row in sorted(rows, key=lambda r: -len(self._chain_depth(r["chain_id"]))):
                if row["chain_id"] not in used_chains:
                    self._release_layers([row["chain_id"]])
            keep_blobs = {r["blob"] for r in self.db.query("SELECT blob FROM layers")} | set(self._images)
            for digest in list(self.content.digests()):
                if digest not in keep_blobs:
                    self.content.delete(digest)
            keep = {r["chain_id"].split(":", 1)[1] for r in self.db.query("SELECT chain_id FROM layers")}
            keep |= set(keep_snapshots)
            self.snapshotter.cleanup()
            for key in list(self.snapshotter.keys()):
                if key not in keep and not self.snapshotter.children(key):
                    try:
                        self.snapshotter.remove(key)
                    except Conflict:
                        pass

    def _chain_depth(self, chain: str) -> list[str]:
        out = []
        current: str | None = chain
        while current:
            out.append(current)
            layer = self.layer(current)
            current = layer.parent if layer else None
        return out


def _missing_name(name: str) -> str:
    if len(name) == 64 and refs.is_image_id_prefix(name):
        return "sha256:" + name
    return refs.with_default_tag(refs.parse_normalized_named(name)).familiar()


def _forget_build_steps(tx: sqlite3.Connection, iid: str) -> None:
    """Drop the ``build_cache`` rows whose step produced image ``iid`` or ran on it: a hit on them
    could only name a missing image (docker's classic cache is the images themselves)."""
    tx.execute("DELETE FROM build_cache WHERE image_id = ? OR parent = ?", (iid, iid))
