"""Typed commands: one Dockerfile instruction, validated, as the executor uses it (docker's
``instructions.Parse`` step). Behaviour and error wording follow the Dockerfile reference
(https://docs.docker.com/reference/dockerfile/) and docker 20.10's classic builder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from berth.build.instructions import Dockerfile, DockerfileError, Heredoc, Instruction, Stage
from berth.goquote import quote
from berth.timeutil import parse_go_duration


@dataclass(frozen=True)
class FromCommand:
    """``FROM [--platform=p] image [AS name]``."""

    image: str
    stage_name: str | None
    platform: str | None


@dataclass(frozen=True)
class RunCommand:
    """``RUN``: ``command`` is the exec array, or one string to run with the SHELL when ``prepend_shell``."""

    command: list[str]
    prepend_shell: bool
    heredocs: list[Heredoc]
    mounts: list[str]
    network: str | None
    security: str | None


@dataclass(frozen=True)
class CmdCommand:
    """``CMD`` or ``ENTRYPOINT`` (``keyword``), shaped like RUN's command line; an empty
    ENTRYPOINT exec form resets the entrypoint."""

    keyword: str
    command: list[str]
    prepend_shell: bool


@dataclass(frozen=True)
class KeyValueCommand:
    """``ENV`` or ``LABEL`` (``keyword``): ordered (key, value) pairs, quotes kept until expansion."""

    keyword: str
    pairs: list[tuple[str, str]]


@dataclass(frozen=True)
class ArgCommand:
    """``ARG name[=default] ...``: default None when absent."""

    pairs: list[tuple[str, str | None]]


@dataclass(frozen=True)
class CopyCommand:
    """``COPY``/``ADD`` (``add`` true): context sources, heredoc sources, destination and options."""

    add: bool
    sources: list[str]
    heredoc_sources: list[Heredoc]
    dest: str
    from_stage: str | None
    chown: str | None
    chmod: str | None
    link: bool
    checksum: str | None = None
    keep_git_dir: bool = False


@dataclass(frozen=True)
class HealthcheckCommand:
    """``HEALTHCHECK``: ``test`` as in the image config (``["NONE"]``, ``["CMD", ...]`` or
    ``["CMD-SHELL", cmd]``); durations in nanoseconds, 0 meaning the default."""

    test: list[str]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class ValueCommand:
    """A one-value instruction: MAINTAINER, USER, WORKDIR, STOPSIGNAL (``keyword`` says which)."""

    keyword: str
    value: str


@dataclass(frozen=True)
class ListCommand:
    """A list-valued instruction: EXPOSE (ports), VOLUME (paths), SHELL (exec array)."""

    keyword: str
    values: list[str]


@dataclass(frozen=True)
class OnbuildCommand:
    """``ONBUILD``: ``expression`` is the trigger text stored in the image config's ``OnBuild``."""

    expression: str
    trigger: Instruction


Command = (
    FromCommand | RunCommand | CmdCommand | KeyValueCommand | ArgCommand | CopyCommand | HealthcheckCommand
    | ValueCommand | ListCommand | OnbuildCommand
)

# Options each instruction accepts: name -> "str", "bool" or "strs" (repeatable).
_FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": "str"},
    "RUN": {"mount": "strs", "network": "str", "security": "str"},
    "COPY": {"from": "str", "chown": "str", "chmod": "str", "link": "bool", "parents": "bool",
             "exclude": "strs"},
    "ADD": {"chown": "str", "chmod": "str", "link": "bool", "checksum": "str", "keep-git-dir": "bool",
            "exclude": "strs"},
    "HEALTHCHECK": {"interval": "str", "timeout": "str", "start-period": "str", "start-interval": "str",
                    "retries": "str"},
}
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")


def _parse_flags(instr: Instruction) -> dict[str, list[str]]:
    """Check options against the instruction's table (docker's BFlags); bools become "true"/"false"."""
    allowed = _FLAGS.get(instr.keyword, {})
    seen: dict[str, list[str]] = {}
    for word in instr.raw_flags:
        name, has_value, value = word[2:].partition("=")
        kind = allowed.get(name)
        if kind is None:
            raise DockerfileError(f"Unknown flag: {name}", instr.line)
        if name in seen and kind != "strs":
            raise DockerfileError(f"Duplicate flag specified: {name}", instr.line)
        if kind == "bool":
            if has_value and value == "":
                raise DockerfileError(f"Missing a value on flag: {name}", instr.line)
            if value.lower() not in ("", "true", "false"):
                raise DockerfileError(f"Expecting boolean value for flag {name}, not: {value}", instr.line)
            value = value.lower() or "true"
        elif not has_value:
            raise DockerfileError(f"Missing a value on flag: {name}", instr.line)
        seen.setdefault(name, []).append(value)
    return seen


