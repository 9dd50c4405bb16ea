"""RUN: the command runs in a real container on the stage's image, and its diff is the layer.

As docker 20.10's classic builder (``dispatchRun``): the container gets the stage's config, its
environment plus the build args in use, no entrypoint and no healthcheck; output is streamed as
it is written (stderr in red, as dockerd's build stream marks it); a non-zero exit fails the
build with ``The command '<cmd>' returned a non-zero code: <n>``. The history and cache key use
the command with the build args prefixed: ``|2 A=1 B=2 /bin/sh -c make``. Intermediate
containers are removed after a successful step (``rm``, the default) and, with ``forcerm``,
after a failed one too.

Here-documents (a BuildKit addition): a RUN that is only ``<<EOF`` runs the body as the shell
script; otherwise the command line and the bodies go to the shell together, which reads the
here-documents itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

from berth.build.commands import RunCommand
from berth.build.instructions import Instruction
from berth.build.job import Step
from berth.errors import BerthError, InvalidParameter, SystemError_, Unavailable
from berth.runtime.jsonlog import follow_log

_ONLY_HEREDOC = re.compile(r"\d*<<-?([\"']?)(\S+)\1")
_RED, _RESET = "\x1b[91m", "\x1b[0m"
_LOG_WAIT = 0.05


class StepFailed(BerthError):
    """A RUN whose command exited non-zero; ``code`` is its exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run_argv(shell: list[str], command: RunCommand) -> list[str]:
    """The argv a RUN executes: the exec form as given, the shell form after the SHELL."""
    if not command.prepend_shell:
        return list(command.command)
    text = command.command[0] if command.command else ""
    if not command.heredocs:
        return [*shell, text]
    only = _ONLY_HEREDOC.fullmatch(text.strip())
    if len(command.heredocs) == 1 and only and only.group(2) == command.heredocs[0].name:
        return [*shell, command.heredocs[0].body()]
    script = text + "\n" + "".join(f"{doc.content}{doc.name}\n" for doc in command.heredocs)
    return [*shell, script]


def _container_body(step: Step, argv: list[str], run_env: list[str], network: str) -> dict[str, Any]:
    config = step.state.run_config(argv)
    config.update({
        "Env": config["Env"] + run_env, "Entrypoint": [], "Healthcheck": {"Test": ["NONE"]},
        "AttachStdout": True, "AttachStderr": True, "Tty": False, "OpenStdin": False,
    })
    host_config = {**step.job.options.host_config, "NetworkMode": network}
    return {**config, "HostConfig": host_config}


async def run(step: Step, command: RunCommand, instr: Instruction) -> None:
    """RUN in shell or exec form."""
    if command.mounts:
        raise InvalidParameter("the --mount option requires BuildKit. Refer to "
                               "https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled")
    if command.security not in (None, "", "sandbox"):
        raise InvalidParameter(f"RUN --security={command.security} is not supported by berth's builder")
    argv = run_argv(step.state.shell(), command)
    run_env, shown = step.state.build_arg_env()
    saved = [f"|{len(shown)}", *shown, *argv] if run_env else argv
    container_config = step.state.run_config(saved)
    if saved:
        container_config["Entrypoint"] = None
    if await step.probe(container_config):
        return
    containers = step.job.containers
    if containers is None:
        raise Unavailable("RUN needs the container service, which this daemon does not have")
    if step.state.image is None:
        raise InvalidParameter("RUN needs an image to run in: the stage starts from scratch")
    network = command.network or step.job.options.network_mode or "default"
    created = await containers.create(_container_body(step, argv, run_env, network))
    cid = created["Id"]
    step.channel.stream(f" ---> Running in {cid[:12]}\n")
    try:
        await _execute(step, cid, argv)
        layer = await asyncio.to_thread(step.job.workspace.layer_from_upper, containers.runner.upper(cid),
                                        containers.runner.lowers(cid))
        await step.commit(container_config, layer=layer, container=cid)
    except asyncio.CancelledError:
        await _remove(step, cid, announce=False)
        raise
    except BaseException:
        if step.job.options.force_remove:
            await _remove(step, cid)
        raise
    if step.job.options.remove or step.job.options.force_remove:
        await _remove(step, cid)


async def _execute(step: Step, cid: str, argv: list[str]) -> None:
    """Start the container, stream its output, wait for it. Raises StepFailed on a non-zero exit."""
    containers = step.job.containers
    ended = asyncio.Event()
    await containers.start(cid)
    pump = asyncio.create_task(_pump_output(step, cid, ended))
    try:
        status = await containers.wait(cid, "not-running")
    finally:
        ended.set()
        with contextlib.suppress(Exception):
            await pump
    code = int(status.get("StatusCode") or 0)
    if code != 0:
        raise StepFailed(f"The command '{' '.join(argv)}' returned a non-zero code: {code}", code)


async def _pump_output(step: Step, cid: str, ended: asyncio.Event) -> None:
    """Forward the container's json-file log to the build stream as it grows."""
    containers = step.job.containers
    path = containers.runner.log_path(containers.get(cid))
    if path is None:
        return
    while not Path(path).exists():
        if ended.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), _LOG_WAIT)
    async for entry in follow_log(path, ended, poll_interval=_LOG_WAIT):
        text = entry.data.decode("utf-8", "replace")
        step.channel.stream(f"{_RED}{text}{_RESET}" if entry.stream == "stderr" else text)


async def _remove(step: Step, cid: str, announce: bool = True) -> None:
    try:
        await step.job.containers.remove(cid, force=True, volumes=True)
    except BerthError as exc:
        raise SystemError_(f"failed to remove intermediate container {cid[:12]}: {exc.message}") from None
    if announce:
        step.channel.stream(f"Removing intermediate container {cid[:12]}\n")
