"""The container lifecycle: create, start, stop, kill, restart, wait, remove, rename, pause,
update, prune, and recovery of running containers after a daemon restart (live restore).

Behaviour follows docker 20.10 (docs: "docker run", "Start containers automatically" for restart
policies; Engine API "Container" section for status codes and messages). Each container's
lifecycle operations are serialised by a per-container lock; a monitor task per running
container waits on its shim and handles the exit (state, cleanup, restart policy, auto-remove):
see :mod:`.monitor`. How a process is brought up (rootfs, volumes, network, spec, shim) is
:mod:`.starter`; create, rename, pause, update and prune are :mod:`.admin`; this module keeps the
containers' state, locks and events, and starts, stops and removes them.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import shutil
import signal as signals
from pathlib import Path
from typing import Any

from berth.aio import spawn, uncancellable
from berth.containers import admin, monitor, views
from berth.containers.attach import AttachHub
from berth.containers.exec import ExecService
from berth.containers.health import HealthMonitor
from berth.containers.model import ZERO_TIME, Container
from berth.containers.runner import Runner
from berth.containers.starter import Starter
from berth.containers.store import ContainerStore
from berth.errors import BerthError, Conflict, InvalidParameter, NotModified, SystemError_
from berth.runtime.process import RuntimeFailure
from berth.runtime.shimclient import ShimClient
from berth.runtime.shimproto import start_error_exit_code
from berth.signals import parse_signal
from berth.timeutil import rfc3339_nano

log = logging.getLogger("berth.containers")

DEFAULT_STOP_TIMEOUT = 10


class ContainerService:
    """Containers of one daemon. ``networks``/``volumes`` implement
    :mod:`berth.containers.interfaces` (either may be None while not built)."""

    def __init__(self, config: Any, db: Any, events: Any, images: Any, networks: Any, volumes: Any,
                 forkserver: Any) -> None:
        self.config = config
        self.events = events
        self.images = images
        self.networks = networks
        self.volumes = volumes
        self.store = ContainerStore(db)
        self.runner = Runner(config.data_root, config.exec_root, images.store.snapshotter, forkserver)
        self.attach_hub = AttachHub()
        self.starter = Starter(self.runner, networks, volumes, self.attach_hub, self.get)
        self._locks: dict[str, asyncio.Lock] = {}
        self._monitors: dict[str, asyncio.Task[None]] = {}
        self._changed: dict[str, asyncio.Condition] = {}
        self._exits: dict[str, int] = {}        # container id -> number of exits seen (for next-exit waits)
        self._removed: set[str] = set()
        self.closing = False                    # set by shutdown: no new policy restarts
        self.starting: set[asyncio.Task[Any]] = set()  # starts in flight; shutdown waits for them
        self.execs = ExecService(self)
        self.health = HealthMonitor(self)
        if networks is not None and hasattr(networks, "bind_containers"):
            networks.bind_containers(self.store.get, self.store.save, self.netns_path,
                                     refresh_files=self.refresh_etc_files)
        if volumes is not None and hasattr(volumes, "bind_containers"):
            volumes.bind_containers(self.store.all, self.store.get)

    # ----- small helpers -----------------------------------------------------------------
    def get(self, ref: str) -> Container:
        return self.store.get(ref)

    def _lock(self, cid: str) -> asyncio.Lock:
        return self._locks.setdefault(cid, asyncio.Lock())

    def _cond(self, cid: str) -> asyncio.Condition:
        return self._changed.setdefault(cid, asyncio.Condition())

    async def _notify(self, cid: str) -> None:
        cond = self._cond(cid)
        async with cond:
            cond.notify_all()

    def _event(self, action: str, c: Container, **extra: str) -> None:
        attrs = {"image": c.image, "name": c.name, **extra}
        attrs.update({k: str(v) for k, v in (c.config.get("Labels") or {}).items()})
        self.events.publish("container", action, c.id, attrs)

    def shim(self, c: Container) -> ShimClient:
        return self.starter.shim(c)

    def netns_path(self, c: Container) -> str | None:
        """``/proc/<pid>/ns/net`` of a running container, else None."""
        if c.state.running and c.state.pid:
            return f"/proc/{c.state.pid}/ns/net"
        return None

    def refresh_etc_files(self, c: Container) -> None:
        """A running container's networks changed: rewrite its /etc/hosts and resolv.conf (so a
        container connected to a user network resolves names there, as with dockerd)."""
        if c.state.running and self.starter.uses_network_service(c):
            self.runner.rewrite_etc_files(c, self.networks.hosts_file(c), self.networks.resolv_conf(c))

    def exec_ids(self, c: Container) -> list[str] | None:
        """Inspect's ``ExecIDs``: exec instances of ``c`` not yet ended (``self.execs`` is the
        :class:`berth.containers.exec.ExecService` the exec routes attach)."""
        execs = getattr(self, "execs", None)
        return execs.active_ids(c) if execs is not None else None

    def image_usage(self, image_id: str) -> list[tuple[str, bool]]:
        """Containers using ``image_id`` as ``(id, running)`` (for image removal and prune)."""
        return [(c.id, c.state.running) for c in self.store.all() if c.image_id == image_id]

    def counts(self) -> dict[str, int]:
        out = {"running": 0, "paused": 0, "stopped": 0}
        for c in self.store.all():
            if c.state.status == "paused":
                out["paused"] += 1
            elif c.state.running:
                out["running"] += 1
            else:
                out["stopped"] += 1
        return out

    # ----- create / rename / pause / update (see :mod:`.admin`) -----------------------
    async def create(self, body: dict[str, Any], name: str = "") -> dict[str, Any]:
        """``POST /containers/create`` (:func:`.admin.create`)."""
        return await admin.create(self, body, name)

    # ----- start -------------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        """``POST /containers/{id}/start``. Raises NotModified when already running.

        A cancelled caller (a client gone, a build cut short) does not cut the start short: it runs
        to its end under the container's lock, so no shim is left spawned but unrecorded, and a
        ``remove`` that follows waits for it."""
        await uncancellable(self._start_locked(ref), name=f"start {ref}", into=self.starting)

    async def _start_locked(self, ref: str) -> None:
        c = self.get(ref)
        async with self._lock(c.id):
            if c.state.status == "paused":
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.state.running:
                raise NotModified("container already started")
            if c.state.status in ("removing", "dead"):
                raise Conflict("container is marked for removal and cannot be started")
            try:
                await self._start(c)
            except BerthError:
                # dockerd removes an --rm container whose start failed (the CLI waits for that).
                if c.host_config.get("AutoRemove"):
                    spawn(self._remove_quietly(c.id))
                raise

    async def _remove_quietly(self, cid: str) -> None:
        try:
            await self.remove(cid, force=True, volumes=True)
        except BerthError:
            pass

    async def _start(self, c: Container) -> None:
        """Run ``c`` (its lock held) and record it running; a runtime failure is recorded as the
        exit code docker gives it (126/127/128) and raised as docker's ``OCI runtime create failed``;
        any other failure (a port in use, a missing network) is recorded as ``State.Error`` with
        exit code 128, as dockerd's containerStart does."""
        try:
            shim = await self.starter.start(c)
        except RuntimeFailure as exc:
            code = start_error_exit_code(exc.message)
            await self._record_start_failure(c, code, exc.message)
            message = f"OCI runtime create failed: {exc.message}: unknown"
            raise (InvalidParameter(message) if code in (126, 127) else SystemError_(message)) from None
        except BerthError as exc:
            await self._record_start_failure(c, c.state.exit_code or 128, exc.message)
            raise
        c.state.status = "running"
        c.state.commit_paused = False
        c.state.started_at = rfc3339_nano()
        c.state.exit_code = 0
        c.state.error = ""
        c.state.oom_killed = False
        c.started_before = True
        c.manually_stopped = False
        self.health.start(c)
        self.store.save(c)
        self._event("start", c)
        await self._notify(c.id)
        monitor.watch(self, c, shim)

    async def _record_start_failure(self, c: Container, code: int, error: str) -> None:
        c.state = type(c.state)(status="exited" if c.started_before else "created", exit_code=code,
                                error=error, finished_at=rfc3339_nano() if c.started_before else ZERO_TIME,
                                started_at=c.state.started_at, health=c.state.health)
        self.store.save(c)
        await self._notify(c.id)

    # ----- stop / kill / restart ---------------------------------------------------------
    async def stop(self, ref: str, timeout: int | None = None) -> None:
        """``POST /containers/{id}/stop``: stop signal, then SIGKILL after ``timeout`` seconds."""
        c = self.get(ref)
        if c.state.status == "restarting":
            c.manually_stopped = True
            c.state.status = "exited"
            self.store.save(c)
            await self._notify(c.id)
            return
        if not c.state.running:
            raise NotModified("container already stopped")
        c.manually_stopped = True
        self.store.save(c)
        await self._stop(c, timeout)
        self._event("stop", c)

    async def _stop(self, c: Container, timeout: int | None) -> None:
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            timeout = DEFAULT_STOP_TIMEOUT if timeout is None else int(timeout)
        stop_signal = str(c.config.get("StopSignal") or "").strip()
        sig = parse_signal(stop_signal) if stop_signal else signals.SIGTERM
        shim = self.shim(c)
        exits_before = self._exits.get(c.id, 0)
        if c.state.status == "paused":
            await self._thaw(c)
        try:
            await shim.kill(sig)
            self._event("kill", c, signal=str(sig))
        except BerthError:
            pass
        if timeout < 0:
            await self._wait_exit(c, exits_before, None)
            return
        if await self._wait_exit(c, exits_before, timeout):
            return
        try:
            await shim.kill(signals.SIGKILL)
            self._event("kill", c, signal=str(int(signals.SIGKILL)))
        except BerthError:
            pass
        await self._wait_exit(c, exits_before, 30)

    async def _wait_exit(self, c: Container, exits_before: int, timeout: float | None) -> bool:
        """Wait until the monitor has recorded an exit after ``exits_before``; False on timeout."""
        cond = self._cond(c.id)

        async def exited() -> None:
            async with cond:
                await cond.wait_for(lambda: self._exits.get(c.id, 0) > exits_before or c.id in self._removed)

        try:
            await asyncio.wait_for(exited(), timeout)
            return True
        except TimeoutError:
            return False

    async def kill(self, ref: str, sig: str | None = None) -> None:
        """``POST /containers/{id}/kill``. Raises Conflict when the container is not running."""
        c = self.get(ref)
        text = str(sig or "").strip()
        number = parse_signal(text) if text else signals.SIGKILL
        if not c.state.running or c.state.status == "restarting":
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        if number == signals.SIGKILL:
            c.manually_stopped = True
            self.store.save(c)
        if c.state.status == "paused" and number == signals.SIGKILL:
            await self.shim(c).kill(number)
            await self._thaw(c)
        else:
            await self.shim(c).kill(number)
        self._event("kill", c, signal=str(number))

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        """``POST /containers/{id}/restart``: stop (if running) then start."""
        c = self.get(ref)
        if c.state.running:
            c.manually_stopped = True
            await self._stop(c, timeout)
        async with self._lock(c.id):
            if not c.state.running:
                await self._start(c)
        self._event("restart", c)

    # ----- wait --------------------------------------------------------------------------
    async def wait(self, ref: str, condition: str = "not-running") -> dict[str, Any]:
        """``POST /containers/{id}/wait`` with ``condition`` not-running, next-exit or removed."""
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidParameter(f"invalid condition: {condition!r}")
        c = self.get(ref)
        cond = self._cond(c.id)
        exits_before = self._exits.get(c.id, 0)

        def done() -> bool:
            if condition == "removed":
                return c.id in self._removed
            if condition == "next-exit":
                return self._exits.get(c.id, 0) > exits_before or c.id in self._removed
            return not c.state.running or c.id in self._removed

        async with cond:
            await cond.wait_for(done)
        return {"StatusCode": c.state.exit_code, "Error": None}

    # ----- remove ------------------------------------------------------------------------
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        """``DELETE /containers/{id}``. Raises Conflict for a running container without force."""
        c = self.get(ref)
        if c.state.status == "paused" and not force:
            raise Conflict(f"You cannot remove a paused container {c.id}. Unpause and then stop the container "
                           "before attempting removal or force remove")
        if c.state.running and c.state.status != "restarting" and not force:
            raise Conflict(f"You cannot remove a running container {c.id}. Stop the container before "
                           "attempting removal or force remove")
        c.manually_stopped = True
        while True:
            if c.state.running and c.state.status != "restarting":
                await self._stop(c, 0 if force else -1)
            async with self._lock(c.id):
                if self.store.find(c.id) is None:
                    return
                if not (c.state.running and c.state.status != "restarting"):
                    await self._remove_locked(c, volumes)
                    break
                if not force:  # a start ended while we waited for the lock
                    raise Conflict(f"You cannot remove a running container {c.id}. Stop the container before "
                                   "attempting removal or force remove")
        await self._notify(c.id)
        self._locks.pop(c.id, None)

    async def _remove_locked(self, c: Container, volumes: bool) -> None:
        """The removal itself, ``c`` stopped and its lock held."""
        c.state.status = "removing"
        if self.networks is not None:
            await self.networks.forget(c)
        if self.volumes is not None:
            await self.volumes.remove_container(c, volumes)
        self.runner.remove_rootfs(c.id)
        self.store.remove(c)
        self._removed.add(c.id)
        self._event("destroy", c)

    async def rename(self, ref: str, new_name: str) -> None:
        """``POST /containers/{id}/rename`` (:func:`.admin.rename`)."""
        await admin.rename(self, ref, new_name)

    async def pause(self, ref: str, by_commit: bool = False) -> None:
        """``POST /containers/{id}/pause`` (:func:`.admin.pause`)."""
        await admin.pause(self, ref, by_commit)

    async def _thaw(self, c: Container) -> None:
        await admin.thaw(self, c)

    async def unpause(self, ref: str) -> None:
        """``POST /containers/{id}/unpause`` (:func:`.admin.unpause`)."""
        await admin.unpause(self, ref)

    async def update(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /containers/{id}/update`` (:func:`.admin.update`)."""
        return await admin.update(self, ref, body)

    # ----- list / inspect / prune --------------------------------------------------------
    def list(self, all_: bool = False, limit: int = -1, size: bool = False,
             filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        return views.list_containers(self, all_, limit, size, filters or {})

    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        c = self.get(ref)
        return views.inspect(self, c, size)

    async def prune(self, filters: dict[str, builtins.list[str]]) -> dict[str, Any]:
        """``POST /containers/prune`` (:func:`.admin.prune`)."""
        return await admin.prune(self, filters)

    def size_rw(self, c: Container) -> int:
        try:
            return self.runner.snapshotter.usage(c.id)
        except Exception:
            return 0

    # ----- daemon start / stop -----------------------------------------------------------
    async def boot(self) -> None:
        """Daemon start: reconnect to shims of running containers, record exits that happened
        while the daemon was away, then apply restart policies (docs: "Live restore")."""
        await monitor.restore(self)
        await asyncio.to_thread(self._remove_stale_shim_dirs)

    def _remove_stale_shim_dirs(self) -> None:
        """Remove the state directories of exec shims that ended while no daemon read them (a
        health probe or ``exec`` cut off by a daemon crash); containers' and live shims' stay."""
        shims = self.runner.exec_root / "shims"
        known = {c.id for c in self.store.all()}
        for entry in (os.scandir(shims) if shims.is_dir() else []):
            if entry.name in known or ShimClient(Path(entry.path)).is_alive():
                continue
            shutil.rmtree(entry.path, ignore_errors=True)

    async def shutdown(self, start_timeout: float = 15.0) -> None:
        """Daemon exit: let starts in flight finish (``start_timeout`` seconds at most, so none
        leaves a shim unrecorded), then stop watching shims (containers keep running: live
        restore) and stop health probes."""
        self.closing = True
        if self.starting:
            await asyncio.wait(set(self.starting), timeout=start_timeout)
        monitor.stop_watching(self)
        await self.health.stop_all()


__all__ = ["ContainerService"]