def _command_line(instr: Instruction) -> list[str]:
    if instr.json or not instr.args:
        return list(instr.args)
    return [" ".join(instr.args)]


def _exactly_one(instr: Instruction) -> ValueCommand:
    if len(instr.args) != 1:
        raise DockerfileError(f"{instr.keyword} requires exactly one argument", instr.line)
    return ValueCommand(instr.keyword, instr.args[0])


def _at_least_one(instr: Instruction) -> list[str]:
    if not instr.args:
        raise DockerfileError(f"{instr.keyword} requires at least one argument", instr.line)
    return list(instr.args)


def _from(instr: Instruction, flags: dict[str, list[str]]) -> FromCommand:
    args = instr.args
    name = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise DockerfileError(
                f"invalid name for build stage: {json.dumps(args[2])}, "
                "name can't start with a number or contain symbols", instr.line)
    elif len(args) != 1:
        raise DockerfileError("FROM requires either one or three arguments", instr.line)
    return FromCommand(args[0], name, flags.get("platform", [None])[-1])


def _copy(instr: Instruction, flags: dict[str, list[str]]) -> CopyCommand:
    if len(instr.args) < 2:
        raise DockerfileError(
            f"{instr.keyword} requires at least two arguments, but only one was provided. "
            "Destination could not be determined.", instr.line)
    by_name = {doc.name: doc for doc in instr.heredocs}
    *sources, dest = instr.args
    if _heredoc_name(dest, by_name) is not None:
        raise DockerfileError(f"{instr.keyword} cannot accept a heredoc as a destination", instr.line)
    paths, docs = [], []
    for src in sources:
        doc = _heredoc_name(src, by_name)
        if doc is None:
            paths.append(src)
        else:
            docs.append(by_name[doc])

    def one(name: str) -> str | None:
        return flags.get(name, [None])[-1]

    return CopyCommand(instr.keyword == "ADD", paths, docs, dest, one("from"), one("chown"),
                       one("chmod"), one("link") == "true", one("checksum"), one("keep-git-dir") == "true")


def _heredoc_name(word: str, by_name: dict[str, Heredoc]) -> str | None:
    """The heredoc a COPY/ADD word stands for (``<<EOF``, ``<<-"EOF"``), or None."""
    match = re.fullmatch(r"\d*<<-?(.+)", word)
    if not match:
        return None
    name = re.sub(r"[\"']", "", match.group(1))
    return name if name in by_name else None


def _healthcheck(instr: Instruction, flags: dict[str, list[str]]) -> HealthcheckCommand:
    args = _at_least_one(instr)
    kind, rest = args[0].upper(), args[1:]
    if kind == "NONE":
        if rest:
            raise DockerfileError("HEALTHCHECK NONE takes no arguments", instr.line)
        return HealthcheckCommand(["NONE"])
    if kind != "CMD":
        raise DockerfileError(f"Unknown type {quote(kind)} in HEALTHCHECK (try CMD)", instr.line)
    if not rest:
        raise DockerfileError("Missing command after HEALTHCHECK CMD", instr.line)
    test = ["CMD", *rest] if instr.json else ["CMD-SHELL", " ".join(rest)]
    times = {}
    for name in ("interval", "timeout", "start-period", "start-interval"):
        value = flags.get(name, [""])[-1]
        times[name] = _interval(name, value, instr.line) if value else 0
    retries = 0
    if "retries" in flags:
        text = flags["retries"][-1]
        if not re.fullmatch(r"[+-]?\d+", text):
            raise DockerfileError(f'strconv.ParseInt: parsing "{text}": invalid syntax', instr.line)
        retries = int(text)
        if retries < 1:
            raise DockerfileError(f"--retries must be at least 1 (not {retries})", instr.line)
    return HealthcheckCommand(test, times["interval"], times["timeout"], times["start-period"],
                              times["start-interval"], retries)


def _interval(name: str, text: str, line: int) -> int:
    try:
        value = parse_go_duration(text)
    except ValueError as err:
        raise DockerfileError(str(err), line) from None
    if 0 < value < 1_000_000 or value < 0:
        raise DockerfileError(f'Interval "{name}" cannot be less than 1ms', line)
    return value


