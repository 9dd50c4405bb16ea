"""Exits of running containers: a monitor task per container waits on its shim; an exit is
recorded, then the restart policy or ``--rm`` applies. Also the daemon-start restore.

Behaviour follows docker 20.10 (docs: "Start containers automatically": ``no``, ``on-failure[:N]``,
``always``, ``unless-stopped``; a manual stop suspends the policy; the delay before a restart
doubles from 100 ms up to a minute and resets once the container ran for 10 s; "Live restore":
running containers are found again through their shims). The functions take the
:class:`~berth.containers.service.ContainerService` whose containers they watch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from berth.aio import spawn, uncancellable
from berth.containers.model import Container
from berth.errors import BerthError, NotFound
from berth.runtime import cgroups
from berth.runtime.shimclient import ShimClient
from berth.runtime.shimproto import ExitStatus
from berth.timeutil import parse_rfc3339_ns, rfc3339_nano

if TYPE_CHECKING:
    from berth.containers.service import ContainerService

log = logging.getLogger("berth.containers")

RESTART_BACKOFF_START = 0.1
RESTART_BACKOFF_MAX = 60.0


def watch(svc: ContainerService, c: Container, shim: ShimClient) -> None:
    """Start the monitor task of running container ``c``."""
    svc._monitors[c.id] = asyncio.create_task(_monitor(svc, c, shim))


def stop_watching(svc: ContainerService) -> None:
    """Cancel every monitor task (daemon exit: the containers keep running)."""
    for task in list(svc._monitors.values()):
        task.cancel()
    svc._monitors.clear()


async def _monitor(svc: ContainerService, c: Container, shim: ShimClient) -> None:
    try:
        status = await shim.wait()
    except asyncio.CancelledError:
        return
    except Exception:
        log.exception("waiting for %s failed", c.id)
        status = ExitStatus(137, False, rfc3339_nano())
    svc._monitors.pop(c.id, None)
    await on_exit(svc, c, status)


async def on_exit(svc: ContainerService, c: Container, status: ExitStatus) -> None:
    """Record that ``c`` exited with ``status`` (network released, rootfs unmounted, ``die`` and
    ``oom`` events), then restart it after the policy's delay, or remove it (``--rm``)."""
    async with svc._lock(c.id):
        if svc.store.find(c.id) is None:
            return
        svc.health.stop(c)
        if svc.starter.uses_network_service(c):
            try:
                await svc.networks.release(c)
            except Exception:
                log.exception("releasing the network of %s failed", c.id)
        await svc.starter.cleanup(c)
        ran_for = time.time() - _seconds(c.state.started_at)
        c.state.status = "exited"
        c.state.commit_paused = False
        c.state.pid = 0
        c.state.exit_code = status.exit_code
        c.state.oom_killed = bool(status.oom_killed)
        c.state.finished_at = status.finished_at or rfc3339_nano()
        svc._exits[c.id] = svc._exits.get(c.id, 0) + 1
        if status.oom_killed:
            svc._event("oom", c)
        svc._event("die", c, exitCode=str(status.exit_code))
        restart = should_restart(c)
        if restart:
            c.state.status = "restarting"
        svc.store.save(c)
    await svc._notify(c.id)
    if restart:
        delay = restart_delay(c.restart_count, ran_for)
        asyncio.get_running_loop().call_later(delay, lambda: spawn(_guarded_restart(svc, c)))
    elif c.host_config.get("AutoRemove"):
        try:
            await svc.remove(c.id, force=True, volumes=True)
        except NotFound:
            pass


def should_restart(c: Container) -> bool:
    """Whether ``c``'s restart policy restarts it after the exit just recorded."""
    if c.manually_stopped:
        return False
    policy = c.host_config.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure" and c.state.exit_code != 0:
        limit = int(policy.get("MaximumRetryCount") or 0)
        return limit == 0 or c.restart_count < limit
    return False


