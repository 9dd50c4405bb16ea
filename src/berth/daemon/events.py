"""The events bus behind ``GET /events`` (Engine API "Monitor events").

Services call :meth:`EventBus.publish`; each ``/events`` request subscribes a queue. The last
:data:`HISTORY` events are kept so ``since`` can replay them, as dockerd does.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from berth.filters import label_matches

HISTORY = 1024


@dataclass(frozen=True)
class Event:
    """One event: ``type`` (container, image, network, volume, daemon), ``action`` (create, start,
    tag, ...), the actor's ``actor_id`` and ``attributes``; ``time_nano`` since the epoch."""

    type: str
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = 0
    scope: str = "local"

    def to_json(self) -> dict[str, Any]:
        """Docker's events message shape (with the legacy status/id/from fields)."""
        out: dict[str, Any] = {}
        if self.type in ("container", "image"):
            out["status"] = self.action
            out["id"] = self.actor_id
            if "image" in self.attributes and self.type == "container":
                out["from"] = self.attributes["image"]
        out.update({
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope,
            "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano,
        })
        return out


def matches(event: Event, filters: dict[str, list[str]]) -> bool:
    """Docker's event filters: type, event/action, container, image, network, volume, label, daemon.

    Values of one key are ORed, keys are ANDed (docs: "docker events", Filtering).
    """
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = event.type in values
        elif key in ("event", "action"):
            ok = any(event.action == v or event.action.split(":", 1)[0] == v for v in values)
        elif key in ("container", "network", "volume", "image", "daemon"):
            ok = _actor_matches(event, key, values)
        elif key == "label":
            ok = any(label_matches(event.attributes, v) for v in values)
        elif key == "scope":
            ok = event.scope in values
        else:
            continue
        if not ok:
            return False
    return True


def _actor_matches(event: Event, key: str, values: list[str]) -> bool:
    if key == "image" and event.type == "container":
        return event.attributes.get("image", "") in values
    if event.type != key:
        return False
    name = event.attributes.get("name", "")
    return any(v in (event.actor_id, name) or (len(v) >= 1 and event.actor_id.startswith(v)) for v in values)


class EventBus:
    """Publish/subscribe for events, safe to call from the event loop thread."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._history: deque[Event] = deque(maxlen=HISTORY)

    @property
    def listeners(self) -> int:
        """How many ``/events`` streams are open (``NEventsListener`` in ``/info``)."""
        return len(self._subscribers)

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> Event:
        """Record and broadcast an event now."""
        event = Event(type_, action, actor_id, dict(attributes or {}), time.time_ns())
        self._history.append(event)
        for queue in list(self._subscribers):
            queue.put_nowait(event)
        return event

    async def stream(self, since_ns: int | None, until_ns: int | None,
                     filters: dict[str, list[str]]) -> AsyncIterator[Event]:
        """Events from ``since_ns`` (replayed from history) until ``until_ns`` (forever if None)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            if since_ns is not None:
                for event in list(self._history):
                    if event.time_nano >= since_ns and (until_ns is None or event.time_nano <= until_ns) \
                            and matches(event, filters):
                        yield event
            while True:
                timeout = None
                if until_ns is not None:
                    timeout = (until_ns - time.time_ns()) / 1e9
                    if timeout <= 0:
                        return
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    return
                if until_ns is not None and event.time_nano > until_ns:
                    return
                if matches(event, filters):
                    yield event
        finally:
            self._subscribers.discard(queue)
