"""The Dockerfile model: parsed instructions and build stages.

``parser.parse`` produces :class:`Dockerfile` (a list of generic :class:`Instruction`);
:func:`.commands.split_stages` cuts the list at each ``FROM``, and :func:`.commands.to_command`
turns one instruction into a typed, validated command for the executor.
Behaviour and error wording follow the Dockerfile reference
(https://docs.docker.com/reference/dockerfile/) and docker 20.10's classic builder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.errors import InvalidParameter


class DockerfileError(InvalidParameter):
    """A Dockerfile that cannot be parsed (HTTP 400).

    ``reason`` is docker's message; with a ``line`` (1-based) the text is docker 20.10's
    ``Dockerfile parse error line <line>: <reason>``.
    """

    def __init__(self, reason: str, line: int | None = None) -> None:
        text = f"Dockerfile parse error line {line}: {reason}" if line else reason
        super().__init__(text)
        self.reason = reason
        self.line = line


@dataclass(frozen=True)
class Heredoc:
    """One here-document of a RUN/COPY/ADD (Dockerfile reference, "Here-Documents").

    ``content`` is the raw body, every line ending in ``\\n``; ``expand`` is false when the
    delimiter word was quoted; ``chomp_tabs`` is true for ``<<-``; ``fd`` is the file
    descriptor written before ``<<`` (0 when absent).
    """

    name: str
    content: str
    expand: bool = True
    chomp_tabs: bool = False
    fd: int = 0

    def body(self) -> str:
        """The content with leading tabs removed from each line when ``chomp_tabs`` (POSIX ``<<-``)."""
        if not self.chomp_tabs:
            return self.content
        return "".join(line.lstrip("\t") for line in self.content.splitlines(keepends=True))


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction as parsed, before variable expansion.

    ``keyword`` is upper-case; ``args`` are docker's parsed values (ENV/LABEL: flat
    ``[key, value, ...]`` with quotes kept; ARG: ``name[=default]`` words; RUN/CMD/ENTRYPOINT
    shell form: one string; HEALTHCHECK: ``[type, *command]``; ONBUILD: ``[trigger text]``).
    ``flags`` maps each ``--name[=value]`` option to its value ("" when no ``=``); ``raw_flags``
    keeps every option word in order (repeatable ones such as ``--mount`` included).
    ``json`` is true for the exec (JSON array) form (for ONBUILD, the trigger's form).
    ``original`` is the text docker prints in ``Step N/M : <original>`` (heredoc bodies
    included). ``trigger`` is ONBUILD's parsed instruction.
    """

    keyword: str
    args: list[str]
    flags: dict[str, str] = field(default_factory=dict)
    json: bool = False
    original: str = ""
    line: int = 0
    end_line: int = 0
    heredocs: list[Heredoc] = field(default_factory=list)
    raw_flags: list[str] = field(default_factory=list)
    trigger: Instruction | None = None


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: ``directives`` (``syntax``, ``escape``) and its instructions."""

    instructions: list[Instruction]
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def escape(self) -> str:
        """The escape character: ``\\`` unless ``# escape=`` chose the backtick."""
        return self.directives.get("escape", "\\")


@dataclass(frozen=True)
class Stage:
    """One build stage: its ``FROM`` and the instructions up to the next ``FROM``.

    ``name`` is the lower-cased ``AS`` name (None without one), ``index`` counts from 0,
    ``base`` is the unexpanded image (or earlier stage) reference, ``platform`` the
    unexpanded ``--platform`` value.
    """

    name: str | None
    index: int
    base: str
    platform: str | None
    from_instruction: Instruction
    instructions: list[Instruction]
