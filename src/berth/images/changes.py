"""Dockerfile instructions applied to an image's container config: ``import -c``, ``commit -c``,
and the builder's metadata steps.

Sources: "docker import" and "docker commit" references (``--change`` accepts CMD, ENTRYPOINT, ENV,
EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR; anything else is
``<instruction> is not a valid change command``) and the Dockerfile reference for what each
instruction does to the config. Parsing is the builder's own parser (a pure module).
"""

from __future__ import annotations

import copy
import posixpath
from typing import Any

from berth.errors import InvalidParameter

CHANGE_COMMANDS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL",
                   "USER", "VOLUME", "WORKDIR")
DEFAULT_SHELL = ["/bin/sh", "-c"]


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """``config`` (a container.Config dict) with each ``--change`` line applied, in order.

    Raises InvalidParameter for a line that does not parse or is not a valid change command.
    """
    from berth.build.commands import to_command
    from berth.build.parser import parse
    from berth.build.shell import StageScope

    out = copy.deepcopy(config)
    for change in changes:
        if not change.strip():
            continue
        dockerfile = parse(change, "change")
        for instr in dockerfile.instructions:
            if instr.keyword not in CHANGE_COMMANDS:
                raise InvalidParameter(f"{instr.keyword.lower()} is not a valid change command")
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in out.get("Env") or [])
            scope = StageScope(env, {}, {}, dockerfile.escape)
            apply_command(out, to_command(scope.expand(instr)))
    return out


def apply_command(config: dict[str, Any], cmd: Any) -> None:
    """Apply one typed metadata command (``berth.build.instructions``) to ``config`` in place.

    Handles CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, ONBUILD,
    HEALTHCHECK, SHELL and MAINTAINER (the latter only affects the image's author: ignored here).
    """
    from berth.build import commands as ins

    if isinstance(cmd, ins.CmdCommand):
        argv = _command_line(config, cmd.command, cmd.prepend_shell)
        if cmd.keyword == "CMD":
            config["Cmd"] = argv
        else:
            config["Entrypoint"] = argv
            config["Cmd"] = None  # setting ENTRYPOINT clears an inherited CMD
    elif isinstance(cmd, ins.KeyValueCommand):
        if cmd.keyword == "ENV":
            env = list(config.get("Env") or [])
            for key, value in cmd.pairs:
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        else:
            labels = dict(config.get("Labels") or {})
            labels.update(dict(cmd.pairs))
            config["Labels"] = labels
    elif isinstance(cmd, ins.ListCommand):
        _apply_list(config, cmd)
    elif isinstance(cmd, ins.ValueCommand):
        _apply_value(config, cmd)
    elif isinstance(cmd, ins.OnbuildCommand):
        config["OnBuild"] = [*(config.get("OnBuild") or []), cmd.expression]
    elif isinstance(cmd, ins.HealthcheckCommand):
        check: dict[str, Any] = {"Test": list(cmd.test)}
        timings: tuple[tuple[str, Any], ...] = (("Interval", cmd.interval), ("Timeout", cmd.timeout),
                                                 ("StartPeriod", cmd.start_period), ("Retries", cmd.retries))
        for key, value in timings:
            if value:
                check[key] = value
        config["Healthcheck"] = check
    else:
        raise InvalidParameter(f"{type(cmd).__name__} cannot change an image config")


def _command_line(config: dict[str, Any], command: list[str], prepend_shell: bool) -> list[str]:
    if not prepend_shell:
        return list(command)
    return [*(config.get("Shell") or DEFAULT_SHELL), *command]


def _apply_list(config: dict[str, Any], cmd: Any) -> None:
    if cmd.keyword == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for spec in cmd.values:
            ports.update({p: {} for p in expand_port_spec(spec)})
        config["ExposedPorts"] = ports
    elif cmd.keyword == "VOLUME":
        volumes = dict(config.get("Volumes") or {})
        for path in cmd.values:
            if not path.strip():
                raise InvalidParameter("VOLUME specified can not be an empty string")
            volumes[path] = {}
        config["Volumes"] = volumes
    elif cmd.keyword == "SHELL":
        config["Shell"] = list(cmd.values)


def _apply_value(config: dict[str, Any], cmd: Any) -> None:
    if cmd.keyword == "USER":
        config["User"] = cmd.value
    elif cmd.keyword == "WORKDIR":
        current = config.get("WorkingDir") or "/"
        config["WorkingDir"] = posixpath.normpath(posixpath.join(current, cmd.value))
    elif cmd.keyword == "STOPSIGNAL":
        config["StopSignal"] = cmd.value


def expand_port_spec(spec: str) -> list[str]:
    """``80``, ``80/udp``, ``8000-8002/tcp`` -> ``["80/tcp"]``... (docker's nat.ParsePortSpecs).

    Raises InvalidParameter (``Invalid containerPort: x``/``Invalid range format for --expose``).
    """
    port, _, proto = spec.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidParameter(f"Invalid proto: {proto}")
    start, dash, end = port.partition("-")
    try:
        lo = int(start)
        hi = int(end) if dash else lo
    except ValueError:
        raise InvalidParameter(f"Invalid containerPort: {port}") from None
    if not (0 < lo <= 65535 and 0 < hi <= 65535) or hi < lo:
        raise InvalidParameter(f"Invalid containerPort: {port}")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]
