"""``docker save`` and ``docker load`` archives.

Save writes docker's "docker-archive" layout as docker 20.10 does (``manifest.json``,
``repositories``, ``<config hex>.json``, ``<layer id>/{VERSION,json,layer.tar}``). Load reads that
layout and the OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/...``; OCI image
spec, "Image Layout"), with uncompressed or gzip layers. Every member is streamed into the content
store (no temp directory), then manifests are resolved, layers registered and checked against the
config's ``diff_ids``. On any error the blobs this load added are removed and no tag moves.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import tarfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from berth.errors import InvalidParameter, NotFound
from berth.images import reference as refs
from berth.images.model import Image, chain_ids, image_id
from berth.images.store import ImageStore

MEDIA_GZIP = ("application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.docker.image.rootfs.diff.tar.gzip")
MEDIA_ZSTD = ("application/vnd.oci.image.layer.v1.tar+zstd",)
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


@dataclass
class SaveItem:
    """One image to save and the familiar tags (``busybox:latest``) to record for it."""

    image: Image
    tags: list[str] = field(default_factory=list)


def _v1_ids(chain_ids: list[str]) -> list[str]:
    """Stable directory names for layers (docker computes v1 IDs; any unique name loads)."""
    out, parent = [], ""
    for chain in chain_ids:
        parent = hashlib.sha256(f"{parent} {chain}".encode()).hexdigest()
        out.append(parent)
    return out


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def write_save(store: ImageStore, items: list[SaveItem], out: BinaryIO) -> None:
    """Write a docker-archive tar of ``items`` to ``out`` (blocking; run in a thread)."""
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for item in items:
            layers = store.layers_of(item.image)
            v1 = _v1_ids([layer.chain_id for layer in layers])
            for layer, lid in zip(layers, v1, strict=True):
                if lid in written:
                    continue
                written.add(lid)
                dir_info = tarfile.TarInfo(lid)
                dir_info.type, dir_info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(dir_info)
                _add_bytes(tar, f"{lid}/VERSION", b"1.0")
                _add_bytes(tar, f"{lid}/json", json.dumps({"id": lid}).encode())
                info = tarfile.TarInfo(f"{lid}/layer.tar")
                info.size = store.content.size(layer.blob)
                info.mode = 0o644
                with store.content.open(layer.blob) as blob:
                    tar.addfile(info, blob)
            hexid = item.image.id.split(":", 1)[1]
            if hexid not in written:
                written.add(hexid)
                _add_bytes(tar, f"{hexid}.json", store.content.read(item.image.id))
            manifest.append({"Config": f"{hexid}.json", "RepoTags": item.tags or None,
                             "Layers": [f"{lid}/layer.tar" for lid in v1]})
            for tag in item.tags:
                repo, _, name = tag.rpartition(":")
                if v1:
                    repositories.setdefault(repo, {})[name] = v1[-1]
        _add_bytes(tar, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
        if repositories:
            _add_bytes(tar, "repositories", json.dumps(repositories, separators=(",", ":")).encode())


class _Reader(Protocol):
    """A binary stream to copy from (a tar member, a gzip stream)."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass
class LoadedImage:
    """An image a load produced and the normalised tags to point at it."""

    image: Image
    tags: list[str]


