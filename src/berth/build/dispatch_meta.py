"""Instructions that only change the image config: ENV, LABEL, ARG, CMD, ENTRYPOINT, EXPOSE,
VOLUME, USER, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD, MAINTAINER.

Each changes the stage's run config as the Dockerfile reference describes the instruction and
commits a layer-less image whose history reads as docker 20.10 writes it, e.g.
``/bin/sh -c #(nop)  ENV A=1 B=x y``, ``#(nop)  CMD ["sh" "-c" "x"]`` (Go ``%q``),
``#(nop)  SHELL [/bin/bash -c]`` (Go ``%v``), ``#(nop)  HEALTHCHECK &{["CMD" "true"] ...}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from berth.build import gofmt
from berth.build.commands import (
    ArgCommand,
    CmdCommand,
    HealthcheckCommand,
    KeyValueCommand,
    ListCommand,
    OnbuildCommand,
    ValueCommand,
)
from berth.build.instructions import Instruction
from berth.build.job import Step
from berth.errors import InvalidParameter
from berth.goquote import quote_list
from berth.signals import parse_signal

Handler = Callable[[Step, Any, Instruction], Awaitable[None]]
_PROTOCOLS = ("tcp", "udp", "sctp")


async def env(step: Step, command: KeyValueCommand, instr: Instruction) -> None:
    """ENV (the scope already holds the new values): ``ENV a=1 b=2``."""
    await step.commit_comment("ENV " + " ".join(f"{k}={v}" for k, v in command.pairs))


async def label(step: Step, command: KeyValueCommand, instr: Instruction) -> None:
    """LABEL: merged into ``Labels``; ``LABEL a=1 b=2``."""
    labels = dict(step.state.config.get("Labels") or {})
    labels.update(command.pairs)
    step.state.config["Labels"] = labels
    await step.commit_comment("LABEL " + " ".join(f"{k}={v}" for k, v in command.pairs))


async def label_option(step: Step, key: str, value: str) -> None:
    """One ``--label`` given to the build: a LABEL step appended to the target stage."""
    await label(step, KeyValueCommand("LABEL", [(key, value)]), Instruction("LABEL", [key, value]))


async def arg(step: Step, command: ArgCommand, instr: Instruction) -> None:
    """ARG: names declared (their values are in the scope); ``ARG a=1 b``."""
    step.state.declared.update(name for name, _ in command.pairs)
    await step.commit_comment("ARG " + " ".join(instr.args))


def command_line(step: Step, command: CmdCommand) -> list[str]:
    """docker's ``resolveCmdLine``: the shell prepended to the shell form."""
    if not command.command:
        return []
    return [*step.state.shell(), *command.command] if command.prepend_shell else list(command.command)


async def cmd(step: Step, command: CmdCommand, instr: Instruction) -> None:
    """CMD: ``CMD ["a" "b"]``."""
    line = command_line(step, command)
    step.state.config["Cmd"] = line
    step.state.config.pop("ArgsEscaped", None)
    await step.commit_comment(f"CMD {quote_list(line)}")
    if command.command:
        step.state.cmd_set = True


async def entrypoint(step: Step, command: CmdCommand, instr: Instruction) -> None:
    """ENTRYPOINT: clears a CMD inherited from the base image (not one set in this stage)."""
    line = command_line(step, command)
    step.state.config["Entrypoint"] = line
    step.state.config.pop("ArgsEscaped", None)
    if not step.state.cmd_set:
        step.state.config["Cmd"] = None
    await step.commit_comment(f"ENTRYPOINT {quote_list(line)}")


def parse_port(spec: str) -> list[str]:
    """``80``, ``53/udp``, ``8000-8002/tcp`` -> ``["8000/tcp", ...]`` (docker's nat.ParsePortSpecs)."""
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in _PROTOCOLS:
        raise InvalidParameter(f"Invalid proto: {proto}")
    port = port.rsplit(":", 1)[-1]
    low, dash, high = port.partition("-")
    try:
        first, last = int(low), int(high) if dash else int(low)
    except ValueError:
        raise InvalidParameter(f"Invalid containerPort: {port}") from None
    if not (0 <= first <= 65535 and 0 <= last <= 65535) or last < first:
        raise InvalidParameter(f"Invalid containerPort: {port}")
    return [f"{number}/{proto}" for number in range(first, last + 1)]


