"""Shell-word expansion for Dockerfile instructions (sans-I/O).

Implements the Dockerfile reference's "Environment replacement": ``$V``, ``${V}``, the
``${V:-w}``, ``${V-w}``, ``${V:+w}``, ``${V+w}``, ``${V:?msg}``, ``${V?msg}`` modifiers,
single quotes (literal), double quotes (``$`` still expands; the escape character only
escapes ``"``, ``$`` and itself) and the escape character (``\\`` or the backtick chosen by
``# escape=``). Which instructions expand, and how ENV/ARG see variables, follows the same
section and "ARG" / "Understand how ARG and FROM interact".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

from berth.build.instructions import Heredoc, Instruction
from berth.build.parser import heredoc_markers
from berth.errors import InvalidParameter

# Build arguments docker defines without an ARG line (Dockerfile reference, "Predefined ARGs").
PROXY_ARGS = frozenset({
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
})
_SPECIAL_PARAMS = "@*#?-$!0"


class ExpansionError(InvalidParameter):
    """A word that cannot be expanded (HTTP 400).

    ``reason`` is the lexer's message (``V: msg``, ``syntax error: missing '}'``); with the
    ``word`` the text is docker's ``failed to process "<word>": <reason>``.
    """

    def __init__(self, reason: str, word: str | None = None, line: int | None = None) -> None:
        super().__init__(f'failed to process "{word}": {reason}' if word is not None else reason)
        self.reason = reason
        self.word = word
        self.line = line


class _Words:
    """Collects the words of ProcessWords: unquoted whitespace splits, quoted text never does."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.current: list[str] = []

    def add_splittable(self, text: str) -> None:
        for ch in text:
            if not ch.isspace():
                self.current.append(ch)
            elif self.current:
                self.words.append("".join(self.current))
                self.current = []

    def add_raw(self, text: str) -> None:
        if text:
            self.current.append(text)

    def result(self) -> list[str]:
        word = "".join(self.current)
        return self.words + [word] if word else list(self.words)


class Lexer:
    """Docker's shell-word lexer for one escape character.

    ``raw_quotes`` keeps quote characters and ``raw_escapes`` keeps escape sequences in the
    output (used for heredoc bodies, whose quotes belong to the file written).
    """

    def __init__(self, escape: str = "\\", *, raw_quotes: bool = False, raw_escapes: bool = False) -> None:
        if escape not in ("\\", "`"):
            raise ValueError(f"invalid escape token {escape!r}")
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Expand ``word`` as one word: quotes removed, whitespace kept. Raises ExpansionError."""
        return _Scan(self, word, env).process(None)[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expand ``word`` and split it on unquoted whitespace, including whitespace that came
        from unquoted variable values; empty words are dropped. Raises ExpansionError."""
        return _Scan(self, word, env).process(None)[1].result()


