"""The build's JSON message stream (Engine API "ImageBuild" response, docker 20.10's wording).

Messages are docker's ``jsonmessage`` objects: ``{"stream": text}`` for progress and RUN
output, ``{"aux": {"ID": "sha256:..."}}`` after each stage, and on failure
``{"errorDetail": {"code": n, "message": m}, "error": m}``. Stages build concurrently, yet a
reader sees the output in Dockerfile order, as the sequential classic builder prints it: each
stage writes to its own :class:`Channel`, a channel is passed through live once every earlier
channel is closed, and buffered until then. With ``quiet`` (``docker build -q``) everything is
held back and only written when the build fails; a successful quiet build shows only the image
ID, as dockerd does.
"""

from __future__ import annotations

import asyncio
from typing import Any

Message = dict[str, Any]

_END = None


def error_message(message: str, code: int | None = None) -> Message:
    """docker's JSONError message; ``code`` is the exit status of a failed RUN."""
    detail: Message = {"code": code, "message": message} if code else {"message": message}
    return {"errorDetail": detail, "error": message}


class BuildOutput:
    """Ordered channels feeding one queue of messages (``None`` marks the end)."""

    def __init__(self, quiet: bool = False) -> None:
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self.quiet = quiet
        self._channels: list[Channel] = []
        self._live = 0
        self._held: list[Message] = []

    def channel(self) -> Channel:
        """A new channel, ordered after every channel opened before it."""
        chan = Channel(self, len(self._channels))
        self._channels.append(chan)
        return chan

    def _emit(self, message: Message) -> None:
        if self.quiet and "error" not in message:
            self._held.append(message)
            return
        self.queue.put_nowait(message)

    def _deliver(self, chan: Channel, message: Message) -> None:
        if chan.index == self._live:
            self._emit(message)
        else:
            chan.buffer.append(message)

    def _advance(self) -> None:
        while self._live < len(self._channels):
            current = self._channels[self._live]
            for message in current.buffer:
                self._emit(message)
            current.buffer.clear()
            if not current.closed:
                return
            self._live += 1

    def fail(self, message: str, code: int | None = None) -> None:
        """Flush everything held (quiet output, buffered channels) in order, then the error."""
        for chan in self._channels[self._live:]:
            for buffered in chan.buffer:
                self._emit(buffered)
            chan.buffer.clear()
            chan.closed = True
        self._live = len(self._channels)
        for held in self._held:
            self.queue.put_nowait(held)
        self._held.clear()
        self.queue.put_nowait(error_message(message, code))

    def finish(self) -> None:
        """End the stream (after the last channel is closed or :meth:`fail`)."""
        self.queue.put_nowait(_END)


class Channel:
    """One ordered writer: a build stage, or the parts before and after the stages."""

    def __init__(self, output: BuildOutput, index: int) -> None:
        self.output = output
        self.index = index
        self.buffer: list[Message] = []
        self.closed = False

    def send(self, message: Message) -> None:
        """Queue one message (dropped after the channel is closed)."""
        if not self.closed:
            self.output._deliver(self, message)

    def stream(self, text: str) -> None:
        """``{"stream": text}``."""
        if text:
            self.send({"stream": text})

    def step(self, number: int, total: int, original: str) -> None:
        """``Step N/M : <instruction>``, written as docker does: the line, then its newline."""
        self.stream(f"Step {number}/{total} : {original}")
        self.stream("\n")

    def image(self, image_id: str) -> None:
        """`` ---> <short id>`` after a step."""
        self.stream(f" ---> {short_id(image_id)}\n")

    def aux(self, image_id: str) -> None:
        """``{"aux": {"ID": ...}}``: the image a stage (or the build) produced."""
        self.send({"aux": {"ID": image_id}})

    def close(self) -> None:
        """No more messages: later channels may now go live."""
        if not self.closed:
            self.closed = True
            self.output._advance()

    def nested(self) -> Channel:
        """A channel writing into this one in place, whose ``close`` does nothing (a stage
        started on demand from inside another stage's step)."""
        return _Nested(self)


class _Nested(Channel):
    def __init__(self, parent: Channel) -> None:
        super().__init__(parent.output, parent.index)
        self.parent = parent

    def send(self, message: Message) -> None:
        self.parent.send(message)

    def close(self) -> None:
        pass


def short_id(image_id: str) -> str:
    """docker's ``stringid.TruncateID``: 12 hex digits without the ``sha256:`` prefix."""
    return image_id.split(":", 1)[-1][:12]