class _Members:
    """Archive members spooled into the content store: member name -> blob digest."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.blobs: dict[str, str] = {}
        self.added: set[str] = set()
        self.new_layers: list[str] = []
        self.new_images: list[Image] = []

    def spool(self, stream: BinaryIO) -> None:
        """Store every regular member; symlinks and hard links between members name the same blob
        (``docker save`` links a layer shared by two images: ``<id2>/layer.tar -> ../<id1>/layer.tar``)."""
        links: dict[str, str] = {}
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                for member in tar:
                    name = _clean(member.name)
                    if member.issym():
                        links[name] = _clean(posixpath.join(posixpath.dirname(name), member.linkname))
                    elif member.islnk():
                        links[name] = _clean(member.linkname)
                    elif member.isfile():
                        src = tar.extractfile(member)
                        assert src is not None
                        self.blobs[name] = self.store_stream(src)
        except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
            raise InvalidParameter(f"invalid tar archive: {exc}") from None
        for name, target in links.items():
            for _ in range(len(links)):  # follow link to link, never around a cycle
                if target not in links:
                    break
                target = links[target]
            if target in self.blobs:
                self.blobs.setdefault(name, self.blobs[target])

    def store_stream(self, src: _Reader) -> str:
        """Copy ``src`` into the content store; remember the digest when it is new."""
        with self.store.content.writer() as w:
            while chunk := src.read(1 << 20):
                w.write(chunk)
            existed = self.store.content.exists(w.digest)
            digest, _ = w.commit()
        if not existed:
            self.added.add(digest)
        return digest

    def digest(self, name: str) -> str:
        key = _clean(name)
        if key not in self.blobs:
            raise InvalidParameter(f"invalid archive: {name} is missing from the archive")
        return self.blobs[key]

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.store.content.read(self.digest(name)))
        except ValueError as exc:
            raise InvalidParameter(f"invalid archive: {name} is not valid JSON: {exc}") from None

    def discard_unused(self, keep: set[str]) -> None:
        for digest in self.added - keep:
            if not self.store._blob_referenced(digest) and self.store.by_id(digest) is None:
                self.store.content.delete(digest)

    def roll_back(self) -> None:
        """Remove the images and layers this load created (it failed part way)."""
        for image in reversed(self.new_images):
            if not image.tags and not image.digests and not self.store.children(image.id):
                self.store.delete_image(image)
        for chain in reversed(self.new_layers):  # top layers first; each only while unused
            self.store.release_layers([chain])


def _clean(name: str) -> str:
    """An archive member name as a key: ``./a//b/../c`` -> ``a/c`` (``..`` stops at the top)."""
    return posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/")


def load_archive(store: ImageStore, stream: BinaryIO) -> list[LoadedImage]:
    """Load every image of a docker-archive or OCI-layout tar read from ``stream`` (blocking).

    Raises InvalidParameter for a corrupt archive, a manifest naming a missing file, or layers
    whose content does not match the config; nothing it stored stays behind on error.
    """
    members = _Members(store)
    keep: set[str] = set()
    try:
        members.spool(stream)
        if "manifest.json" in members.blobs:
            loaded = _load_docker_archive(store, members)
        elif "index.json" in members.blobs:
            loaded = _load_oci_layout(store, members)
        else:
            raise InvalidParameter("invalid archive: no manifest.json or index.json found")
        keep = {d for item in loaded for d in _blobs_of(store, item.image)}
        return loaded
    except BaseException:
        members.roll_back()
        raise
    finally:
        members.discard_unused(keep)


def _blobs_of(store: ImageStore, image: Image) -> set[str]:
    return {image.id} | {layer.blob for layer in store.layers_of(image)}


def _load_docker_archive(store: ImageStore, members: _Members) -> list[LoadedImage]:
    manifest = members.json("manifest.json")
    if not isinstance(manifest, list):
        raise InvalidParameter("invalid archive: manifest.json is not a list")
    out = []
    for entry in manifest:
        config_digest = members.digest(entry.get("Config", ""))
        # docker load decompresses layer files (archive.DecompressStream): some tools write them gzipped
        layers = [_uncompressed(store, members, members.digest(name), name) for name in entry.get("Layers") or []]
        image = _assemble(members, store.content.read(config_digest), layers)
        tags = [str(refs.with_default_tag(refs.parse_normalized_named(t))) for t in entry.get("RepoTags") or []]
        out.append(LoadedImage(image, tags))
    return out


