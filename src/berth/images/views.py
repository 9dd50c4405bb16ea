"""Docker's JSON shapes for images: ``/images/json`` summaries, ``/images/{name}/json``, history.

References are listed sorted by their full names, as dockerd's reference store returns them;
``Config`` and ``ContainerConfig`` carry every ``container.Config`` field as dockerd re-encodes them.
Sources: Engine API v1.41 reference, "ImageSummary", "ImageInspect", "HistoryResponseItem"; and
``daemon/images/image_history.go`` behaviour as documented by ``docker history`` (one entry per
config history item, newest first, IDs walking the local parent chain, ``<missing>`` beyond it).
"""

from __future__ import annotations

from typing import Any

from berth.images import reference as refs
from berth.images.model import Image, container_config
from berth.timeutil import parse_rfc3339_ns, rfc3339_nano


def familiar(ref: str) -> str:
    """``docker.io/library/busybox:latest`` -> ``busybox:latest``."""
    try:
        return refs.parse_normalized_named(ref).familiar()
    except Exception:  # stored refs are always valid; be lenient for display
        return ref


def go_time(value: str) -> str:
    """A config's ``created`` as dockerd re-encodes it (Go's RFC3339Nano: ``...:40Z``, trailing
    fraction zeros dropped); values with an offset, or unparsable ones, are kept as they are."""
    if not value.endswith("Z"):
        return value or "0001-01-01T00:00:00Z"
    try:
        return rfc3339_nano(parse_rfc3339_ns(value))
    except ValueError:
        return value


def created_unix(image: Image) -> int:
    try:
        return parse_rfc3339_ns(image.created) // 1_000_000_000
    except ValueError:
        return 0


def summary(image: Image, containers: int = -1) -> dict[str, Any]:
    """An ``ImageSummary`` for ``GET /images/json``."""
    return {
        "Containers": containers,
        "Created": created_unix(image),
        "Id": image.id,
        "Labels": image.container_config.get("Labels") or None,
        "ParentId": image.parent,
        "RepoDigests": [familiar(d) for d in sorted(image.digests)] or None,
        "RepoTags": [familiar(t) for t in sorted(image.tags)] or None,
        "SharedSize": -1,
        "Size": image.size,
        "VirtualSize": image.size,
    }


def inspect(image: Image, layer_dirs: dict[str, str]) -> dict[str, Any]:
    """``ImageInspect`` for ``GET /images/{name}/json``.

    ``layer_dirs`` maps ``LowerDir``/``UpperDir``/... to paths for ``GraphDriver.Data``.
    """
    cfg = image.config
    config = cfg.get("config")
    return {
        "Id": image.id,
        "RepoTags": [familiar(t) for t in sorted(image.tags)],
        "RepoDigests": [familiar(d) for d in sorted(image.digests)],
        "Parent": image.parent,
        "Comment": cfg.get("comment", ""),
        "Created": go_time(cfg.get("created", "")),
        "Container": cfg.get("container", ""),
        "ContainerConfig": container_config(cfg.get("container_config")),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": container_config(config) if isinstance(config, dict) else None,
        "Architecture": cfg.get("architecture", ""),
        **({"Variant": cfg["variant"]} if cfg.get("variant") else {}),
        "Os": cfg.get("os", ""),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Data": layer_dirs or None, "Name": "overlay2"},
        "RootFS": {"Type": (cfg.get("rootfs") or {}).get("type", "layers"), "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": image.last_tag_time or "0001-01-01T00:00:00Z"},
    }


def history(image: Image, layer_sizes: list[int], parents: list[Image]) -> list[dict[str, Any]]:
    """``HistoryResponseItem`` list, newest first.

    ``layer_sizes`` are the unpacked sizes of the image's layers, bottom first; ``parents`` is the
    local parent chain starting with ``image`` itself.
    """
    entries: list[dict[str, Any]] = []
    layer_index = 0
    for item in image.config.get("history") or []:
        size = 0
        if not item.get("empty_layer"):
            if layer_index < len(layer_sizes):
                size = layer_sizes[layer_index]
            layer_index += 1
        try:
            created = parse_rfc3339_ns(item.get("created", "")) // 1_000_000_000
        except ValueError:
            created = 0
        entries.insert(0, {"Comment": item.get("comment", ""), "Created": created,
                           "CreatedBy": item.get("created_by", ""), "Id": "<missing>", "Size": size,
                           "Tags": None})
    for entry, owner in zip(entries, parents, strict=False):
        entry["Id"] = owner.id
        entry["Tags"] = [familiar(t) for t in sorted(owner.tags)] or None
    return entries
