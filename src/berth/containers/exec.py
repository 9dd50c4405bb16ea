"""Exec instances: ``docker exec`` (Engine API v1.41 "Exec" section).

An exec instance is created for a running container (``POST /containers/{id}/exec``), started
once (``POST /exec/{id}/start``, hijacked like attach or detached), resized, inspected. Each
started exec runs in its own shim (:class:`berth.runtime.shimproto.ShimConfig` ``mode="exec"``)
joined to the container's init; a monitor task records its exit code.

Records live in memory only, as dockerd keeps them (they do not survive a daemon restart). The
rules follow dockerd 20.10 as observed: an exec never started disappears when its container
stops; started ones stay inspectable until the container is removed; ``ExecIDs`` of inspect lists
the instances that have not ended; a failed start records exit code 126 and no ``exec_die``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.containers.attach import AttachSession, frame, parse_detach_keys, relay
from berth.containers.model import Container
from berth.containers.views import status_text
from berth.errors import BerthError, Conflict, InvalidParameter, NotFound, SystemError_
from berth.runtime import caps
from berth.runtime.process import RuntimeFailure
from berth.runtime.shimclient import ShimClient, ShimGone
from berth.runtime.shimproto import ShimConfig
from berth.runtime.spec import default_env
from berth.runtime.user import ExecUser, resolve_user

log = logging.getLogger("berth.containers.exec")

FAILED_START_EXIT_CODE = 126
"""dockerd records 126 for every exec whose process could not be started."""
READY_TIMEOUT = 10.0
"""Seconds a resize waits for the exec to start (dockerd's hard-coded wait)."""
EXIT_RECORD_TIMEOUT = 5.0


@dataclass
class ExecInstance:
    """One exec instance. ``container_started_at`` ties an unstarted exec to one run of its
    container; ``detach_keys`` is None when the client gave none."""

    id: str
    container_id: str
    container_started_at: str
    entrypoint: str
    arguments: list[str]
    tty: bool = False
    privileged: bool = False
    user: str = ""
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    open_stdin: bool = False
    open_stdout: bool = False
    open_stderr: bool = False
    detach_keys: bytes | None = None
    started: bool = False
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    shim_pid: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def command_line(self) -> str:
        """``entrypoint args...`` as dockerd writes it in event actions (trailing space kept)."""
        return f"{self.entrypoint} {' '.join(self.arguments)}"

    def to_json(self) -> dict[str, Any]:
        """``ExecInspectResponse`` (``user`` only when set, as Go's omitempty does)."""
        process: dict[str, Any] = {"tty": self.tty, "entrypoint": self.entrypoint,
                                   "arguments": list(self.arguments), "privileged": self.privileged}
        if self.user:
            process["user"] = self.user
        keys = base64.b64encode(self.detach_keys).decode() if self.detach_keys else ""
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code, "ProcessConfig": process,
                "OpenStdin": self.open_stdin, "OpenStderr": self.open_stderr, "OpenStdout": self.open_stdout,
                "CanRemove": False, "ContainerID": self.container_id, "DetachKeys": keys, "Pid": self.pid}


def replace_or_append_env(base: list[str], overrides: list[str]) -> list[str]:
    """``base`` with each ``KEY=VALUE`` of ``overrides`` replacing its key in place or appended;
    a bare ``KEY`` removes the key (docker's ``ReplaceOrAppendEnvValues``)."""
    out = list(base)
    for entry in overrides:
        key, has_value, _ = entry.partition("=")
        same = [i for i, e in enumerate(out) if e.partition("=")[0] == key]
        if not has_value:
            out = [e for e in out if e.partition("=")[0] != key]
        elif same:
            out[same[0]] = entry
        else:
            out.append(entry)
    return out