def _onbuild(instr: Instruction) -> OnbuildCommand:
    if not instr.args or instr.trigger is None:
        raise DockerfileError("ONBUILD requires at least one argument", instr.line)
    keyword = instr.trigger.keyword
    if keyword == "ONBUILD":
        raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", instr.line)
    if keyword in ("FROM", "MAINTAINER"):
        raise DockerfileError(f"{keyword} isn't allowed as an ONBUILD trigger", instr.line)
    return OnbuildCommand(instr.args[0], instr.trigger)


def _pairs(instr: Instruction) -> list[tuple[str, str]]:
    _at_least_one(instr)
    pairs = list(zip(instr.args[::2], instr.args[1::2], strict=True))
    if any(not key for key, _ in pairs):
        raise DockerfileError(f"{instr.keyword} names can not be blank", instr.line)
    return pairs


def _arg(instr: Instruction) -> ArgCommand:
    pairs: list[tuple[str, str | None]] = []
    for word in _at_least_one(instr):
        name, has_value, value = word.partition("=")
        if has_value and not name:
            raise DockerfileError("ARG names can not be blank", instr.line)
        pairs.append((name, value if has_value else None))
    return ArgCommand(pairs)


def _volume(instr: Instruction) -> ListCommand:
    paths = [path.strip() for path in _at_least_one(instr)]
    if "" in paths:
        raise DockerfileError("VOLUME specified can not be an empty string", instr.line)
    return ListCommand("VOLUME", paths)


def _shell(instr: Instruction) -> ListCommand:
    if not instr.args:
        raise DockerfileError("SHELL requires at least one argument", instr.line)
    if not instr.json:
        raise DockerfileError("SHELL requires the arguments to be in JSON form", instr.line)
    return ListCommand("SHELL", list(instr.args))


def to_command(instr: Instruction) -> Command:
    """Validate ``instr`` and return its typed command (docker's ``instructions.ParseCommand``).

    Raises DockerfileError with docker's wording and the instruction's line, e.g.
    ``unknown instruction: FOO``, ``Unknown flag: x``, ``FROM requires either one or three arguments``.
    """
    flags = _parse_flags(instr)
    kw = instr.keyword
    if kw == "FROM":
        return _from(instr, flags)
    if kw == "RUN":
        return RunCommand(_command_line(instr), not instr.json, list(instr.heredocs), flags.get("mount", []),
                          flags.get("network", [None])[-1], flags.get("security", [None])[-1])
    if kw in ("CMD", "ENTRYPOINT"):
        return CmdCommand(kw, _command_line(instr), not instr.json)
    if kw in ("ENV", "LABEL"):
        return KeyValueCommand(kw, _pairs(instr))
    if kw == "ARG":
        return _arg(instr)
    if kw in ("COPY", "ADD"):
        return _copy(instr, flags)
    if kw == "HEALTHCHECK":
        return _healthcheck(instr, flags)
    if kw in ("MAINTAINER", "USER", "WORKDIR", "STOPSIGNAL"):
        return _exactly_one(instr)
    if kw == "EXPOSE":
        return ListCommand(kw, _at_least_one(instr))
    if kw == "VOLUME":
        return _volume(instr)
    if kw == "SHELL":
        return _shell(instr)
    if kw == "ONBUILD":
        return _onbuild(instr)
    raise DockerfileError(f"unknown instruction: {kw}", instr.line)


def split_stages(dockerfile: Dockerfile) -> tuple[list[Instruction], list[Stage]]:
    """Cut a Dockerfile into (meta ARGs before the first FROM, stages).

    Raises DockerfileError ``no build stage in current context`` for any other instruction
    before the first FROM (Dockerfile reference, "FROM": only ARG may precede it).
    """
    meta: list[Instruction] = []
    stages: list[Stage] = []
    for instr in dockerfile.instructions:
        if instr.keyword == "FROM":
            cmd = to_command(instr)
            assert isinstance(cmd, FromCommand)
            stages.append(Stage(cmd.stage_name, len(stages), cmd.image, cmd.platform, instr, []))
        elif stages:
            stages[-1].instructions.append(instr)
        elif instr.keyword == "ARG":
            meta.append(instr)
        else:
            raise DockerfileError("no build stage in current context", instr.line)
    return meta, stages