def restart_delay(restart_count: int, ran_for: float) -> float:
    """Seconds before a policy restart: 100 ms doubled per restart so far, at most a minute; back
    to 100 ms when the container ran for 10 s or more."""
    if ran_for >= 10:
        return RESTART_BACKOFF_START
    return min(RESTART_BACKOFF_MAX, RESTART_BACKOFF_START * (2 ** min(restart_count, 10)))


async def _guarded_restart(svc: ContainerService, c: Container) -> None:
    """A policy restart that a daemon exit neither starts nor cuts short: once closing, the
    container stays ``restarting`` in its record and the next daemon's restore restarts it."""
    if not svc.closing:
        await uncancellable(_policy_restart(svc, c), name=f"restart {c.id}", into=svc.starting)


async def _policy_restart(svc: ContainerService, c: Container) -> None:
    async with svc._lock(c.id):
        if svc.closing:
            return
        if svc.store.find(c.id) is None or c.state.status != "restarting" or c.manually_stopped:
            if c.state.status == "restarting":
                c.state.status = "exited"
                svc.store.save(c)
            return
        c.restart_count += 1
        try:
            await svc._start(c)
        except BerthError as exc:
            log.warning("restarting %s failed: %s", c.id, exc)
            c.state.status = "exited"
            svc.store.save(c)
            await svc._notify(c.id)


async def restore(svc: ContainerService) -> None:
    """Daemon start: reconnect to the shims of running containers, record the exits that happened
    while the daemon was away, then start the ``always`` and ``unless-stopped`` ones."""
    running: list[Container] = []
    for c in svc.store.all():
        if c.state.status not in ("running", "paused", "restarting"):
            continue
        shim = svc.shim(c)
        if c.state.status != "restarting" and shim.is_alive():
            running.append(c)
            watch(svc, c, shim)
            if c.state.commit_paused:
                await _undo_commit_pause(svc, c)
            elif c.state.status == "running":
                # Frozen for a ``cp`` (or before a pause was recorded) by a daemon killed then:
                # nobody paused it, so it must run.
                await asyncio.to_thread(_thaw_quietly, c.cgroup_path)
            if c.state.status == "running":
                svc.health.resume(c)
            continue
        status = shim.read_exit() or ExitStatus(137 if c.state.status != "restarting" else c.state.exit_code,
                                                  False, rfc3339_nano())
        await on_exit(svc, c, status)
    if svc.networks is not None and hasattr(svc.networks, "restore"):
        await svc.networks.restore([c for c in running if svc.starter.uses_network_service(c)])
    for c in svc.store.all():
        if c.state.status != "exited" or not c.started_before:
            continue
        name = (c.host_config.get("RestartPolicy") or {}).get("Name")
        if name == "always" or (name == "unless-stopped" and not c.manually_stopped):
            try:
                async with svc._lock(c.id):
                    await svc._start(c)
            except BerthError as exc:
                log.warning("restarting %s at daemon start failed: %s", c.id, exc)


async def _undo_commit_pause(svc: ContainerService, c: Container) -> None:
    """Thaw a container a commit froze when the daemon died under it: dockerd pauses only for
    the diff (``docker commit`` reference), so nothing else would ever unpause it."""
    log.info("container %s was paused by a commit the last daemon did not finish: unpausing", c.id)
    try:
        await svc._thaw(c)
    except (OSError, TimeoutError) as exc:
        log.warning("cannot unpause %s after an interrupted commit: %s", c.id, exc)
        return
    svc._event("unpause", c)


def _thaw_quietly(cgroup_path: str) -> None:
    try:
        if cgroups.is_frozen(cgroup_path):
            cgroups.thaw(cgroup_path)
    except (OSError, KeyError, TimeoutError) as exc:
        log.warning("cannot thaw %s: %s", cgroup_path, exc)


def _seconds(stamp: str) -> float:
    try:
        return parse_rfc3339_ns(stamp) / 1e9
    except ValueError:
        return 0.0