def _load_oci_layout(store: ImageStore, members: _Members) -> list[LoadedImage]:
    index = members.json("index.json")
    out = []
    for desc in index.get("manifests") or []:
        for manifest, notes in _manifests(members, desc):
            layers = [_layer_blob(store, members, layer) for layer in manifest.get("layers") or []]
            config_bytes = store.content.read(members.digest(_blob_name(manifest["config"]["digest"])))
            image = _assemble(members, config_bytes, layers)
            tags = []
            name = notes.get("io.containerd.image.name") or notes.get("org.opencontainers.image.ref.name")
            if name:
                try:
                    ref = refs.parse_normalized_named(name)
                    tags.append(str(refs.with_default_tag(ref)))
                except InvalidParameter:
                    pass  # a bare tag such as "latest" with no repository: nothing to name
            out.append(LoadedImage(image, tags))
    return out


def _manifests(members: _Members, desc: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, str]]]:
    doc = members.json(_blob_name(desc["digest"]))
    annotations = dict(desc.get("annotations") or {})
    if desc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
        for child in doc.get("manifests") or []:
            platform = child.get("platform") or {}
            if platform.get("os", "linux") == "linux" and platform.get("architecture", "amd64") == "amd64":
                return [(members.json(_blob_name(child["digest"])), annotations)]
        raise InvalidParameter("invalid archive: no linux/amd64 manifest in the index")
    return [(doc, annotations)]


def _blob_name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


def _layer_blob(store: ImageStore, members: _Members, desc: dict[str, Any]) -> str:
    """The uncompressed layer tar's digest for a manifest layer descriptor (gunzipping if needed)."""
    digest = members.digest(_blob_name(desc["digest"]))
    media = desc.get("mediaType", "")
    if media in MEDIA_ZSTD:
        raise InvalidParameter(f"unsupported layer media type {media}")
    if media in MEDIA_GZIP:
        return _gunzipped(members, digest, desc["digest"])
    return _uncompressed(store, members, digest, desc["digest"])


def _uncompressed(store: ImageStore, members: _Members, digest: str, shown: str) -> str:
    """The digest of the layer blob ``digest`` uncompressed: itself for a plain tar, else the
    gunzipped copy (stored); ``shown`` names the layer in errors."""
    return _gunzipped(members, digest, shown) if _is_gzip(store, digest) else digest


def _gunzipped(members: _Members, digest: str, shown: str) -> str:
    with members.store.content.open(digest) as raw, gzip.GzipFile(fileobj=raw) as unzipped:
        try:
            return members.store_stream(unzipped)
        except (OSError, EOFError) as exc:
            raise InvalidParameter(f"invalid gzip layer {shown}: {exc}") from None


def _is_gzip(store: ImageStore, digest: str) -> bool:
    with store.content.open(digest) as f:
        return f.read(2) == b"\x1f\x8b"


def _assemble(members: _Members, config_bytes: bytes, layer_blobs: list[str]) -> Image:
    """Register ``layer_blobs`` in order, check them against the config, and add the image;
    ``members`` records the layers and the image that are new, for :meth:`_Members.roll_back`."""
    store = members.store
    try:
        config = json.loads(config_bytes)
    except ValueError as exc:
        raise InvalidParameter(f"invalid image config: {exc}") from None
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    if len(diff_ids) != len(layer_blobs):
        raise InvalidParameter(f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, "
                               f"got {len(layer_blobs)}")
    parent = None
    for index, (want, blob) in enumerate(zip(diff_ids, layer_blobs, strict=True)):
        if want != blob:
            raise InvalidParameter(f'invalid diffID for layer {index}: expected "{want}", got "{blob}"')
        chain = chain_ids([parent, blob])[-1] if parent else blob
        if store.layer(chain) is None:
            members.new_layers.append(chain)
        parent = store.register_blob_layer(blob, parent).chain_id
    known = store.by_id(image_id(config_bytes)) is not None
    try:
        image = store.add_image(config_bytes)
    except NotFound as exc:
        raise InvalidParameter(str(exc)) from None
    if not known:
        members.new_images.append(image)
    return image