class _Scan:
    """One pass over one word."""

    def __init__(self, lexer: Lexer, text: str, env: Mapping[str, str]) -> None:
        self.lexer = lexer
        self.text = text
        self.env = env
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def process(self, stop: str | None) -> tuple[str, _Words]:
        """Scan up to ``stop`` (consumed) or the end; returns (text, words)."""
        out: list[str] = []
        words = _Words()
        esc = self.lexer.escape
        while (ch := self.peek()) != "":
            if ch == stop:
                self.next()
                return "".join(out), words
            if ch in "'\"$":
                piece = self.single_quoted() if ch == "'" else self.double_quoted() if ch == '"' else self.dollar()
                out.append(piece)
                (words.add_splittable if ch == "$" else words.add_raw)(piece)
                continue
            self.next()
            if ch != esc:
                out.append(ch)
                words.add_splittable(ch)
                continue
            escaped = self.next()
            if not escaped:
                break
            piece = esc + escaped if self.lexer.raw_escapes else escaped
            out.append(piece)
            words.add_raw(piece)
        if stop is not None:
            raise ExpansionError("syntax error: missing '}'")
        return "".join(out), words

    def single_quoted(self) -> str:
        self.next()
        end = self.text.find("'", self.pos)
        if end < 0 and self.lexer.raw_quotes:
            return "'"  # a lone apostrophe in a heredoc body ("it's") is just text
        if end < 0:
            raise ExpansionError("unexpected end of statement while looking for matching single-quote")
        body = self.text[self.pos:end]
        self.pos = end + 1
        return f"'{body}'" if self.lexer.raw_quotes else body

    def double_quoted(self) -> str:
        self.next()
        start = self.pos
        out: list[str] = []
        esc = self.lexer.escape
        while True:
            ch = self.peek()
            if ch == "" and self.lexer.raw_quotes:
                self.pos = start  # an unpaired quote in a heredoc body is just text
                return '"'
            if ch == "":
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                break
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == esc and self.peek() in ('"', "$", esc):
                escaped = self.next()
                ch = esc + escaped if self.lexer.raw_escapes else escaped
            elif ch == esc and not self.peek():
                continue
            out.append(ch)
        body = "".join(out)
        return f'"{body}"' if self.lexer.raw_quotes else body

    def name(self) -> str:
        """A variable name: digits (positional), one special parameter, or letters/digits/_."""
        start = self.pos
        if self.peek().isdigit():
            while self.peek().isdigit():
                self.next()
            return self.text[start:self.pos]
        if self.peek() and self.peek() in _SPECIAL_PARAMS:
            return self.next()
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.next()
        return self.text[start:self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.next()
        if self.peek() == "":
            raise ExpansionError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if op == "}":
            return self.env.get(name, "")
        if op == "":
            raise ExpansionError("syntax error: missing '}'")
        colon = op == ":"
        if colon:
            op = self.next()
        if op not in ("-", "+", "?"):
            if colon:
                raise ExpansionError(f"unsupported modifier ({op}) in substitution")
            raise ExpansionError("missing ':' in substitution")
        word = self.process("}")[0]
        return _apply_modifier(name, self.env.get(name), op, colon, word)


def _apply_modifier(name: str, value: str | None, op: str, colon: bool, word: str) -> str:
    """``${name<op>word}``; with ``colon`` an empty value counts as unset (POSIX 2.6.2)."""
    missing = value is None or (colon and value == "")
    if op == "-":
        return word if missing else value or ""
    if op == "+":
        return "" if missing else word
    if not missing:
        return value or ""
    default = "is not allowed to be unset" if value is None else "is not allowed to be empty"
    raise ExpansionError(f"{name}: {word or default}")


def process_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Docker's ``ProcessWord``: expand one word (see Lexer.process_word)."""
    return Lexer(escape).process_word(word, env)


def process_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Docker's ``ProcessWords``: expand and split on unquoted whitespace (see Lexer.process_words)."""
    return Lexer(escape).process_words(word, env)


ProcessWord = process_word
ProcessWords = process_words

# Instructions the builder expands (Dockerfile reference, "Environment replacement", plus ARG
# defaults as BuildKit does); RUN, CMD and ENTRYPOINT are left to the shell, and ONBUILD
# triggers expand when they run in the downstream build.
EXPANDED = frozenset({"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
                      "WORKDIR", "ARG"})
_EXPANDED_FLAGS = {"FROM": ("platform",), "COPY": ("from", "chown", "chmod"), "ADD": ("chown", "chmod")}


def expand_instruction(instr: Instruction, env: Mapping[str, str], escape: str = "\\") -> Instruction:
    """Return ``instr`` with its arguments (and expandable options) expanded against ``env``.

    Every reference in the instruction sees ``env`` as it was before the instruction, so
    ``ENV a=1 b=$a`` with no earlier ``a`` gives ``b=""``. ENV/LABEL expand keys and values,
    ARG its defaults, FROM the image and ``--platform`` (the stage name is kept), EXPOSE
    splits each word into several (ProcessWords), the others expand each word once;
    COPY/ADD heredoc markers stay as written. Raises ExpansionError with the line.
    """
    if instr.keyword not in EXPANDED:
        return instr
    lexer = Lexer(escape)

    def one(word: str) -> str:
        try:
            return lexer.process_word(word, env)
        except ExpansionError as err:
            raise ExpansionError(err.reason, word, instr.line) from None

    args = _expand_args(instr, one, lexer, env)
    flags = dict(instr.flags)
    for name in _EXPANDED_FLAGS.get(instr.keyword, ()):
        if name in flags:
            flags[name] = one(flags[name])
    raw_flags = [_expand_raw_flag(flag, instr.keyword, one) for flag in instr.raw_flags]
    return dataclasses.replace(instr, args=args, flags=flags, raw_flags=raw_flags)


def _expand_args(instr: Instruction, one: Callable[[str], str], lexer: Lexer,
                 env: Mapping[str, str]) -> list[str]:
    kw = instr.keyword
    if kw == "FROM":
        return [one(instr.args[0]), *instr.args[1:]] if instr.args else []
    if kw == "ARG":
        out = []
        for word in instr.args:
            name, has_value, value = word.partition("=")
            out.append(f"{name}={one(value)}" if has_value else word)
        return out
    if kw == "EXPOSE":
        ports: list[str] = []
        for word in instr.args:
            try:
                ports += lexer.process_words(word, env)
            except ExpansionError as err:
                raise ExpansionError(err.reason, word, instr.line) from None
        return ports
    if kw in ("COPY", "ADD"):
        names = {doc.name for doc in instr.heredocs}
        return [word if _is_marker(word, names, lexer.escape) else one(word) for word in instr.args]
    return [one(word) for word in instr.args]


def _is_marker(word: str, names: set[str], escape: str) -> bool:
    """Whether a COPY/ADD argument is the ``<<NAME`` marker of one of its heredocs."""
    return any(marker.name in names for marker in heredoc_markers(word, escape))


def _expand_raw_flag(flag: str, keyword: str, one: Callable[[str], str]) -> str:
    name, has_value, value = flag[2:].partition("=")
    if has_value and name in _EXPANDED_FLAGS.get(keyword, ()):
        return f"--{name}={one(value)}"
    return flag


def expand_heredoc(doc: Heredoc, env: Mapping[str, str], escape: str = "\\") -> str:
    """The text a COPY/ADD heredoc writes: tabs chomped for ``<<-``, then variables expanded
    unless the delimiter was quoted. Quotes and escapes stay in the text; as in docker's
    builder a single-quoted part is not expanded."""
    body = doc.body()
    if not doc.expand:
        return body
    try:
        return Lexer(escape, raw_quotes=True, raw_escapes=True).process_word(body, env)
    except ExpansionError as err:
        raise ExpansionError(err.reason, f"<<{doc.name}") from None


def meta_arg_values(meta_args: Iterable[Instruction], build_args: Mapping[str, str | None],
                    escape: str = "\\") -> dict[str, str]:
    """Values of the ARGs declared before the first FROM, as FROM lines see them.

    A ``--build-arg`` value wins over the default; defaults may use earlier meta ARGs.
    An ARG with neither stays unset (absent from the result).
    """
    values: dict[str, str] = {}
    for instr in meta_args:
        values.update(_declare(expand_instruction(instr, values, escape), build_args, {}))
    return values


def _declare(expanded: Instruction, build_args: Mapping[str, str | None],
             meta: Mapping[str, str]) -> dict[str, str]:
    """The values an (expanded) ARG instruction gives its names: build arg, else default,
    else the meta ARG of the same name; names with none of these stay unset."""
    declared: dict[str, str] = {}
    for word in expanded.args:
        name, has_value, value = word.partition("=")
        given = build_args.get(name)
        if given is not None:
            declared[name] = given
        elif has_value:
            declared[name] = value
        elif name in meta:
            declared[name] = meta[name]
    return declared


class StageScope:
    """The variables one build stage sees, instruction by instruction (sans-I/O).

    ``image_env`` is the base image's ``Env`` as a dict, ``meta`` the result of
    :func:`meta_arg_values`, ``build_args`` the ``--build-arg`` values (None: not set).
    Meta ARGs are invisible in the stage until an ``ARG name`` redeclares them; the proxy
    ARGs (:data:`PROXY_ARGS`) are visible when given. ENV overrides an ARG of the same name
    (Dockerfile reference, "ARG": "Using ARG variables").
    """

    def __init__(self, image_env: Mapping[str, str], meta: Mapping[str, str],
                 build_args: Mapping[str, str | None], escape: str = "\\") -> None:
        self.env: dict[str, str] = dict(image_env)
        self.args: dict[str, str] = {
            name: value for name, value in build_args.items() if name in PROXY_ARGS and value is not None
        }
        self.meta = meta
        self.build_args = build_args
        self.escape = escape

    def variables(self) -> dict[str, str]:
        """What ``$name`` expands to now: declared ARG values overridden by ENV."""
        return {**self.args, **self.env}

    def expand(self, instr: Instruction) -> Instruction:
        """Expand ``instr`` with the current variables, then apply its ENV/ARG effect."""
        expanded = expand_instruction(instr, self.variables(), self.escape)
        if expanded.keyword == "ENV":
            self.env.update(zip(expanded.args[::2], expanded.args[1::2], strict=True))
        elif expanded.keyword == "ARG":
            self.args.update(_declare(expanded, self.build_args, self.meta))
        return expanded


def unused_build_args(instructions: Iterable[Instruction], build_args: Mapping[str, str | None]) -> list[str]:
    """Sorted build-arg names no ARG declares (docker warns ``One or more build-args [...] were
    not consumed``); the predefined proxy ARGs never count as unused."""
    declared = {word.partition("=")[0] for instr in instructions if instr.keyword == "ARG" for word in instr.args}
    return sorted(name for name in build_args if name not in declared and name not in PROXY_ARGS)
