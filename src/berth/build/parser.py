"""Dockerfile text -> :class:`~berth.build.instructions.Dockerfile` (sans-I/O).

Follows the Dockerfile reference (https://docs.docker.com/reference/dockerfile/): "Format"
(comments, leading whitespace, line continuation), "Parser directives", "Shell and exec
form", "Here-Documents", and each instruction's argument syntax. Where the reference is
silent the behaviour matches docker's parser as observed through the ``dockerfile`` package
(e.g. which words count as options, which text is kept in ``original``).
"""

from __future__ import annotations

import json
import re

from berth.build.commands import to_command
from berth.build.instructions import Dockerfile, DockerfileError, Heredoc, Instruction
from berth.goquote import quote

KNOWN_DIRECTIVES = ("syntax", "escape")
_DIRECTIVE = re.compile(r"#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*")
_SPACE = " \t\v\f\r"
_WHITESPACE = re.compile(r"[ \t\v\f\r]+")
_HEREDOC_WORD = re.compile(r"(\d*)<<(-?)([^<]*)")
_HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")
_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


# Go's JSON has no NaN/Infinity: such text is shell form, as in docker.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def parse(text: str, name: str = "Dockerfile", *, validate: bool = True) -> Dockerfile:
    """Parse Dockerfile ``text``; ``name`` is only used in the empty-file message.

    With ``validate`` every instruction is also checked with ``to_command`` (docker parses
    the whole file before building). Raises DockerfileError: ``the Dockerfile (<name>)
    cannot be empty``, ``file with no instructions``, ``unterminated heredoc``, ``unknown
    instruction: FOO`` and each instruction's own errors, with the line where docker
    reports one.
    """
    if text == "":
        raise DockerfileError(f"the Dockerfile ({name}) cannot be empty")
    lines = text.removeprefix("\ufeff").split("\n")
    if lines[-1] == "":
        lines.pop()
    directives, start = _read_directives(lines)
    reader = _Reader(lines, start, directives.get("escape", "\\"))
    instructions = []
    while (instr := reader.next_instruction()) is not None:
        instructions.append(instr)
    if not instructions:
        raise DockerfileError("file with no instructions")
    for instr in instructions if validate else ():
        to_command(instr)
    return Dockerfile(instructions, directives)


def _read_directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """Directives from the leading lines; returns them and the index of the first other line.

    Scanning stops at the first line that is not a known directive (an unknown directive is
    a comment and ends the block too), per "Parser directives".
    """
    found: dict[str, str] = {}
    for index, raw in enumerate(lines):
        match = _DIRECTIVE.fullmatch(raw.removesuffix("\r").lstrip(_SPACE))
        if not match or match.group(1).lower() not in KNOWN_DIRECTIVES:
            return found, index
        key, value = match.group(1).lower(), match.group(2)
        if key in found:
            raise DockerfileError(f"only one {key} parser directive can be used", index + 1)
        if key == "escape" and value not in ("\\", "`"):
            raise DockerfileError(f"invalid escape token '{value}' does not match ` or \\", index + 1)
        found[key] = value
    return found, len(lines)


