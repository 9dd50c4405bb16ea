"""Container healthchecks: run ``Config.Healthcheck`` in running containers and keep ``State.Health``.

Behaviour follows dockerd 20.10 (docs: Dockerfile reference "HEALTHCHECK", "docker run" health
options; Engine API v1.41 "Health" and "HealthcheckResult"; checked side by side with dockerd):

- ``Test`` is ``["CMD", args...]`` (exec form), ``["CMD-SHELL", command]`` (run by the container's
  ``Shell``, default ``/bin/sh -c``) or ``["NONE"]`` (disabled); zero durations take the defaults
  (interval and timeout 30 s, start period 0), retries <= 0 means 3.
- The first probe runs one interval after the start; a probe is an exec in the container (same
  user, working directory and environment as ``docker exec``), announced by ``exec_create``,
  ``exec_start`` and ``exec_die`` events but not listed in ``ExecIDs``.
- Exit 0 is healthy; anything else is a failure; a probe still running after the timeout is killed
  and recorded as exit -1 with ``Health check exceeded timeout (<go duration>)``; a probe that cannot
  start is exit -1 with the exec error. Stdout and stderr together keep at most 4096 bytes (then
  ``...``); the log keeps the last five results.
- While the status is ``starting``, failures whose probe began within the start period do not
  count; ``retries`` consecutive counted failures make it ``unhealthy``. Each status change is a
  ``health_status: <status>`` event.
- Starting the container resets the status to ``starting`` and the streak to 0 (the log is kept);
  when the container stops or pauses, probing stops and the status becomes ``unhealthy`` (dockerd's
  "unhealthy when the monitor has stopped"); unpause and a daemon restart (live restore) resume
  probing where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from berth.aio import spawn
from berth.containers.model import Container, Health, HealthcheckResult
from berth.errors import BerthError
from berth.runtime.shimclient import AttachStream, ShimClient
from berth.runtime.shimproto import ExitStatus
from berth.timeutil import parse_rfc3339_ns, rfc3339_nano

if TYPE_CHECKING:
    from berth.containers.exec import ExecInstance

log = logging.getLogger("berth.containers.health")

DEFAULT_INTERVAL_NS = 30_000_000_000
DEFAULT_TIMEOUT_NS = 30_000_000_000
DEFAULT_RETRIES = 3
MAX_OUTPUT = 4096
MAX_LOG_ENTRIES = 5
KILL_WAIT = 10.0
"""Seconds to wait for a killed probe to be gone before giving up on it."""


@dataclass(frozen=True)
class Probe:
    """A container's healthcheck, resolved: ``argv`` to exec; ``interval``, ``timeout``,
    ``start_period`` in nanoseconds (defaults applied); ``retries`` >= 1."""

    argv: tuple[str, ...]
    interval: int
    timeout: int
    start_period: int
    retries: int


def probe_of(config: dict[str, Any]) -> Probe | None:
    """The probe of a container ``Config`` (docker's ``container.Config`` shape), None without a
    healthcheck, with ``NONE``, an unknown test type or an empty command (dockerd's getProbe)."""
    check = config.get("Healthcheck") or {}
    test = [str(a) for a in check.get("Test") or []]
    if not test:
        return None
    if test[0] == "CMD":
        argv = test[1:]
    elif test[0] == "CMD-SHELL":
        argv = [*(config.get("Shell") or ["/bin/sh", "-c"]), *test[1:]]
    else:
        return None
    if not argv:
        return None
    retries = int(check.get("Retries") or 0)
    return Probe(tuple(argv), int(check.get("Interval") or 0) or DEFAULT_INTERVAL_NS,
                 int(check.get("Timeout") or 0) or DEFAULT_TIMEOUT_NS, max(int(check.get("StartPeriod") or 0), 0),
                 retries if retries > 0 else DEFAULT_RETRIES)


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``500ms``, ``1s``, ``1.5s``, ``1m30s``, ``1h0m0s``."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _decimal(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _decimal(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    return f"{sign}{minutes}m{seconds}" if minutes else sign + seconds


def _decimal(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


class OutputBuffer:
    """Probe output as dockerd keeps it: the first :data:`MAX_OUTPUT` bytes of stdout and stderr
    interleaved, ``...`` appended when more came; decoded as UTF-8 with replacement."""

    def __init__(self) -> None:
        self._data = bytearray()
        self.truncated = False

    def write(self, chunk: bytes) -> None:
        keep = max(0, min(MAX_OUTPUT - len(self._data), len(chunk)))
        self._data += chunk[:keep]
        if keep < len(chunk):
            self.truncated = True

    def text(self) -> str:
        return self._data.decode("utf-8", "replace") + ("..." if self.truncated else "")


def apply_result(health: Health, result: HealthcheckResult, probe: Probe, started_at: str) -> bool:
    """Record ``result`` in ``health`` (dockerd's handleProbeResult); True when the status changed.

    ``started_at`` is the container's ``State.StartedAt`` (RFC 3339): a failure of a probe that
    started less than ``probe.start_period`` after it does not count while ``starting``."""
    old = health.status
    health.log = [*health.log, result][-MAX_LOG_ENTRIES:]
    if result.exit_code == 0:
        health.failing_streak = 0
        health.status = "healthy"
        return health.status != old
    counts = True
    if health.status == "starting":
        try:
            counts = parse_rfc3339_ns(result.start) - parse_rfc3339_ns(started_at) >= probe.start_period
        except ValueError:
            counts = True
    if counts:
        health.failing_streak += 1
        if health.failing_streak >= probe.retries:
            health.status = "unhealthy"
    return health.status != old


def status_suffix(health: Health) -> str:
    """The part of ``ps`` STATUS in parentheses: ``health: starting``, ``healthy``, ``unhealthy``."""
    return "health: starting" if health.status == "starting" else health.status


class HealthMonitor:
    """The probing tasks of one daemon's running containers. ``service`` is the
    :class:`~berth.containers.service.ContainerService` (store, events, ``execs``)."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cleanups: set[asyncio.Task[None]] = set()

    def start(self, c: Container) -> None:
        """``c`` has just started: status ``starting``, streak 0 (log kept), probing begins.
        Does nothing for a container without a probe. The caller saves ``c``."""
        if probe_of(c.config) is None:
            return
        if c.state.health is None:
            c.state.health = Health()
        c.state.health.status = "starting"
        c.state.health.failing_streak = 0
        self.resume(c)

    def resume(self, c: Container) -> None:
        """Probe ``c`` again without resetting its status (unpause, daemon restart)."""
        probe = probe_of(c.config)
        if probe is None or c.id in self._tasks:
            return
        if c.state.health is None:
            c.state.health = Health()
        self._tasks[c.id] = asyncio.create_task(self._loop(c, probe))

    def stop(self, c: Container) -> None:
        """``c`` stopped or paused: stop probing; its status becomes ``unhealthy`` as dockerd
        reports a container whose monitor stopped. The caller saves ``c``."""
        task = self._tasks.pop(c.id, None)
        if task is not None:
            task.cancel()
        if c.state.health is not None:
            c.state.health.status = "unhealthy"

    async def stop_all(self, timeout: float = 5.0) -> None:
        """Daemon exit: cancel every probing task, statuses untouched (the containers keep running),
        and give the probes cut short up to ``timeout`` seconds to be killed and their shims removed."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        if self._cleanups:
            await asyncio.wait(set(self._cleanups), timeout=timeout)

    def _cleanup(self, coro: Coroutine[Any, Any, None]) -> None:
        task = spawn(coro)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _loop(self, c: Container, probe: Probe) -> None:
        try:
            while True:
                await asyncio.sleep(probe.interval / 1e9)
                result = await self._run(c, probe)
                if self._tasks.get(c.id) is not asyncio.current_task() or c.state.health is None:
                    return
                if apply_result(c.state.health, result, probe, c.state.started_at):
                    self.service._event(f"health_status: {c.state.health.status}", c)
                if self.service.store.find(c.id) is not None:
                    self.service.store.save(c)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("health check of %s failed", c.id)
            self._tasks.pop(c.id, None)

    async def _run(self, c: Container, probe: Probe) -> HealthcheckResult:
        """One probe of ``c``; never raises but CancelledError (the probe is killed then)."""
        start = rfc3339_nano()
        # A cancel must not fall between spawning the exec shim and starting it: a shim whose process
        # never started waits for a start forever. The launch runs to its end and is undone after.
        launch = asyncio.ensure_future(self._launch(c, probe))
        try:
            inst, shim, stream = await asyncio.shield(launch)
        except asyncio.CancelledError:
            self._cleanup(_abandon(launch))
            raise
        except Exception as exc:
            message = exc.message if isinstance(exc, BerthError) else str(exc)
            return HealthcheckResult(start, rfc3339_nano(), -1, message)
        output = OutputBuffer()
        finished = False
        try:
            try:
                status = await asyncio.wait_for(_collect(stream, shim, output), probe.timeout / 1e9)
                code, text = status.exit_code, output.text()
            except TimeoutError:
                status = await _kill(shim)
                code, text = -1, f"Health check exceeded timeout ({go_duration(probe.timeout)})"
            self.service.execs.internal_ended(c, inst, status.exit_code)
            finished = True
            return HealthcheckResult(start, rfc3339_nano(), code, text)
        finally:
            stream.close()
            self._cleanup(_dispose(shim, kill=not finished))

    async def _launch(self, c: Container, probe: Probe) -> tuple[ExecInstance, ShimClient, AttachStream]:
        """Spawn the probe's exec shim, attach to its output and start it. Raises the start errors
        (the shim then ends by itself and its state is removed)."""
        execs = self.service.execs
        inst, shim = await execs.spawn_internal(c, list(probe.argv))
        stream: AttachStream | None = None
        try:
            stream = await shim.attach(False, True, True)
            await execs.start_internal(c, inst, shim)
        except BaseException:
            if stream is not None:
                stream.close()
            self._cleanup(_dispose(shim, kill=False, shim_pid=inst.shim_pid))
            raise
        return inst, shim, stream


async def _abandon(launch: asyncio.Future[tuple[ExecInstance, ShimClient, AttachStream]]) -> None:
    """Undo a launch whose probe was cancelled: once started, kill it and remove its state."""
    try:
        _inst, shim, stream = await launch
    except BaseException:
        return
    stream.close()
    await _dispose(shim, kill=True)


async def _collect(stream: AttachStream, shim: ShimClient, output: OutputBuffer) -> ExitStatus:
    while (frame := await stream.read()) is not None:
        output.write(frame[1])
    return stream.exit_status or await shim.wait()


async def _kill(shim: ShimClient) -> ExitStatus:
    with contextlib.suppress(BerthError):
        await shim.kill(signal.SIGKILL)
    try:
        return await asyncio.wait_for(shim.wait(), KILL_WAIT)
    except TimeoutError:
        return ExitStatus(137, False, rfc3339_nano())


async def _dispose(shim: ShimClient, kill: bool, shim_pid: int = 0) -> None:
    """Remove a probe's shim state once it is gone (killing the probe first when it was cut short).
    With ``shim_pid`` (a failed start), a shim still waiting for its start is killed itself: one whose
    start failed unexpectedly (the container's init gone mid-exec) would wait for ever."""
    try:
        if shim_pid and (await shim.state()).status == "created":
            os.kill(shim_pid, signal.SIGKILL)
        elif kill:
            await _kill(shim)
        else:
            await asyncio.wait_for(shim.wait(), KILL_WAIT)
    except Exception:
        log.debug("probe shim %s did not end", shim.state_dir.name, exc_info=True)
    await asyncio.to_thread(shutil.rmtree, shim.state_dir, True)
