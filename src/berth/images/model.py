"""Image model: the OCI/Docker image config, image IDs, diff IDs and chain IDs.

Sources: OCI image spec, "Image Configuration" (``rootfs.diff_ids``, ``history``, the ChainID
definition ``ChainID(L0|...|Ln) = Digest(ChainID(L0|...|Ln-1) + " " + DiffID(Ln))``) and docker's
image JSON (the ``container_config``/``config`` objects are docker's ``container.Config``).
The image ID is the digest of the config bytes exactly as stored (DESIGN decision 2).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from berth import __version__

#: Field order of docker's container.Config (Go encodes struct fields in declaration order);
#: ``None`` marks ``omitempty`` fields that are left out when empty.
CONTAINER_CONFIG_FIELDS: list[tuple[str, Any]] = [
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False),
    ("AttachStdout", False), ("AttachStderr", False), ("ExposedPorts", None), ("Tty", False),
    ("OpenStdin", False), ("StdinOnce", False), ("Env", []), ("Cmd", []), ("Healthcheck", None),
    ("ArgsEscaped", None), ("Image", ""), ("Volumes", []), ("WorkingDir", ""), ("Entrypoint", []),
    ("NetworkDisabled", None), ("MacAddress", None), ("OnBuild", []), ("Labels", []),
    ("StopSignal", None), ("StopTimeout", None), ("Shell", None),
]


def container_config(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``container.Config`` dict in docker's field order.

    Fields given in ``values`` win; nullable fields that are empty encode as ``null`` as Go does
    for nil slices and maps, and ``omitempty`` fields are dropped when empty.
    """
    values = values or {}
    out: dict[str, Any] = {}
    for name, zero in CONTAINER_CONFIG_FIELDS:
        value = values.get(name)
        if zero is None:  # omitempty
            if value not in (None, "", [], {}, False, 0):
                out[name] = value
        elif isinstance(zero, list):  # Go nil slice or map -> null
            out[name] = value if value not in (None, [], {}) else None
        else:
            out[name] = value if value is not None else zero
    return out


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainIDs of a layer stack (OCI image spec, "Layer ChainID")."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def encode_config(config: dict[str, Any]) -> bytes:
    """Serialise an image config as dockerd stores it: compact JSON, top-level keys sorted (docker
    round-trips configs through a map), nested ``config`` objects in container.Config field order.
    Only the exact stored bytes matter afterwards: the image ID is their digest."""
    ordered = {key: config[key] for key in sorted(config)}
    return json.dumps(ordered, separators=(",", ":")).encode()


def image_id(config_bytes: bytes) -> str:
    """Image ID: ``sha256:`` + hex digest of the config bytes."""
    return "sha256:" + hashlib.sha256(config_bytes).hexdigest()


def new_image_config(*, config: dict[str, Any], diff_ids: list[str], history: list[dict[str, Any]],
                     created: str, comment: str = "", author: str = "", parent_config: dict | None = None,
                     container: str = "", container_config_: dict[str, Any] | None = None,
                     architecture: str = "amd64", os_: str = "linux") -> dict[str, Any]:
    """An image config in docker's field order (``image.Image``: V1Image fields, then rootfs, history).

    ``config`` and ``container_config_`` are container.Config dicts (see :func:`container_config`).
    """
    out: dict[str, Any] = {}
    if comment:
        out["comment"] = comment
    out["created"] = created
    if container:
        out["container"] = container
    out["container_config"] = container_config(container_config_ or {})
    out["docker_version"] = f"{__version__}-berth"
    if author:
        out["author"] = author
    out["config"] = container_config(config)
    out["architecture"] = architecture
    out["os"] = os_
    out["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    out["history"] = history
    return out


@dataclass
class Image:
    """An image in the local store.

    ``config`` is the parsed config JSON; ``parent`` the local parent image ID ('' when none);
    ``size`` the sum of the layers' unpacked sizes in bytes; ``tags``/``digests`` normalised references.
    """

    id: str
    config: dict[str, Any]
    parent: str = ""
    size: int = 0
    created: str = ""
    last_tag_time: str = ""
    added: float = 0.0
    tags: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)

    @property
    def diff_ids(self) -> list[str]:
        return list((self.config.get("rootfs") or {}).get("diff_ids") or [])

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def top_layer(self) -> str | None:
        """Chain ID of the top layer, ``None`` for an image with no layers."""
        ids = self.chain_ids
        return ids[-1] if ids else None

    @property
    def container_config(self) -> dict[str, Any]:
        """The image's ``config`` object (the defaults for containers)."""
        return self.config.get("config") or {}

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]
