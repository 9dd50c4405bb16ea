"""The template lexer: a generator, so that (as in Go) a parse error earlier in an action wins
over a lex error later in it. Token kinds follow Go's text/template/parse lexer."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import, and the CLI imports this package
    from collections.abc import Generator


class ParseError(Exception):
    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(msg)
        self.msg, self.pos = msg, pos


_WS = " \t\r\n"
_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"}


class Token:
    __slots__ = ("kind", "val", "pos")

    def __init__(self, kind: str, val: str, pos: int) -> None:
        self.kind, self.val, self.pos = kind, val, pos

    def describe(self) -> str:
        """How Go's parser names this token in "unexpected ..." messages."""
        if self.kind == "eof":
            return "EOF"
        if self.kind in ("keyword", "dot", "nil"):
            return f"<{self.val}>"
        return quoted(self.val[:10]) + "..." if len(self.val) > 10 else quoted(self.val)


def quoted(s: str) -> str:
    """Go's strconv.Quote of s, for messages: strconv loads only when a message needs it."""
    from berth.goquote import quote

    return quote(s)


def skip(text: str, i: int, chars: str) -> int:
    """The index of the first character from i on that is not one of chars."""
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdecimal()


def _rune_desc(c: str) -> str:
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


def _right_delim(text: str, pos: int) -> int:
    """Length of the right delimiter at pos: 2 for ``}}``, 4 for `` -}}``, 0 for none."""
    if text.startswith("}}", pos):
        return 2
    return 4 if text.startswith("-}}", pos + 1) and pos < len(text) and text[pos] in _WS else 0


def lex(text: str) -> Generator[Token, None, None]:
    pos, n = 0, len(text)
    while True:
        start = text.find("{{", pos)
        if start < 0:
            if pos < n:
                yield Token("text", text[pos:], pos)
            yield Token("eof", "", n)
            return
        inner = start + 2
        ltrim = text.startswith("-", inner) and inner + 1 < n and text[inner + 1] in _WS
        chunk = text[pos:start].rstrip(_WS) if ltrim else text[pos:start]
        if chunk:
            yield Token("text", chunk, pos)
        inner += 2 if ltrim else 0
        if text.startswith("/*", inner):
            pos, rtrim = _lex_comment(text, inner)
        else:
            yield Token("{{", "{{", start)
            pos, rtrim = yield from _lex_action(text, inner)
        if rtrim:
            while pos < n and text[pos] in _WS:
                pos += 1


def _lex_comment(text: str, pos: int) -> tuple[int, bool]:
    end = text.find("*/", pos + 2)
    if end < 0:
        raise ParseError("unclosed comment", pos)
    delim = _right_delim(text, end + 2)
    if not delim:
        raise ParseError("comment ends before closing delimiter", pos)
    return end + 2 + delim, delim == 4


def _lex_action(text: str, pos: int) -> Generator[Token, None, tuple[int, bool]]:
    n, depth = len(text), 0
    while True:
        delim = _right_delim(text, pos)
        if delim:
            if depth:
                raise ParseError("unclosed left paren", pos)
            yield Token("}}", "}}", pos)
            return pos + delim, delim == 4
        if pos >= n:
            raise ParseError("unclosed action", pos)
        kind, end = _lex_item(text, pos)
        if kind == "(":
            depth += 1
        elif kind == ")":
            if not depth:
                raise ParseError("unexpected right paren", pos)
            depth -= 1
        yield Token(kind, text[pos:end], pos)
        pos = end


def _lex_item(text: str, pos: int) -> tuple[str, int]:
    """Kind and end of the token inside an action that starts at pos."""
    c, n = text[pos], len(text)
    nxt = text[pos + 1] if pos + 1 < n else ""
    if c in _WS:
        end = pos + 1
        while end < n and text[end] in _WS and _right_delim(text, end) != 4:
            end += 1
        return "space", end
    if c in "()|=":
        return c, pos + 1
    if c == ":":
        if nxt != "=":
            raise ParseError("expected :=", pos)
        return ":=", pos + 2
    if c in "\"'":
        return ("string" if c == '"' else "char"), _scan_quoted(text, pos)
    if c == "`":
        end = text.find("`", pos + 1)
        if end < 0:
            raise ParseError("unterminated raw quoted string", pos)
        return "raw", end + 1
    if c in "+-" or "0" <= c <= "9" or (c == "." and "0" <= nxt <= "9"):
        return "number", _scan_number(text, pos)
    if c in "$." or _is_alnum(c):
        end = pos + 1 if c in "$." else pos
        while end < n and _is_alnum(text[end]):
            end += 1
        if end < n and not (text[end] in _WS or text[end] in ".,|:()" or text.startswith("}}", end)):
            raise ParseError(f"bad character {_rune_desc(text[end])}", pos)
        word = text[pos:end]
        if c == "$":
            return "variable", end
        if c == ".":
            return ("dot" if word == "." else "field"), end
        if word in ("true", "false"):
            return "bool", end
        return ("nil" if word == "nil" else "keyword" if word in _KEYWORDS else "identifier"), end
    if c <= "\x7f" and c.isprintable():
        return "punct", pos + 1
    raise ParseError(f"unrecognized character in action: {_rune_desc(c)}", pos)


def _scan_quoted(text: str, pos: int) -> int:
    quote, i = text[pos], pos + 1
    while i < len(text) and text[i] != "\n":
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    raise ParseError("unterminated quoted string" if quote == '"' else "unterminated character constant", pos)


def _scan_number(text: str, pos: int) -> int:
    n, i = len(text), pos
    if text[i] in "+-":
        i += 1
    digits = "0123456789_"
    if text.startswith("0", i) and i + 1 < n and text[i + 1] in "xXoObB":
        digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_", "b": "01_"}[text[i + 1].lower()]
        i += 2
    i = skip(text, i, digits)
    if text.startswith(".", i):
        i = skip(text, i + 1, digits)
    exp = "eE" if len(digits) == 11 else "pP" if len(digits) == 23 else ""
    if exp and i < n and text[i] in exp:
        i = skip(text, i + 2 if i + 1 < n and text[i + 1] in "+-" else i + 1, "0123456789_")
    if text.startswith("i", i):
        i += 1
    if i < n and _is_alnum(text[i]):
        raise ParseError(f"bad number syntax: {quoted(text[pos:i + 1])}", pos)
    return i
