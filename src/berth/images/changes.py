"""Dockerfile-style config changes for ``import`` and ``commit`` (``--change``/``-c``).

Placeholder until the Dockerfile parser lands; replaced by the real implementation.
"""

from __future__ import annotations

from typing import Any

from berth.errors import InvalidParameter


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return ``config`` (a container.Config dict) with ``changes`` applied."""
    if changes:
        raise InvalidParameter("changes are not supported yet")
    return dict(config)
