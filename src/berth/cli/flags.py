"""Command-line flags with docker's (spf13/pflag) rules, stdlib only.

Rules: ``--name=value`` or ``--name value``; ``-n value`` or ``-nvalue``; grouped short booleans
(``-it``, ``-dit``) where the last of a group may take a value; ``--bool=false``; ``--`` ends the
flags; flags may follow positionals unless the command is not *interspersed* (``run``, ``exec``:
everything after the image is the container's command). Errors print docker's text followed by
``See 'berth CMD --help'.`` and exit 125; a wrong argument count exits 1 (docker's ``cli.Requires*``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn


class FlagError(Exception):
    """A flag could not be parsed (exit status 125, like docker's flag errors)."""


class Flag:
    """One flag: ``long`` name without dashes, optional one-letter ``short``, a ``kind``
    (bool, string, int, list, float) and its ``default``. (Plain classes here, not dataclasses:
    this module is on every command's start-up path.)"""

    __slots__ = ("long", "short", "kind", "default", "help", "metavar", "hidden")

    def __init__(self, long: str, short: str | None, kind: str, default: Any, help: str = "",
                 metavar: str = "", hidden: bool = False) -> None:
        self.long, self.short, self.kind, self.default = long, short, kind, default
        self.help, self.metavar, self.hidden = help, metavar, hidden

    @property
    def dest(self) -> str:
        return self.long.replace("-", "_")

    def label(self) -> str:
        return f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"


class Namespace:
    """Parsed flag values as attributes (``args.all``), plus ``args.explicit`` (set of names given)."""

    def __init__(self) -> None:
        self.explicit: set[str] = set()

    if TYPE_CHECKING:  # flag values are set at run time; tell mypy every attribute may exist
        def __getattr__(self, name: str) -> Any: ...

    def __repr__(self) -> str:
        return f"Namespace({vars(self)})"


class FlagSet:
    """The flags and argument rules of one command (``prog`` such as ``berth image ls``)."""

    def __init__(self, prog: str, usage: str, short: str = "", min_args: int = 0, max_args: int | None = None,
                 interspersed: bool = True, flags: list[Flag] | None = None) -> None:
        self.prog, self.usage, self.short = prog, usage, short
        self.min_args, self.max_args, self.interspersed = min_args, max_args, interspersed
        self.flags: list[Flag] = flags if flags is not None else []

    def add(self, names: str, kind: str = "bool", default: Any = None, help: str = "", metavar: str = "",
            hidden: bool = False) -> FlagSet:
        """Declare a flag; ``names`` is ``"-a, --all"`` or ``"--all"``."""
        short = long = None
        for part in (p.strip() for p in names.split(",")):
            if part.startswith("--"):
                long = part[2:]
            elif part.startswith("-"):
                short = part[1:]
        assert long is not None, names
        if default is None:
            default = {"bool": False, "list": [], "int": 0, "float": 0.0, "string": ""}.get(kind)
        self.flags.append(Flag(long, short, kind, default, help, metavar, hidden))
        return self

    def _find_long(self, name: str) -> Flag:
        for flag in self.flags:
            if flag.long == name:
                return flag
        raise FlagError(f"unknown flag: --{name}")

    def _find_short(self, char: str, group: str) -> Flag:
        for flag in self.flags:
            if flag.short == char:
                return flag
        raise FlagError(f"unknown shorthand flag: '{char}' in -{group}")

    def parse(self, argv: list[str]) -> tuple[Namespace, list[str]]:
        """Parse ``argv`` (the words after the command). Raises FlagError; ``--help`` raises HelpRequested."""
        ns = Namespace()
        for flag in self.flags:
            setattr(ns, flag.dest, list(flag.default) if flag.kind == "list" else flag.default)
        positional: list[str] = []
        i = 0
        while i < len(argv):
            word = argv[i]
            i += 1
            if word == "--":
                positional.extend(argv[i:])
                break
            if word in ("--help", "-h") and not any(f.short == "h" for f in self.flags):
                raise HelpRequested()
            if word.startswith("--") and len(word) > 2:
                name, eq, value = word[2:].partition("=")
                if name == "help":
                    raise HelpRequested()
                flag = self._find_long(name)
                if flag.kind == "bool":
                    self._set(ns, flag, value if eq else "true", f"--{name}")
                else:
                    if not eq:
                        if i >= len(argv):
                            raise FlagError(f"flag needs an argument: --{name}")
                        value = argv[i]
                        i += 1
                    self._set(ns, flag, value, f"--{name}")
            elif word.startswith("-") and len(word) > 1:
                i = self._parse_shorts(ns, word[1:], argv, i)
            else:
                positional.append(word)
                if not self.interspersed:
                    positional.extend(argv[i:])
                    break
        return ns, positional

    def _parse_shorts(self, ns: Namespace, group: str, argv: list[str], i: int) -> int:
        j = 0
        while j < len(group):
            char = group[j]
            if char == "h" and not any(f.short == "h" for f in self.flags):
                raise HelpRequested()
            flag = self._find_short(char, group)
            rest = group[j + 1:]
            if flag.kind == "bool":
                if rest.startswith("="):
                    self._set(ns, flag, rest[1:], f"-{char}")
                    return i
                self._set(ns, flag, "true", f"-{char}")
                j += 1
                continue
            if rest:
                self._set(ns, flag, rest[1:] if rest.startswith("=") else rest, f"-{char}")
                return i
            if i >= len(argv):
                raise FlagError(f"flag needs an argument: '{char}' in -{group}")
            self._set(ns, flag, argv[i], f"-{char}")
            return i + 1
        return i

    def _set(self, ns: Namespace, flag: Flag, value: str, shown: str) -> None:
        ns.explicit.add(flag.dest)
        label = f"-{flag.short}, --{flag.long}" if flag.short else f"--{flag.long}"
        if flag.kind == "bool":
            lowered = value.lower()
            if lowered in ("1", "t", "true"):
                setattr(ns, flag.dest, True)
            elif lowered in ("0", "f", "false"):
                setattr(ns, flag.dest, False)
            else:
                raise FlagError(f'invalid argument "{value}" for "{label}" flag: strconv.ParseBool: '
                                f'parsing "{value}": invalid syntax')
        elif flag.kind == "int":
            try:
                setattr(ns, flag.dest, int(value, 0) if value.lower().startswith(("0x", "0o")) else int(value))
            except ValueError:
                raise FlagError(f'invalid argument "{value}" for "{label}" flag: strconv.ParseInt: '
                                f'parsing "{value}": invalid syntax') from None
        elif flag.kind == "float":
            try:
                setattr(ns, flag.dest, float(value))
            except ValueError:
                raise FlagError(f'invalid argument "{value}" for "{label}" flag: strconv.ParseFloat: '
                                f'parsing "{value}": invalid syntax') from None
        elif flag.kind == "list":
            if flag.long == "filter" and value and "=" not in value:
                # docker's FilterOpt refuses it while parsing flags
                raise FlagError(f'invalid argument "{value}" for "{label}" flag: '
                                "bad format of filter (expected name=value)")
            getattr(ns, flag.dest).append(value)
        else:
            setattr(ns, flag.dest, value)

    def check_args(self, positional: list[str]) -> None:
        """Apply the argument-count rule; raises ArgsError with docker's wording."""
        n = len(positional)
        lo, hi = self.min_args, self.max_args
        if hi is not None and lo == hi and n != lo:
            noun = "argument" if lo == 1 else "arguments"
            raise ArgsError(f'"{self.prog}" requires exactly {lo} {noun}.')
        if n < lo:
            noun = "argument" if lo == 1 else "arguments"
            raise ArgsError(f'"{self.prog}" requires at least {lo} {noun}.')
        if hi is not None and n > hi:
            if hi == 0:
                raise ArgsError(f'"{self.prog}" accepts no arguments.')
            noun = "argument" if hi == 1 else "arguments"
            raise ArgsError(f'"{self.prog}" requires at most {hi} {noun}.')

    def help_text(self) -> str:
        lines = [f"\nUsage:  {self.prog} {self.usage}".rstrip(), ""]
        if self.short:
            lines += [self.short, ""]
        visible = [f for f in self.flags if not f.hidden]
        if visible:
            lines.append("Options:")
            width = max(len(self._flag_col(f)) for f in visible)
            for flag in visible:
                lines.append(f"  {self._flag_col(flag).ljust(width)}   {flag.help}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _flag_col(flag: Flag) -> str:
        names = f"-{flag.short}, --{flag.long}" if flag.short else f"    --{flag.long}"
        if flag.kind != "bool":
            names += " " + (flag.metavar or flag.kind)
        return names

    def parse_or_exit(self, argv: list[str]) -> tuple[Namespace, list[str]]:
        """Parse and check arguments, printing docker's errors and exiting on failure."""
        try:
            ns, positional = self.parse(argv)
        except HelpRequested:
            sys.stdout.write(self.help_text())
            raise SystemExit(0) from None
        except FlagError as exc:
            self.fail(str(exc), 125)
        try:
            self.check_args(positional)
        except ArgsError as exc:
            sys.stderr.write(f"{exc}\nSee '{self.prog} --help'.\n\nUsage:  {self.prog} {self.usage}\n\n{self.short}\n")
            raise SystemExit(1) from None
        return ns, positional

    def fail(self, message: str, status: int = 125) -> NoReturn:
        sys.stderr.write(f"{message}\nSee '{self.prog} --help'.\n")
        raise SystemExit(status)


class HelpRequested(Exception):
    """``--help`` or ``-h`` was given."""


class ArgsError(Exception):
    """Wrong number of positional arguments (exit status 1)."""