class _Reader:
    """Walks the physical lines, yielding one instruction per logical line (plus heredoc bodies)."""

    def __init__(self, lines: list[str], start: int, escape: str) -> None:
        self.lines = lines
        self.pos = start
        self.escape = escape
        # Docker continues a line whose last non-blank character is a lone escape: a doubled
        # escape at the end is literal.
        esc = re.escape(escape)
        self._continuation = re.compile(rf"(?:^|[^{esc}])({esc})[ \t]*$")

    def next_instruction(self) -> Instruction | None:
        """The next instruction, or None at the end of the file."""
        while self.pos < len(self.lines):
            line_no = self.pos + 1
            line = self.lines[self.pos].removesuffix("\r").lstrip(_SPACE)
            self.pos += 1
            if not line or line.startswith("#"):
                continue
            text, more = self._strip_continuation(line)
            while more and self.pos < len(self.lines):
                line = self.lines[self.pos].removesuffix("\r")
                self.pos += 1
                # Comment and blank lines inside a continued instruction are dropped.
                stripped = line.lstrip(_SPACE)
                if not stripped or stripped.startswith("#"):
                    continue
                piece, more = self._strip_continuation(line)
                text += piece
            return self._build(text, line_no)
        return None

    def _strip_continuation(self, line: str) -> tuple[str, bool]:
        match = self._continuation.search(line)
        return (line[: match.start(1)], True) if match else (line, False)

    def _build(self, text: str, line_no: int) -> Instruction:
        """One instruction from its logical line; reads its heredoc bodies from the following lines."""
        word, _, rest = _split_first(text.strip())
        keyword = word.upper()
        raw_flags, rest = extract_flags(rest)
        rest = rest.strip()
        flags = {}
        for flag in raw_flags:
            name, _, value = flag[2:].partition("=")
            flags[name] = value
        trigger = None
        heredocs: list[Heredoc] = []
        original = text
        if keyword == "ONBUILD":
            trigger = self._build(rest, line_no) if rest else None
            args = [_trigger_expression(trigger)] if trigger else []
            is_json = trigger.json if trigger else False
        else:
            args, is_json = _parse_args(keyword, rest, self.escape, line_no)
            if keyword in _HEREDOC_KEYWORDS and not is_json:
                heredocs = self._read_heredocs(heredoc_markers(rest, self.escape), line_no)
                original += "".join(f"\n{doc.content}{doc.name}" for doc in heredocs)
                original += "\n" if heredocs else ""
        return Instruction(keyword, args, flags, is_json, original, line_no, self.pos, heredocs,
                           raw_flags, trigger)

    def _read_heredocs(self, markers: list[Heredoc], line_no: int) -> list[Heredoc]:
        docs = []
        for marker in markers:
            body = []
            while True:
                if self.pos >= len(self.lines):
                    raise DockerfileError("unterminated heredoc", line_no)
                raw = self.lines[self.pos]
                self.pos += 1
                candidate = raw.removesuffix("\r")
                if marker.chomp_tabs:
                    candidate = candidate.lstrip("\t")
                if candidate == marker.name:
                    break
                body.append(raw + "\n")
            docs.append(Heredoc(marker.name, "".join(body), marker.expand, marker.chomp_tabs, marker.fd))
        return docs


def _trigger_expression(trigger: Instruction) -> str:
    """The ONBUILD trigger text docker stores in the image config: instruction, then heredoc bodies."""
    text = trigger.original.split("\n", 1)[0] if trigger.heredocs else trigger.original
    return text + "".join(f"\n{doc.content}{doc.name}" for doc in trigger.heredocs)


def _split_first(text: str) -> tuple[str, str, str]:
    parts = _WHITESPACE.split(text, maxsplit=1)
    return parts[0], " ", parts[1] if len(parts) > 1 else ""


def extract_flags(rest: str) -> tuple[list[str], str]:
    """Split leading ``--name[=value]`` options off an instruction's arguments.

    Returns (option words with quotes and backslash escapes resolved, remaining text).
    Options end at the first word not starting with ``--`` or at a lone ``--``. Docker's
    option scanner always treats ``\\`` as the escape, whatever ``# escape=`` says.
    """
    flags: list[str] = []
    pos = 0
    while True:
        while pos < len(rest) and rest[pos].isspace():
            pos += 1
        if not rest.startswith("--", pos):
            return flags, rest[pos:]
        word, pos = _flag_word(rest, pos)
        if word == "--":
            return flags, rest[pos:].lstrip()
        flags.append(word)


