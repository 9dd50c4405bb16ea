"""Helpers for the image tests: hand-made layer tars and archives, and a view of the image store.

Archives are built here byte by byte (docker-archive: ``manifest.json``, ``<hex>.json``,
``<dir>/layer.tar``; image-spec "Image Layout" for OCI), so a test knows the digests to expect
without asking berth. :func:`store_state` reads the content store, the snapshots directory and the
database of a data root, so a test can show that a failed command left nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MTIME = 1600000000


@dataclass(frozen=True)
class Entry:
    """One layer tar entry: ``kind`` is ``file``, ``dir``, ``symlink`` or ``hardlink``;
    ``data`` the file content, ``link`` the link target."""

    kind: str
    name: str
    data: bytes = b""
    link: str = ""


def file(name: str, data: bytes | str = b"") -> Entry:
    return Entry("file", name, data.encode() if isinstance(data, str) else data)


def directory(name: str) -> Entry:
    return Entry("dir", name)


def symlink(name: str, target: str) -> Entry:
    return Entry("symlink", name, link=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry("hardlink", name, link=target)


def layer_tar(entries: list[Entry]) -> bytes:
    """An uncompressed PAX layer tar of ``entries`` in the given order, owners 0:0, fixed mtimes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime = MTIME
            info.mode = 0o644
            if entry.kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif entry.kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
            elif entry.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, entry.link
            else:
                info.size = len(entry.data)
            tar.addfile(info, io.BytesIO(entry.data) if entry.kind == "file" else None)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(layers: list[bytes], cmd: list[str] | None = None, created: str = "2020-09-13T12:26:40Z",
                 **extra: Any) -> bytes:
    """A minimal image config (image-spec "Image Configuration") over ``layers``, compact JSON."""
    config = {"architecture": "amd64", "os": "linux", "created": created,
              "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in layers]},
              "history": [{"created": created, "created_by": f"layer {i}"} for i in range(len(layers))],
              **extra}
    return json.dumps(config, separators=(",", ":"), sort_keys=True).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), MTIME, 0o644
    tar.addfile(info, io.BytesIO(data))


def docker_archive(config: bytes, layers: list[bytes], repo_tags: list[str] | None = None, *,
                   manifest_layers: list[str] | None = None, skip: set[str] | None = None) -> bytes:
    """A ``docker save`` tar of one image. ``manifest_layers`` overrides the layer paths the
    manifest names; members named in ``skip`` are left out (a manifest naming a missing file)."""
    skip = skip or set()
    names = [f"{hashlib.sha256(layer).hexdigest()}/layer.tar" for layer in layers]
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": repo_tags, "Layers": manifest_layers or names}]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, layer in zip(names, layers, strict=True):
            if name not in skip:
                _add(tar, name, layer)
        if config_name not in skip:
            _add(tar, config_name, config)
        if "manifest.json" not in skip:
            _add(tar, "manifest.json", json.dumps(manifest).encode())
    return buf.getvalue()


def oci_archive(config: bytes, layers: list[bytes], ref_name: str = "") -> bytes:
    """An OCI image layout tar (uncompressed layers) with one manifest in ``index.json``."""
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer),
                    "size": len(layer)} for layer in layers]}).encode()
    desc: dict[str, Any] = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": sha256(manifest), "size": len(manifest)}
    if ref_name:
        desc["annotations"] = {"io.containerd.image.name": ref_name}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        for blob in (config, manifest, *layers):
            _add(tar, "blobs/sha256/" + hashlib.sha256(blob).hexdigest(), blob)
        _add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode())
    return buf.getvalue()


def store_state(root: Path) -> dict[str, Any]:
    """What the image store of data root ``root`` holds: blob names, snapshot directories (and
    their ``l/`` links, temp dirs included) and the rows of the image tables."""
    blobs = root / "content" / "blobs" / "sha256"
    snaps = root / "snapshots"
    state: dict[str, Any] = {
        "blobs": sorted(p.name for p in blobs.iterdir()) if blobs.is_dir() else [],
        "snapshots": sorted(p.name for p in snaps.iterdir()) if snaps.is_dir() else [],
        "links": sorted(p.name for p in (snaps / "l").iterdir()) if (snaps / "l").is_dir() else [],
    }
    conn = sqlite3.connect(f"file:{root / 'berth.db'}?mode=ro", uri=True)
    try:
        for table in ("images", "tags", "digests", "layers"):
            state[table] = sorted(tuple(row) for row in conn.execute(f"SELECT * FROM {table}"))  # noqa: S608
    finally:
        conn.close()
    return state


def tree_files(path: Path) -> set[str]:
    """Every path below ``path`` (relative), for checking that nothing appeared there."""
    return {str(p.relative_to(path)) for p in path.rglob("*")} if path.exists() else set()
