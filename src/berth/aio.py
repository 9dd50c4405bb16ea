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


async def uncancellable(coro: Coroutine[Any, Any, Any], name: str | None = None,
                        into: set[asyncio.Task[Any]] | None = None) -> Any:
    """Await ``coro`` in its own task that a cancelled caller does not cut short.

    For steps that must not stop halfway (a container start that has spawned its shim but not yet
    recorded it): the caller gets ``CancelledError`` at once, the task runs to its end, and its
    failure, if any, is logged at debug level (nobody is left to receive it). Returns the result
    or raises the error of ``coro`` when the caller was not cancelled. ``into`` holds the task
    while it runs, for an owner that must wait for such steps before it closes.
    """
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _background.add(task)
    if into is not None:
        into.add(task)
        task.add_done_callback(into.discard)
    task.add_done_callback(_after_caller_left)
    return await asyncio.shield(task)


def _after_caller_left(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.debug("task %s failed", task.get_name(), exc_info=task.exception())