def _flag_word(text: str, pos: int) -> tuple[str, int]:
    out: list[str] = []
    quote = ""
    while pos < len(text):
        ch = text[pos]
        pos += 1
        if not quote and ch.isspace():
            break
        if ch == "\\":
            if pos < len(text):
                out.append(text[pos])
                pos += 1
        elif quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        else:
            out.append(ch)
    return "".join(out), pos


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes in the words (docker's parseWords).

    An escape character keeps the next character in the word (so an escaped quote opens
    nothing); inside single quotes it is literal; a trailing escape is dropped.
    """
    return _split(text, escape)[0]


def _split(text: str, escape: str) -> tuple[list[str], bool]:
    """split_words, plus whether the text ended inside an open quote."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    pos = 0
    while pos < len(text):
        ch = text[pos]
        pos += 1
        if not quote and ch.isspace():
            if word:
                words.append("".join(word))
                word = []
            continue
        if ch == escape and quote != "'":
            if pos == len(text):
                continue
            word.append(ch)
            ch = text[pos]
            pos += 1
        elif quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        word.append(ch)
    if word:
        words.append("".join(word))
    return words, bool(quote)


def heredoc_markers(rest: str, escape: str = "\\") -> list[Heredoc]:
    """The ``[n]<<[-]NAME`` words of a RUN/COPY/ADD line, as Heredocs with empty content.

    Quotes anywhere in the delimiter disable expansion of the body (POSIX 2.7.4; docker
    looks for quote characters only, so ``<<\\EOF`` still expands); an empty name is no
    heredoc, and a line with an unterminated quote has none (docker's lexer rejects it).
    """
    words, open_quote = _split(rest, escape)
    if open_quote:
        return []
    markers = []
    for word in words:
        match = _HEREDOC_WORD.fullmatch(word)
        if not match:
            continue
        fd, dash, raw = match.groups()
        name = _unquote(raw, escape)
        if name:
            quoted = "'" in raw or '"' in raw
            markers.append(Heredoc(name, "", not quoted, dash == "-", int(fd or 0)))
    return markers


def _unquote(word: str, escape: str) -> str:
    out: list[str] = []
    quote = ""
    chars = iter(word)
    for ch in chars:
        if ch == escape and quote != "'":
            out.append(next(chars, ""))
        elif quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        else:
            out.append(ch)
    return "".join(out)


def _parse_args(keyword: str, rest: str, escape: str, line: int) -> tuple[list[str], bool]:
    """Docker's per-instruction argument parsing; returns (args, exec form?)."""
    if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        return _maybe_json(rest, line)
    if keyword in ("COPY", "ADD", "VOLUME"):
        args, is_json = _maybe_json(rest, line)
        return (args, True) if is_json else (rest.split(), False)
    if keyword in ("ENV", "LABEL"):
        return _name_values(keyword, rest, escape, line), False
    if keyword == "ARG":
        return split_words(rest, escape), False
    if keyword in ("EXPOSE", "FROM"):
        return rest.split(), False
    if keyword in ("MAINTAINER", "STOPSIGNAL", "USER", "WORKDIR"):
        return ([rest] if rest else []), False
    if keyword == "HEALTHCHECK":
        kind, _, command = _split_first(rest)
        if not command:
            return ([kind] if kind else []), False
        args, is_json = _maybe_json(command, line)
        return [kind, *args], is_json
    return [], False


def _maybe_json(rest: str, line: int) -> tuple[list[str], bool]:
    """Exec form when ``rest`` starts with a JSON array (text after it is ignored, as Go's decoder does)."""
    if rest.startswith("["):
        try:
            value, _ = _JSON.raw_decode(rest)
        except ValueError:
            return [rest], False
        if not all(isinstance(item, str) for item in value):
            raise DockerfileError(_NOT_STRINGS, line)
        return value, True
    return ([rest] if rest else []), False


def _name_values(keyword: str, rest: str, escape: str, line: int) -> list[str]:
    """ENV/LABEL ``k=v ...`` (or the legacy ``k value`` form) as a flat [k, v, ...] list, quotes kept."""
    words = split_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise DockerfileError(f"{keyword} must have two arguments", line)
        return parts
    flat: list[str] = []
    for word in words:
        if "=" not in word:
            raise DockerfileError(
                f"Syntax error - can't find = in {quote(word)}. "
                "Must be of the form: name=value", line)
        key, _, value = word.partition("=")
        flat += [key, value]
    return flat
