"""asyncio helpers shared by the daemon's packages.

The event loop keeps only weak references to tasks, so a task nobody holds can be garbage
collected while it waits (Python docs, ``asyncio.create_task``: "Save a reference to the result
of this function"). :func:`spawn` holds background tasks until they finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("berth")

_background: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
    """Run ``coro`` in the background, keeping a reference until it finishes; exceptions other
    than cancellation are logged (nobody awaits these tasks)."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _background.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s failed", task.get_name(), exc_info=task.exception())