def process_spec(inst: ExecInstance, config: dict[str, Any], init_process: dict[str, Any], user: ExecUser,
                 all_capabilities: list[str], console_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The OCI runtime-spec ``process`` object (config.md "Process") for ``inst``.

    Args:
        inst: the exec instance.
        config: the container's ``Config`` (Env, Hostname, WorkingDir).
        init_process: the ``process`` of the container's ``config.json`` (capabilities, no_new_privs).
        user: the exec user resolved in the container's rootfs.
        all_capabilities: what ``Privileged`` grants (every capability the kernel knows).
        console_size: ``(height, width)`` of the terminal, when the client sent one.

    Environment as dockerd builds it: PATH, HOSTNAME, TERM (exec with a tty), the container's Env,
    then the exec's Env (bare ``KEY`` removes), HOME from passwd when still unset.
    """
    env = replace_or_append_env(list(config.get("Env") or []), inst.env)
    process: dict[str, Any] = {
        "terminal": inst.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": [inst.entrypoint, *inst.arguments],
        "env": default_env(env, inst.tty, config.get("Hostname") or "", user.home),
        "cwd": inst.working_dir or config.get("WorkingDir") or "/",
        "noNewPrivileges": bool(init_process.get("noNewPrivileges")),
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = list(user.additional_gids)
    if inst.privileged:
        process["capabilities"] = {kind: list(all_capabilities) for kind in ("bounding", "effective", "permitted")}
    elif init_process.get("capabilities") is not None:
        process["capabilities"] = init_process["capabilities"]
    if console_size and all(console_size):
        process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    return process


def start_error(message: str) -> BerthError:
    """The API error for a runtime exec failure, worded and classed as dockerd 20.10 does
    (``OCI runtime exec failed: exec failed: ...: unknown``; 400 when the program is missing,
    not runnable or a path is not a directory, else 500)."""
    if not message.startswith("exec failed: "):
        message = f"exec failed: unable to start container process: {message}"
    text = f"OCI runtime exec failed: {message}: unknown"
    invalid = ("executable file not found", "no such file or directory", "permission denied", "not a directory")
    return InvalidParameter(text) if any(s in message for s in invalid) else SystemError_(text)


def _privileged_capabilities() -> list[str]:
    from berth.runtime.linux import last_cap

    try:
        return list(caps.CAPABILITIES[: last_cap() + 1])
    except OSError:
        return list(caps.CAPABILITIES)


class ExecService:
    """The exec instances of one daemon, over a :class:`~berth.containers.service.ContainerService`."""

    def __init__(self, containers: Any) -> None:
        self.containers = containers
        self._execs: dict[str, ExecInstance] = {}
        self._monitors: set[asyncio.Task[None]] = set()

    # ----- records -----------------------------------------------------------------------
    def _visible(self, inst: ExecInstance) -> bool:
        c = self.containers.store.find(inst.container_id)
        if c is None:
            return False
        return inst.started or (c.state.running and c.state.started_at == inst.container_started_at)

    def _prune(self) -> None:
        for exec_id in [i for i, inst in self._execs.items() if not self._visible(inst)]:
            del self._execs[exec_id]

    def get(self, exec_id: str) -> ExecInstance:
        """The instance ``exec_id``. Raises NotFound (``No such exec instance: x``)."""
        inst = self._execs.get(exec_id)
        if inst is None or not self._visible(inst):
            self._execs.pop(exec_id, None)
            raise NotFound(f"No such exec instance: {exec_id}")
        return inst

    def active_ids(self, c: Container) -> list[str] | None:
        """Inspect's ``ExecIDs``: instances of ``c`` that have not ended, None when there are none."""
        ids = [i for i, inst in self._execs.items()
               if inst.container_id == c.id and inst.exit_code is None and self._visible(inst)]
        return ids or None

    def inspect(self, exec_id: str) -> dict[str, Any]:
        """``GET /exec/{id}/json``. Raises NotFound."""
        return self.get(exec_id).to_json()

    def _event(self, action: str, c: Container, inst: ExecInstance, **extra: str) -> None:
        attrs = {str(k): str(v) for k, v in (c.config.get("Labels") or {}).items()}
        attrs.update({"image": c.image, "name": c.name, "execID": inst.id, **extra})
        self.containers.events.publish("container", action, c.id, attrs)

    # ----- create ------------------------------------------------------------------------
    def create(self, ref: str, body: dict[str, Any]) -> dict[str, str]:
        """``POST /containers/{id}/exec``: body ``ExecConfig`` (Cmd, Env, User, WorkingDir, Tty,
        Privileged, Attach*, DetachKeys). Returns ``{"Id": ...}``. Raises InvalidParameter (no
        command, bad detach keys), NotFound, Conflict (not running, paused, restarting)."""
        cmd = [str(a) for a in body.get("Cmd") or []]
        if not cmd:
            raise InvalidParameter("No exec command specified")
        keys = None
        if body.get("DetachKeys"):
            try:
                keys = parse_detach_keys(str(body["DetachKeys"]))
            except InvalidParameter:
                raise InvalidParameter(f"Invalid escape keys ({body['DetachKeys']}) provided") from None
        c = self.containers.get(ref)
        _check_running_for_create(c, ref)
        self._prune()
        inst = ExecInstance(
            id=secrets.token_hex(32), container_id=c.id, container_started_at=c.state.started_at,
            entrypoint=cmd[0], arguments=cmd[1:], tty=bool(body.get("Tty")), privileged=bool(body.get("Privileged")),
            user=str(body.get("User") or ""), env=[str(e) for e in body.get("Env") or []],
            working_dir=str(body.get("WorkingDir") or ""), open_stdin=bool(body.get("AttachStdin")),
            open_stdout=bool(body.get("AttachStdout")), open_stderr=bool(body.get("AttachStderr")),
            detach_keys=keys)
        self._execs[inst.id] = inst
        self._event(f"exec_create: {inst.command_line}", c, inst)
        return {"Id": inst.id}

    # ----- start -------------------------------------------------------------------------
    def _running_container(self, inst: ExecInstance) -> Container:
        """The container of ``inst`` when an exec may run in it (dockerd's checks and texts)."""
        c = self.containers.store.find(inst.container_id)
        if c is None:
            raise NotFound(f"No such exec instance: {inst.id}")
        if not c.state.running:
            raise SystemError_(f"Container {c.id} is not running: {status_text(c)}")
        if c.state.status == "paused":
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if c.state.status == "restarting":
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        return c

    def _claim(self, inst: ExecInstance) -> Container:
        c = self._running_container(inst)
        if inst.running:
            raise Conflict(f"Error: Exec command {inst.id} is already running")
        if inst.started:
            raise Conflict(f"Error: Exec command {inst.id} has already run")
        inst.started = True
        self._event(f"exec_start: {inst.command_line}", c, inst)
        return c

    async def start_detached(self, exec_id: str) -> None:
        """``POST /exec/{id}/start`` with ``Detach``: run it, do not wait. Raises the start errors."""
        inst = self.get(exec_id)
        c = self._claim(inst)
        shim = await self._spawn(inst, c, None)
        await self._run(inst, c, shim)

    async def start_attached(self, exec_id: str, session: AttachSession,
                             console_size: tuple[int, int] | None = None) -> None:
        """Run ``exec_id`` relaying its streams over ``session`` (a hijacked connection) until it
        ends, the client detaches or goes away; then the exit code is recorded. Errors after the
        hijack are written in-band, as dockerd does (``<message>\\r\\n`` on stdout)."""
        try:
            inst = self.get(exec_id)
            c = self._claim(inst)
            shim = await self._spawn(inst, c, console_size)
            stream = await shim.attach(inst.open_stdin and session.stdin, session.stdout, session.stderr)
            try:
                await self._run(inst, c, shim)
            except BaseException:
                stream.close()
                raise
        except BerthError as exc:
            data = (exc.message + "\r\n").encode()
            session.writer.write(data if session.tty else frame(1, data))
            with contextlib.suppress(ConnectionError):
                await session.writer.drain()
            return
        how = await relay(session, stream)
        if how == "exited":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(inst.ended.wait(), EXIT_RECORD_TIMEOUT)

    async def _spawn(self, inst: ExecInstance, c: Container, console_size: tuple[int, int] | None) -> ShimClient:
        """Start the exec's shim (the process runs on ``start``). Failures end the instance."""
        try:
            runner = self.containers.runner
            user = await asyncio.to_thread(resolve_user, runner.rootfs(c.id), inst.user or c.config.get("User") or "",
                                           c.host_config.get("GroupAdd") or [])
            init = await asyncio.to_thread(_init_process, runner.bundle(c.id))
            process = process_spec(inst, c.config, init, user, _privileged_capabilities(), console_size)
            state_dir = runner.state_dir(inst.id)
            shutil.rmtree(state_dir, ignore_errors=True)
            state_dir.mkdir(parents=True)
            cfg = ShimConfig(id=inst.id, mode="exec", container_id=c.id, state_dir=state_dir, runtime=c.runtime,
                             runtime_root=runner.exec_root / "runtime" / c.runtime, process=process,
                             init_pid=c.state.pid, terminal=inst.tty, open_stdin=inst.open_stdin, stdin_once=True)
            inst.shim_pid = await runner.spawn_shim(cfg)
        except RuntimeFailure as exc:
            self._failed(inst)
            raise start_error(exc.message) from None
        except BaseException:
            self._failed(inst)
            raise
        return ShimClient(state_dir)

    async def _run(self, inst: ExecInstance, c: Container, shim: ShimClient) -> None:
        try:
            inst.pid = await shim.start()
        except (RuntimeFailure, ShimGone) as exc:
            self._failed(inst)
            self._watch(shim.wait(), lambda _status: None, shim)
            raise start_error(getattr(exc, "message", str(exc))) from None
        inst.running = True
        inst.ready.set()

        def record(status: Any) -> None:
            inst.running = False
            inst.exit_code = status.exit_code
            self._event("exec_die", c, inst, exitCode=str(status.exit_code))
            inst.ended.set()

        self._watch(shim.wait(), record, shim)

    def _failed(self, inst: ExecInstance) -> None:
        inst.running = False
        inst.exit_code = FAILED_START_EXIT_CODE
        inst.ready.set()
        inst.ended.set()

    def _watch(self, waiting: Any, record: Any, shim: ShimClient) -> None:
        async def monitor() -> None:
            try:
                record(await waiting)
            except Exception:
                log.exception("waiting for exec %s failed", shim.state_dir.name)
            finally:
                await asyncio.to_thread(shutil.rmtree, shim.state_dir, True)

        task = asyncio.ensure_future(monitor())
        self._monitors.add(task)
        task.add_done_callback(self._monitors.discard)

    # ----- daemon-internal execs (health probes) ------------------------------------------
    async def spawn_internal(self, c: Container, argv: list[str]) -> tuple[ExecInstance, ShimClient]:
        """An exec of ``argv`` in running ``c`` for the daemon itself (stdout and stderr open, no
        tty, the container's user): not recorded, so not in ``ExecIDs`` nor ``GET /exec``;
        ``exec_create`` is published as dockerd does for health probes. Raises the start errors."""
        inst = ExecInstance(id=secrets.token_hex(32), container_id=c.id, container_started_at=c.state.started_at,
                            entrypoint=argv[0], arguments=argv[1:], open_stdout=True, open_stderr=True)
        self._running_container(inst)
        self._event(f"exec_create: {inst.command_line}", c, inst)
        return inst, await self._spawn(inst, c, None)

    async def start_internal(self, c: Container, inst: ExecInstance, shim: ShimClient) -> None:
        """Run an exec made by :meth:`spawn_internal` (``exec_start`` event). Raises the start errors."""
        inst.started = True
        self._event(f"exec_start: {inst.command_line}", c, inst)
        try:
            inst.pid = await shim.start()
        except (RuntimeFailure, ShimGone) as exc:
            self._failed(inst)
            raise start_error(getattr(exc, "message", str(exc))) from None

    def internal_ended(self, c: Container, inst: ExecInstance, exit_code: int) -> None:
        """An internal exec ended with ``exit_code`` (``exec_die`` event)."""
        inst.exit_code = exit_code
        self._event("exec_die", c, inst, exitCode=str(exit_code))

    # ----- resize ------------------------------------------------------------------------
    async def resize(self, exec_id: str, height: int, width: int) -> None:
        """``POST /exec/{id}/resize``: waits (10 s) for the exec to start; an ended exec is left alone."""
        inst = self.get(exec_id)
        self._running_container(inst)
        try:
            await asyncio.wait_for(inst.ready.wait(), READY_TIMEOUT)
        except TimeoutError:
            raise SystemError_("timeout waiting for exec session ready") from None
        if not inst.running:
            return
        try:
            await ShimClient(self.containers.runner.state_dir(inst.id)).resize(height, width)
        except ShimGone:
            pass


def _check_running_for_create(c: Container, ref: str) -> None:
    if not c.state.running:
        raise Conflict(f"Container {c.id} is not running")
    if c.state.status == "paused":
        raise Conflict(f"Container {ref} is paused, unpause the container before exec")
    if c.state.status == "restarting":
        raise Conflict(f"Container {ref} is restarting, wait until the container is running")


def _init_process(bundle: Path) -> dict[str, Any]:
    """The ``process`` object of the container's ``config.json`` ({} when unreadable)."""
    try:
        return dict(json.loads((bundle / "config.json").read_text()).get("process") or {})
    except (OSError, ValueError):
        return {}