async def expose(step: Step, command: ListCommand, instr: Instruction) -> None:
    """EXPOSE: ports added to ``ExposedPorts``; the comment lists the words sorted."""
    ports = dict(step.state.config.get("ExposedPorts") or {})
    for spec in command.values:
        for port in parse_port(spec):
            ports[port] = {}
    step.state.config["ExposedPorts"] = ports
    await step.commit_comment("EXPOSE " + " ".join(sorted(command.values)))


async def volume(step: Step, command: ListCommand, instr: Instruction) -> None:
    """VOLUME: paths added to ``Volumes``; ``VOLUME [/a /b]``."""
    volumes = dict(step.state.config.get("Volumes") or {})
    for path in command.values:
        if not path:
            raise InvalidParameter("VOLUME specified can not be an empty string")
        volumes[path] = {}
    step.state.config["Volumes"] = volumes
    await step.commit_comment(f"VOLUME {gofmt.plain_list(command.values)}")


async def user(step: Step, command: ValueCommand, instr: Instruction) -> None:
    """USER: ``USER name[:group]``."""
    step.state.config["User"] = command.value
    await step.commit_comment(f"USER {command.value}")


async def stopsignal(step: Step, command: ValueCommand, instr: Instruction) -> None:
    """STOPSIGNAL: ``STOPSIGNAL SIGTERM`` (kept as written)."""
    parse_signal(command.value)  # refused as docker refuses it; kept as written
    step.state.config["StopSignal"] = command.value
    await step.commit_comment(f"STOPSIGNAL {command.value}")


async def healthcheck(step: Step, command: HealthcheckCommand, instr: Instruction) -> None:
    """HEALTHCHECK: replaces the image's; notes an overridden check as docker does.

    Timing options left out keep the previous check's values in the image config (not in the
    history comment): dockerd 20.10 merges the image's healthcheck into the new one when it
    creates the step's container, and the builder's config shares that object.
    """
    previous = step.state.config.get("Healthcheck") or {}
    old = previous.get("Test") or []
    if old and old[0] != "NONE":
        step.channel.stream(f"Note: overriding previous HEALTHCHECK: {gofmt.plain_list(old)}\n")
    config: dict[str, Any] = {"Test": list(command.test)}
    for key, value in (("Interval", command.interval), ("Timeout", command.timeout),
                       ("StartPeriod", command.start_period), ("StartInterval", command.start_interval),
                       ("Retries", command.retries)):
        if value or previous.get(key):
            config[key] = value or previous[key]
    step.state.config["Healthcheck"] = config
    text = gofmt.healthcheck(command.test, command.interval, command.timeout, command.start_period, command.retries)
    await step.commit_comment(f"HEALTHCHECK {text}")


async def shell(step: Step, command: ListCommand, instr: Instruction) -> None:
    """SHELL: the shell later shell-form commands use; ``SHELL [/bin/sh -c]``."""
    step.state.config["Shell"] = list(command.values)
    await step.commit_comment(f"SHELL {gofmt.plain_list(command.values)}")


async def onbuild(step: Step, command: OnbuildCommand, instr: Instruction) -> None:
    """ONBUILD: the trigger text is stored in ``OnBuild``; ``ONBUILD RUN x``."""
    step.state.config["OnBuild"] = [*(step.state.config.get("OnBuild") or []), command.expression]
    await step.commit_comment(f"ONBUILD {command.expression}")


async def maintainer(step: Step, command: ValueCommand, instr: Instruction) -> None:
    """MAINTAINER: the image's ``author``; ``MAINTAINER name``."""
    step.state.author = command.value
    await step.commit_comment(f"MAINTAINER {command.value}")


HANDLERS: dict[str, Handler] = {
    "ENV": env, "LABEL": label, "ARG": arg, "CMD": cmd, "ENTRYPOINT": entrypoint, "EXPOSE": expose,
    "VOLUME": volume, "USER": user, "STOPSIGNAL": stopsignal, "HEALTHCHECK": healthcheck, "SHELL": shell,
    "ONBUILD": onbuild, "MAINTAINER": maintainer,
}
