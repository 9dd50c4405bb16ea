"""Go ``text/template`` as docker's ``--format`` uses it: a sans-I/O engine, stdlib only.

Behaviour follows the Go documentation of package ``text/template`` (actions, arguments,
pipelines, variables, functions; Go 1.24, which docker 28 is built with) and package ``fmt``
(``%v`` printing and the printf verbs), plus the functions the docker CLI adds (docs.docker.com,
"Format command and log output": json, join, split, lower, upper, title, truncate, pad). Error
messages are Go's, e.g. ``template: :1: unexpected "}" in operand``.

Python values stand for Go values:

* dict: a map. ``.Key`` looks a key up (case-sensitive); a missing key gives :data:`NO_VALUE`,
  printed ``<no value>``. Printed ``map[k:v ...]`` and ranged over in sorted key order.
* list/tuple: a slice (``[a b]``); str, int, float, bool: string, int, float64, bool.
* None: a nil pointer, slice or map: printed ``<nil>``, false, ranges and joins as empty, ``len`` 0.
* any other object: a struct. ``.Name`` reads an attribute (names starting with ``_`` are
  refused); methods are called, with arguments when given (``{{.Label "x"}}``).

Where Python data cannot say what Go's static types would, berth takes the docker-typed view:
``len`` of None is 0 and ``join`` of None is "" (nil slices); ``index`` of None by a string gives
NO_VALUE (a nil map); ``join`` takes any list of str (Go wants a ``[]string``); error messages name
a value's own type ("in type string") where Go names a map's element type ("interface {}").
``json`` leaves <, > and & unescaped because docker's json function does (SetEscapeHTML(false)).

Not supported: the ``define``, ``template`` and ``block`` actions and complex numbers.
"""

from __future__ import annotations

from berth.errors import InvalidParameter

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import, and the CLI imports this module
    from collections.abc import Callable, Generator, Iterator
    from typing import Any, NoReturn

__all__ = ["NO_VALUE", "Template", "TemplateError", "render"]


class TemplateError(InvalidParameter):
    """A template that does not parse or fails while executing; the message is Go's."""


class _NoValue:
    """Go's invalid ``reflect.Value``: what a missing map key evaluates to."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


#: The value of a missing dict key; printed ``<no value>``, passed to functions as None.
NO_VALUE: Any = _NoValue()


class _SyntaxErr(Exception):
    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(msg)
        self.msg, self.pos = msg, pos


# ---------------------------------------------------------------------------------------------
# Lexer: a generator, so that (as in Go) a parse error earlier in an action wins over a lex error.

_WS = " \t\r\n"
_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"}


class _Tok:
    __slots__ = ("kind", "val", "pos")

    def __init__(self, kind: str, val: str, pos: int) -> None:
        self.kind, self.val, self.pos = kind, val, pos

    def describe(self) -> str:
        """How Go's parser names this token in "unexpected ..." messages."""
        if self.kind == "eof":
            return "EOF"
        if self.kind in ("keyword", "dot", "nil"):
            return f"<{self.val}>"
        return _go_quote(self.val[:10]) + "..." if len(self.val) > 10 else _go_quote(self.val)


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdecimal()


def _rune_desc(c: str) -> str:
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


def _right_delim(text: str, pos: int) -> int:
    """Length of the right delimiter at pos: 2 for ``}}``, 4 for `` -}}``, 0 for none."""
    if text.startswith("}}", pos):
        return 2
    return 4 if text.startswith("-}}", pos + 1) and pos < len(text) and text[pos] in _WS else 0


def _lex(text: str) -> Generator[_Tok, None, None]:
    pos, n = 0, len(text)
    while True:
        start = text.find("{{", pos)
        if start < 0:
            if pos < n:
                yield _Tok("text", text[pos:], pos)
            yield _Tok("eof", "", n)
            return
        inner = start + 2
        ltrim = text.startswith("-", inner) and inner + 1 < n and text[inner + 1] in _WS
        chunk = text[pos:start].rstrip(_WS) if ltrim else text[pos:start]
        if chunk:
            yield _Tok("text", chunk, pos)
        inner += 2 if ltrim else 0
        if text.startswith("/*", inner):
            pos, rtrim = _lex_comment(text, inner)
        else:
            yield _Tok("{{", "{{", start)
            pos, rtrim = yield from _lex_action(text, inner)
        if rtrim:
            while pos < n and text[pos] in _WS:
                pos += 1


def _lex_comment(text: str, pos: int) -> tuple[int, bool]:
    end = text.find("*/", pos + 2)
    if end < 0:
        raise _SyntaxErr("unclosed comment", pos)
    delim = _right_delim(text, end + 2)
    if not delim:
        raise _SyntaxErr("comment ends before closing delimiter", pos)
    return end + 2 + delim, delim == 4


def _lex_action(text: str, pos: int) -> Generator[_Tok, None, tuple[int, bool]]:
    n, depth = len(text), 0
    while True:
        delim = _right_delim(text, pos)
        if delim:
            if depth:
                raise _SyntaxErr("unclosed left paren", pos)
            yield _Tok("}}", "}}", pos)
            return pos + delim, delim == 4
        if pos >= n:
            raise _SyntaxErr("unclosed action", pos)
        kind, end = _lex_item(text, pos)
        if kind == "(":
            depth += 1
        elif kind == ")":
            if not depth:
                raise _SyntaxErr("unexpected right paren", pos)
            depth -= 1
        yield _Tok(kind, text[pos:end], pos)
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
            raise _SyntaxErr("expected :=", pos)
        return ":=", pos + 2
    if c in "\"'":
        return ("string" if c == '"' else "char"), _scan_quoted(text, pos)
    if c == "`":
        end = text.find("`", pos + 1)
        if end < 0:
            raise _SyntaxErr("unterminated raw quoted string", pos)
        return "raw", end + 1
    if c in "+-" or "0" <= c <= "9" or (c == "." and "0" <= nxt <= "9"):
        return "number", _scan_number(text, pos)
    if c in "$." or _is_alnum(c):
        end = pos + 1 if c in "$." else pos
        while end < n and _is_alnum(text[end]):
            end += 1
        if end < n and not (text[end] in _WS or text[end] in ".,|:()" or text.startswith("}}", end)):
            raise _SyntaxErr(f"bad character {_rune_desc(text[end])}", pos)
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
    raise _SyntaxErr(f"unrecognized character in action: {_rune_desc(c)}", pos)


def _scan_quoted(text: str, pos: int) -> int:
    quote, i = text[pos], pos + 1
    while i < len(text) and text[i] != "\n":
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    raise _SyntaxErr("unterminated quoted string" if quote == '"' else "unterminated character constant", pos)


def _scan_number(text: str, pos: int) -> int:
    n, i = len(text), pos
    if text[i] in "+-":
        i += 1
    digits = "0123456789_"
    if text.startswith("0", i) and i + 1 < n and text[i + 1] in "xXoObB":
        digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_", "b": "01_"}[text[i + 1].lower()]
        i += 2
    i = _skip(text, i, digits)
    if text.startswith(".", i):
        i = _skip(text, i + 1, digits)
    exp = "eE" if len(digits) == 11 else "pP" if len(digits) == 23 else ""
    if exp and i < n and text[i] in exp:
        i = _skip(text, i + 2 if i + 1 < n and text[i + 1] in "+-" else i + 1, "0123456789_")
    if text.startswith("i", i):
        i += 1
    if i < n and _is_alnum(text[i]):
        raise _SyntaxErr(f"bad number syntax: {_go_quote(text[pos:i + 1])}", pos)
    return i


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unquote(lit: str) -> str:
    """Go's strconv.Unquote of a "..." or '...' literal; ValueError("invalid syntax").

    In strings \\x and octal escapes are bytes, so the result is the UTF-8 decoding of them all."""
    quote, body, out, i = lit[0], lit[1:-1], bytearray(), 0
    if quote == "'" and (not body or body[0] == quote):
        raise ValueError("invalid syntax")
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogatepass")
            i += 1
            continue
        e = body[i + 1]
        if e in _ESCAPES or e == quote:
            out += _ESCAPES.get(e, e).encode()
            i += 2
            continue
        size = {"x": 2, "u": 4, "U": 8}.get(e, 3 if e in "01234567" else 0)
        start = i + 1 if size == 3 else i + 2
        digits = body[start:start + size]
        try:
            code = int(digits, 8 if size == 3 else 16) if len(digits) == size else -1
        except ValueError:
            code = -1
        if code < 0 or code > 0x10FFFF or 0xD800 <= code < 0xE000 or (size == 3 and code > 255):
            raise ValueError("invalid syntax")
        out += bytes([code]) if size < 4 and quote == '"' else chr(code).encode("utf-8", "surrogatepass")
        i = start + size
    return out.decode("utf-8", "replace")


def _parse_number(text: str) -> tuple[int | float, int | None]:
    """(value as an untyped constant prints, int value or None); ValueError when illegal."""
    if text.startswith("'"):
        value = _unquote(text)
        if len(value) != 1:
            raise ValueError(f"malformed character constant: {text}")
        return ord(value), ord(value)
    t = text.replace("_", "")
    body = t.lstrip("+-")
    ival: int | None = None
    try:
        legacy_octal = len(body) > 1 and body[0] == "0" and body[1].isdigit()
        ival = int(t, 8) if legacy_octal else int(t, 0)
    except ValueError:
        pass
    if ival is not None:
        return ival, ival
    try:
        fval = float.fromhex(t) if body[:2].lower() == "0x" else float(t)
    except ValueError:
        raise ValueError(f"illegal number syntax: {_go_quote(text)}") from None
    if not any(c in body for c in ".eEpP"):  # Go: what reads as a float but not an int is too big
        raise ValueError(f"integer overflow: {_go_quote(text)}")
    ival = int(fval) if fval.is_integer() else None
    return (fval if any(c in body for c in ".eEpP") or ival is None else ival), ival


# ---------------------------------------------------------------------------------------------
# Parse tree.


class _Node:
    __slots__ = ("pos",)
    pos: int


class _Text(_Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str) -> None:
        self.pos, self.text = pos, text


class _Action(_Node):
    __slots__ = ("pipe",)

    def __init__(self, pos: int, pipe: _Pipe) -> None:
        self.pos, self.pipe = pos, pipe


class _Control(_Node):
    """if, with or range: body runs on a true value, else_body otherwise (None when absent)."""

    __slots__ = ("kind", "pipe", "body", "else_body")

    def __init__(self, pos: int, kind: str, pipe: _Pipe, body: list[_Node], else_body: list[_Node] | None):
        self.pos, self.kind, self.pipe, self.body, self.else_body = pos, kind, pipe, body, else_body


class _Jump(_Node):
    """{{break}} or {{continue}}."""

    __slots__ = ("kind",)

    def __init__(self, pos: int, kind: str) -> None:
        self.pos, self.kind = pos, kind


class _Pipe(_Node):
    __slots__ = ("decl", "is_assign", "cmds")

    def __init__(self, pos: int, decl: list[str], is_assign: bool, cmds: list[_Cmd]) -> None:
        self.pos, self.decl, self.is_assign, self.cmds = pos, decl, is_assign, cmds

    def __str__(self) -> str:
        head = ", ".join(self.decl) + (" = " if self.is_assign else " := ") if self.decl else ""
        return head + " | ".join(map(str, self.cmds))


class _Cmd(_Node):
    __slots__ = ("args",)

    def __init__(self, pos: int, args: list[_Node]) -> None:
        self.pos, self.args = pos, args

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, _Pipe) else str(a) for a in self.args)


class _Field(_Node):
    __slots__ = ("names",)

    def __init__(self, pos: int, names: list[str]) -> None:
        self.pos, self.names = pos, names

    def __str__(self) -> str:
        return "." + ".".join(self.names)


class _Var(_Node):
    __slots__ = ("name", "fields")

    def __init__(self, pos: int, name: str, fields: list[str]) -> None:
        self.pos, self.name, self.fields = pos, name, fields

    def __str__(self) -> str:
        return self.name + "".join("." + f for f in self.fields)


class _Chain(_Node):
    """Fields of a parenthesised pipeline or other term: ``(index . 0).Name``."""

    __slots__ = ("node", "fields")

    def __init__(self, pos: int, node: _Node, fields: list[str]) -> None:
        self.pos, self.node, self.fields = pos, node, fields

    def __str__(self) -> str:
        head = f"({self.node})" if isinstance(self.node, _Pipe) else str(self.node)
        return head + "".join("." + f for f in self.fields)


class _Ident(_Node):
    __slots__ = ("name",)

    def __init__(self, pos: int, name: str) -> None:
        self.pos, self.name = pos, name

    def __str__(self) -> str:
        return self.name


class _Literal(_Node):
    """dot, nil, a bool, number or string constant: ``text`` as written, ``value`` as evaluated."""

    __slots__ = ("kind", "text", "value", "ival")

    def __init__(self, pos: int, kind: str, text: str, value: Any = None, ival: int | None = None):
        self.pos, self.kind, self.text, self.value, self.ival = pos, kind, text, value, ival

    def __str__(self) -> str:
        return self.text


class _Marker:
    """{{end}} or {{else}} (``chain`` is "if" or "with" for ``{{else if ...}}``)."""

    def __init__(self, kind: str, chain: str = "") -> None:
        self.kind, self.chain = kind, chain

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"


_MAX_DEPTH = 100
_OPERAND_START = {"bool", "char", "dot", "field", "identifier", "number", "nil", "raw", "string", "variable", "("}


class _Parser:
    """Recursive descent over the token stream, after the grammar in Go's text/template docs."""

    def __init__(self, text: str, funcs: dict[str, Any]) -> None:
        self.toks: Iterator[_Tok] = _lex(text)
        self.back: list[_Tok] = []
        self.funcs = funcs
        self.vars = ["$"]
        self.range_depth = 0
        self.depth = 0
        self.last = 0

    def next(self) -> _Tok:
        if self.back:
            tok = self.back.pop()
        else:
            try:
                tok = next(self.toks)
            except _SyntaxErr as e:  # as in Go, a lex error is reported when the parser reaches it
                tok = _Tok("error", e.msg, e.pos)
                self.toks = iter(lambda: tok, None)
        self.last = tok.pos
        return tok

    def next_nonspace(self) -> _Tok:
        tok = self.next()
        while tok.kind == "space":
            tok = self.next()
        return tok

    def peek(self) -> _Tok:
        tok = self.next()
        self.back.append(tok)
        return tok

    def peek_nonspace(self) -> _Tok:
        tok = self.next_nonspace()
        self.back.append(tok)
        return tok

    def error(self, msg: str) -> NoReturn:
        raise _SyntaxErr(msg, self.last)

    def unexpected(self, tok: _Tok, context: str) -> NoReturn:
        if tok.kind == "error":
            raise _SyntaxErr(tok.val, tok.pos)
        self.error(f"unexpected {tok.describe()} in {context}")

    def parse(self) -> list[_Node]:
        nodes, end = self.item_list()
        if end is not None:
            self.error(f"unexpected {end}")
        return nodes

    def item_list(self) -> tuple[list[_Node], _Marker | None]:
        """Nodes up to EOF (marker None) or to an {{end}} or {{else}} (returned)."""
        nodes: list[_Node] = []
        while True:
            tok = self.next()
            if tok.kind == "eof":
                self.back.append(tok)
                return nodes, None
            if tok.kind == "text":
                nodes.append(_Text(tok.pos, tok.val))
                continue
            if tok.kind != "{{":
                self.unexpected(tok, "input")
            node = self.action()
            if isinstance(node, _Marker):
                return nodes, node
            nodes.append(node)

    def action(self) -> _Node | _Marker:
        tok = self.next_nonspace()
        word = tok.val if tok.kind == "keyword" else ""
        if word in ("if", "range", "with"):
            return self.control(word, tok.pos)
        if word == "else":
            peek = self.peek_nonspace()
            if peek.kind == "keyword" and peek.val in ("if", "with"):
                return _Marker("else", peek.val)
            self.expect_close("else")
            return _Marker("else")
        if word in ("end", "break", "continue"):
            self.expect_close("end" if word == "end" else "{{" + word + "}}")
            if word == "end":
                return _Marker("end")
            if not self.range_depth:
                self.error(f"{{{{{word}}}}} outside {{{{range}}}}")
            return _Jump(tok.pos, word)
        if word:
            self.error(f"the {{{{{word}}}}} action is not supported")
        self.back.append(tok)
        return _Action(tok.pos, self.pipeline("command", "}}"))

    def expect_close(self, context: str) -> None:
        tok = self.next_nonspace()
        if tok.kind != "}}":
            self.unexpected(tok, context)

    def nest(self) -> None:
        """Count one more level of nesting; Go caps it too, and Python's stack is smaller."""
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.error("max expression depth exceeded")

    def control(self, kind: str, pos: int) -> _Control:
        self.nest()
        mark = len(self.vars)
        pipe = self.pipeline(kind, "}}")
        self.range_depth += kind == "range"
        body, end = self.item_list()
        self.range_depth -= kind == "range"
        else_body: list[_Node] | None = None
        if end is None:
            self.error("unexpected EOF")
        if end.kind == "else":
            if end.chain and (end.chain != kind or kind == "range"):
                self.error(f"unexpected <{end.chain}> in input")
            if end.chain:
                self.next_nonspace()
                else_body = [self.control(kind, self.last)]
            else:
                else_body, end = self.item_list()
                if end is None:
                    self.error("unexpected EOF")
                if end.kind != "end":
                    self.error(f"expected end; found {end}")
        del self.vars[mark:]
        self.depth -= 1
        return _Control(pos, kind, pipe, body, else_body)

    def declarations(self, context: str) -> tuple[list[str], bool]:
        decl: list[str] = []
        while (var := self.peek_nonspace()).kind == "variable":
            self.next()
            after = self.peek()
            nxt = self.peek_nonspace()
            if nxt.kind in (":=", "="):
                self.next()
                decl.append(var.val)
                self.vars.append(var.val)
                return decl, nxt.kind == "="
            if nxt.kind == "punct" and nxt.val == ",":
                self.next()
                decl.append(var.val)
                self.vars.append(var.val)
                if context == "range" and len(decl) < 2:
                    if self.peek_nonspace().kind in ("variable", "}}", ")"):
                        continue
                    self.error("range can only initialize variables")
                self.error(f"too many declarations in {context}")
            if after.kind == "space":
                self.back.append(after)
            self.back.append(var)
            break
        return decl, False

    def pipeline(self, context: str, end: str) -> _Pipe:
        self.nest()
        pos = self.peek_nonspace().pos
        decl, is_assign = self.declarations(context)
        cmds: list[_Cmd] = []
        while (tok := self.next_nonspace()).kind != end:
            if tok.kind not in _OPERAND_START:
                self.unexpected(tok, context)
            self.back.append(tok)
            cmds.append(self.command())
        if not cmds:
            self.error(f"missing value for {context}")
        for stage, cmd in enumerate(cmds[1:], 2):
            if isinstance(cmd.args[0], _Literal):
                self.error(f"non executable command in pipeline stage {stage}")
        self.depth -= 1
        return _Pipe(pos, decl, is_assign, cmds)

    def command(self) -> _Cmd:
        cmd = _Cmd(self.peek_nonspace().pos, [])
        while True:
            self.peek_nonspace()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("}}", ")"):
                self.back.append(tok)
            elif tok.kind != "|":
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.error("empty command")
        return cmd

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        pos, fields = self.peek().pos, []
        while self.peek().kind == "field":
            fields.append(self.next().val[1:])
        if isinstance(node, _Field):
            return _Field(pos, node.names + fields)
        if isinstance(node, _Var):
            return _Var(pos, node.name, node.fields + fields)
        if isinstance(node, _Literal):
            self.error(f"unexpected . after term {_go_quote(str(node))}")
        return _Chain(pos, node, fields)

    def term(self) -> _Node | None:
        tok = self.next_nonspace()
        kind, val, pos = tok.kind, tok.val, tok.pos
        if kind == "identifier":
            if val not in self.funcs:
                self.error(f"function {_go_quote(val)} not defined")
            return _Ident(pos, val)
        if kind == "variable":
            if val not in self.vars:
                self.error(f"undefined variable {_go_quote(val)}")
            return _Var(pos, val, [])
        if kind == "field":
            return _Field(pos, [val[1:]])
        if kind == "(":
            return self.pipeline("parenthesized pipeline", ")")
        try:
            if kind in ("number", "char"):
                return _Literal(pos, "number", val, *_parse_number(val))
            if kind in ("string", "raw"):
                text = val[1:-1].replace("\r", "") if kind == "raw" else _unquote(val)
                return _Literal(pos, "string", val, text)
        except ValueError as e:
            self.error(str(e))
        if kind in ("dot", "nil", "bool"):
            return _Literal(pos, kind, val, val == "true" if kind == "bool" else None)
        self.back.append(tok)
        return None


# ---------------------------------------------------------------------------------------------
# Execution.

_NOFINAL: Any = object()  # no value piped in from a previous command


class _LoopJump(Exception):
    def __init__(self, kind: str) -> None:
        self.kind = kind


class _CallError(Exception):
    """A builtin function's error; reported as Go's ``error calling NAME: ...``."""


class _Builtin:
    """A builtin function: params are kinds ("value" raw, "any" with NO_VALUE as None, "string",
    "int", "strings"); variadic is the kind of the repeated last parameter, if any."""

    __slots__ = ("name", "fn", "params", "variadic")

    def __init__(self, name: str, fn: Callable[..., Any] | None, params: str, variadic: str = "") -> None:
        self.name, self.fn, self.params, self.variadic = name, fn, params.split(), variadic

    def kind(self, i: int) -> str:
        return self.params[i] if i < len(self.params) else self.variadic


_GO_PARAM = {"string": "string", "int": "int", "strings": "[]string"}


class _Exec:
    def __init__(self, tmpl: Template, data: Any) -> None:
        self.tmpl = tmpl
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = [("$", data)]
        self.node: _Node | None = None

    def fail(self, msg: str, node: _Node | None = None) -> NoReturn:
        raise TemplateError(self.tmpl._exec_message(msg, node or self.node))

    def walk(self, nodes: list[_Node], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Action):
                val = self.pipeline(dot, node.pipe)
                if not node.pipe.decl:
                    self.out.append(_print_value(val))
            elif isinstance(node, _Control):
                self.walk_control(node, dot)
            elif isinstance(node, _Jump):
                raise _LoopJump(node.kind)

    def walk_control(self, node: _Control, dot: Any) -> None:
        mark = len(self.vars)
        try:
            val = self.pipeline(dot, node.pipe)
            if node.kind == "range":
                self.walk_range(node, dot, val)
            elif _is_true(val):
                self.walk(node.body, val if node.kind == "with" else dot)
            elif node.else_body is not None:
                self.walk(node.else_body, dot)
        finally:
            del self.vars[mark:]

    def walk_range(self, node: _Control, dot: Any, val: Any) -> None:
        decl, assign = node.pipe.decl, node.pipe.is_assign
        if val is NO_VALUE or val is None:
            items: list[tuple[Any, Any]] = []
        elif isinstance(val, (list, tuple)):
            items = list(enumerate(val))
        elif isinstance(val, dict):
            items = _sorted_items(val)
        elif isinstance(val, int) and not isinstance(val, bool):
            if len(decl) > 1:
                self.fail(f"can't use {val} to iterate over more than one variable")
            items = [(i, i) for i in range(val)]
        else:
            self.fail(f"range can't iterate over {_print_value(val)}")
        mark = len(self.vars)
        for key, elem in items:
            if assign:
                self.set_var(decl[0], key if len(decl) > 1 else elem)
                if len(decl) > 1:
                    self.set_var(decl[1], elem)
            elif decl:
                self.vars[-1] = (decl[-1], elem)
                if len(decl) > 1:
                    self.vars[-2] = (decl[0], key)
            try:
                self.walk(node.body, elem)
            except _LoopJump as jump:
                if jump.kind == "break":
                    break
            finally:
                del self.vars[mark:]
        if not items and node.else_body is not None:
            self.walk(node.else_body, dot)

    def pipeline(self, dot: Any, pipe: _Pipe) -> Any:
        val = _NOFINAL
        for cmd in pipe.cmds:
            val = self.command(dot, cmd, val)
        for name in pipe.decl:
            if pipe.is_assign:
                self.set_var(name, val)
            else:
                self.vars.append((name, val))
        return val

    def set_var(self, name: str, val: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, val)
                return
        self.fail(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for var, val in reversed(self.vars):
            if var == name:
                return val
        self.fail(f"undefined variable: {name}")

    def command(self, dot: Any, cmd: _Cmd, final: Any) -> Any:
        first = self.node = cmd.args[0]
        if isinstance(first, _Field):
            return self.field_chain(dot, dot, first, first.names, cmd.args, final)
        if isinstance(first, _Chain):
            return self.chain(dot, first, cmd.args, final)
        if isinstance(first, _Ident):
            return self.call_function(dot, first, cmd, final)
        if isinstance(first, _Var) and first.fields:
            return self.field_chain(dot, self.var_value(first.name), first, first.fields, cmd.args, final)
        if len(cmd.args) > 1 or final is not _NOFINAL:
            self.fail(f"can't give argument to non-function {first}")
        if isinstance(first, _Literal) and first.kind == "nil":
            self.fail("nil is not a command")
        return self.arg(dot, first)

    def arg(self, dot: Any, node: _Node) -> Any:
        """The value of an argument, as Go evaluates one for an interface{} parameter."""
        self.node = node
        if isinstance(node, _Literal):
            return dot if node.kind == "dot" else node.value
        if isinstance(node, _Field):
            return self.field_chain(dot, dot, node, node.names, None, _NOFINAL)
        if isinstance(node, _Var):
            val = self.var_value(node.name)
            return self.field_chain(dot, val, node, node.fields, None, _NOFINAL) if node.fields else val
        if isinstance(node, _Pipe):
            return self.pipeline(dot, node)
        if isinstance(node, _Ident):
            return self.call_function(dot, node, _Cmd(node.pos, [node]), _NOFINAL)
        assert isinstance(node, _Chain)
        return self.chain(dot, node, None, _NOFINAL)

    def chain(self, dot: Any, node: _Chain, args: list[_Node] | None, final: Any) -> Any:
        if isinstance(node.node, _Literal) and node.node.kind == "nil":
            self.fail(f"indirection through explicit nil in {node}", node)
        return self.field_chain(dot, self.arg(dot, node.node), node, node.fields, args, final)

    def field_chain(self, dot: Any, recv: Any, node: _Node, names: list[str], args: list[_Node] | None,
                    final: Any) -> Any:
        # errors name the current node, which for a chain is the last thing evaluated (as in Go)
        for name in names[:-1]:
            recv = self.field(dot, name, node, None, _NOFINAL, recv)
        return self.field(dot, names[-1], node, args, final, recv)

    def field(self, dot: Any, name: str, node: _Node, args: list[_Node] | None, final: Any, recv: Any) -> Any:
        if recv is NO_VALUE:
            return NO_VALUE
        if recv is None:
            self.fail(f"nil pointer evaluating interface {{}}.{name}")
        has_args = (args is not None and len(args) > 1) or final is not _NOFINAL
        if isinstance(recv, dict):
            if has_args:
                self.fail(f"{name} is not a method but has arguments")
            return recv.get(name, NO_VALUE)
        attr = NO_VALUE
        if type(recv).__module__ != "builtins" and not name.startswith("_"):
            try:
                attr = getattr(recv, name, NO_VALUE)
            except Exception as e:
                self.fail(f"error calling {name}: {e}")
        if attr is NO_VALUE:
            self.fail(f"can't evaluate field {name} in type {_go_type(recv)}")
        if callable(attr) and not isinstance(attr, type):
            return self.call(dot, attr, name, node, args or [node], final)
        if has_args:
            self.fail(f"{name} is not a method but has arguments")
        return attr

    def call_function(self, dot: Any, ident: _Ident, cmd: _Cmd, final: Any) -> Any:
        self.node = ident
        return self.call(dot, self.tmpl._funcs[ident.name], ident.name, cmd, cmd.args, final)

    def call(self, dot: Any, fn: Any, name: str, node: _Node, args: list[_Node], final: Any) -> Any:
        """Call fn with the arguments args[1:] (+ final); node is where errors are reported."""
        spec = fn if isinstance(fn, _Builtin) else None
        arg_nodes = args[1:]
        if spec is not None:
            self.check_arity(spec, len(arg_nodes), final is not _NOFINAL)
            if spec.name in ("and", "or"):
                return self.and_or(dot, spec.name == "and", arg_nodes, final)
        values = [self.typed_arg(dot, a, spec.kind(i) if spec else "any") for i, a in enumerate(arg_nodes)]
        if final is not _NOFINAL:
            values.append(self.check_value(final, spec.kind(len(arg_nodes)) if spec else "any"))
        if spec is not None and spec.name == "call":
            if not callable(values[0]):
                self.fail(f"error calling call: non-function {arg_nodes[0]} of type {_go_type(values[0])}", node)
            fn, values = values[0], [None if v is NO_VALUE else v for v in values[1:]]
        try:
            return (spec.fn if spec is not None and spec.fn else fn)(*values)
        except TemplateError:
            raise
        except Exception as e:
            self.fail(f"error calling {name}: {e}", node)

    def check_arity(self, spec: _Builtin, given: int, piped: bool) -> None:
        fixed = len(spec.params)
        if spec.variadic and given + piped < fixed:
            self.fail(f"wrong number of args for {spec.name}: want at least {fixed} got {given}")
        if not spec.variadic and given + piped != fixed:
            self.fail(f"wrong number of args for {spec.name}: want {fixed} got {given + piped}")

    def and_or(self, dot: Any, is_and: bool, arg_nodes: list[_Node], final: Any) -> Any:
        val = NO_VALUE
        for node in arg_nodes:
            val = self.arg(dot, node)
            if _is_true(val) != is_and:
                return val
        return val if final is _NOFINAL else final

    def typed_arg(self, dot: Any, node: _Node, kind: str) -> Any:
        self.node = node
        if kind in _GO_PARAM and isinstance(node, _Literal) and node.kind != "dot":
            # constants are checked against the parameter type, as Go's evalArg does
            if kind == "string" and node.kind == "string":
                return node.value
            if kind == "int" and node.kind == "number" and node.ival is not None:
                return node.ival
            if node.kind == "nil":
                self.fail(f"cannot assign nil to {_GO_PARAM[kind]}")
            if kind == "strings":
                self.fail(f"can't handle {node} for arg of type []string")
            self.fail(f"expected {'integer' if kind == 'int' else 'string'}; found {node}")
        return self.check_value(self.arg(dot, node), kind)

    def check_value(self, val: Any, kind: str) -> Any:
        if kind == "value":
            return val
        if kind == "any":
            return None if val is NO_VALUE else val
        if kind == "strings" and val is None:  # a nil slice
            return []
        if val is NO_VALUE:
            self.fail(f"invalid value; expected {_GO_PARAM[kind]}")
        if kind == "string":
            ok = isinstance(val, str)
        elif kind == "int":
            ok = isinstance(val, int) and not isinstance(val, bool)
        else:
            ok = isinstance(val, (list, tuple)) and all(isinstance(v, str) for v in val)
        if not ok:
            got = "interface {}" if val is None else _go_type(val)
            self.fail(f"wrong type for value; expected {_GO_PARAM[kind]}; got {got}")
        return val


def _print_value(val: Any) -> str:
    return "<no value>" if val is NO_VALUE else _fmt(val, "v", _Spec())


def _is_true(val: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, slices and maps are false; structs are true."""
    if val is None or val is NO_VALUE:
        return False
    if isinstance(val, (bool, int, float, str, bytes, list, tuple, dict)):
        return bool(val)
    return True


def _sorted_items(d: dict[Any, Any]) -> list[tuple[Any, Any]]:
    try:
        return sorted(d.items(), key=lambda kv: kv[0])
    except TypeError:
        return sorted(d.items(), key=lambda kv: (type(kv[0]).__name__, str(kv[0])))


# ---------------------------------------------------------------------------------------------
# Public API.


class Template:
    """A parsed Go template.

    ``text`` is the template source; ``funcs`` maps extra function names to Python callables
    (they take precedence over the builtins and get NO_VALUE as None; an exception they raise
    becomes ``error calling NAME: ...``); ``name`` appears in messages (docker's CLI uses "").
    Raises TemplateError with Go's message (``template: :LINE: ...``) when the text does not parse.
    """

    __slots__ = ("text", "name", "_funcs", "_tree")

    def __init__(self, text: str, funcs: dict[str, Callable[..., Any]] | None = None, *, name: str = "") -> None:
        self.text, self.name = text, name
        self._funcs: dict[str, Any] = dict(_BUILTINS)
        self._funcs.update(funcs or {})
        try:
            self._tree = _Parser(text, self._funcs).parse()
        except _SyntaxErr as e:
            line = text.count("\n", 0, e.pos) + 1
            raise TemplateError(f"template: {name}:{line}: {e.msg}") from None

    def execute(self, data: Any) -> str:
        """Render with ``data`` as dot and ``$``. Raises TemplateError with Go's message
        (``template: :LINE:COL: executing "" at <NODE>: ...``) when execution fails."""
        ex = _Exec(self, data)
        try:
            ex.walk(self._tree, data)
        except RecursionError:  # data that contains itself
            raise TemplateError(f"template: {self.name}: data nested too deeply to print") from None
        return "".join(ex.out)

    def _exec_message(self, msg: str, node: _Node | None) -> str:
        if node is None:
            return f"template: {self.name}: {msg}"
        pos, text = node.pos, self.text
        line = text.count("\n", 0, pos) + 1
        col = len(text[text.rfind("\n", 0, pos) + 1:pos].encode())
        return f'template: {self.name}:{line}:{col}: executing "{self.name}" at <{node}>: {msg}'


def render(text: str, data: Any, funcs: dict[str, Callable[..., Any]] | None = None) -> str:
    """Parse ``text`` and execute it on ``data`` (see Template); raises TemplateError."""
    return Template(text, funcs).execute(data)



# ---------------------------------------------------------------------------------------------
# Printing as Go's fmt does: %v and the printf verbs.

_INF = float("inf")
_FLAGS = {"#": "sharp", "0": "zero", "+": "plus", "-": "minus", " ": "space"}
_GO_TYPES: tuple[tuple[Any, str], ...] = (
    (bool, "bool"), (int, "int"), (float, "float64"), (str, "string"), ((bytes, bytearray), "[]uint8"),
    ((list, tuple), "[]interface {}"), (dict, "map[string]interface {}"),
)


class _Spec:
    """printf flags, width and precision; plus_v and sharp_v mean %+v and %#v."""

    __slots__ = ("minus", "plus", "sharp", "space", "zero", "plus_v", "sharp_v", "width", "prec")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = self.plus_v = self.sharp_v = False
        self.width: int | None = None
        self.prec: int | None = None


def _go_type(v: Any) -> str:
    """Go's name for the type a Python value stands for, as %T prints it."""
    if v is None or v is NO_VALUE:
        return "<nil>"
    for cls, name in _GO_TYPES:
        if isinstance(v, cls):
            return name
    return type(v).__name__


def _pad(s: str, spec: _Spec, zero: bool = True) -> str:
    width = spec.width
    if width is None or len(s) >= width:
        return s
    if spec.minus:
        return s + " " * (width - len(s))
    return ("0" if zero and spec.zero else " ") * (width - len(s)) + s


def _fmt(v: Any, verb: str, spec: _Spec, depth: int = 0) -> str:
    """One operand formatted with a verb as fmt does; containers format each element alike."""
    if verb == "T":
        return _pad(_go_type(v) if v is None or v is NO_VALUE else _go_type(v)[:spec.prec], spec)
    if v is None or v is NO_VALUE:
        if depth and spec.sharp_v:
            return "interface {}(nil)"
        return _pad("<nil>", spec) if verb == "v" or depth else f"%!{verb}(<nil>)"
    if isinstance(v, bool):
        return _pad("true" if v else "false", spec) if verb in "tv" else _bad_verb(v, verb, spec)
    if isinstance(v, int):
        return _fmt_int(v, verb, spec)
    if isinstance(v, float):
        return _fmt_float(v, verb, spec)
    if isinstance(v, str):
        return _fmt_str(v, verb, spec)
    if isinstance(v, (bytes, bytearray)):
        if verb in "sqxX":
            return _fmt_str(v.decode("utf-8", "replace"), verb, spec)
        v = list(v)
    if isinstance(v, (list, tuple)):
        items = [_fmt(e, verb, spec, depth + 1) for e in v]
        return "[]interface {}{" + ", ".join(items) + "}" if spec.sharp_v else "[" + " ".join(items) + "]"
    if isinstance(v, dict):
        items = [_fmt(k, verb, spec, depth + 1) + ":" + _fmt(e, verb, spec, depth + 1) for k, e in _sorted_items(v)]
        return "map[string]interface {}{" + ", ".join(items) + "}" if spec.sharp_v else "map[" + " ".join(items) + "]"
    fields = getattr(type(v), "__dataclass_fields__", None)
    if fields is not None:
        items = [(f"{f}:" if spec.plus_v else "") + _fmt(getattr(v, f), verb, spec, depth + 1) for f in fields]
        return "{" + " ".join(items) + "}"
    return _fmt_str(str(v), verb, spec)


def _bad_verb(v: Any, verb: str, spec: _Spec) -> str:
    return f"%!{verb}({_go_type(v)}={_fmt(v, 'v', spec)})"


def _rune(n: int) -> str:
    return chr(n) if 0 <= n <= 0x10FFFF and not 0xD800 <= n < 0xE000 else "\ufffd"


def _fmt_int(n: int, verb: str, spec: _Spec) -> str:
    if verb == "c":
        return _pad(_rune(n), spec)
    if verb == "q":
        return _pad(_go_quote(_rune(n), spec.plus, "'"), spec)
    if verb == "U":  # Go formats the rune as a uint64, with at least 4 (or precision) digits
        text = f"U+{n & 0xFFFFFFFFFFFFFFFF:0{max(spec.prec or 4, 4)}X}"
        printable = 0 <= n <= 0x10FFFF and chr(n).isprintable()
        return _pad(text + f" '{chr(n)}'" if spec.sharp and printable else text, spec, zero=False)
    base = {"v": "d", "d": "d", "b": "b", "o": "o", "O": "o", "x": "x", "X": "X"}.get(verb)
    if base is None:
        return _bad_verb(n, verb, spec)
    digits = format(abs(n), base)
    sign = "-" if n < 0 else "+" if spec.plus else " " if spec.space else ""
    if spec.prec == 0 and n == 0:  # a precision is the minimum number of digits: 0 prints nothing
        return _pad("", spec, zero=False)
    if spec.prec is not None:
        digits = digits.rjust(spec.prec, "0")
    elif spec.zero and not spec.minus and spec.width:
        digits = digits.rjust(spec.width - len(sign), "0")
    prefix = {"b": "0b", "o": "0", "x": "0x", "X": "0X"}.get(verb, "") if spec.sharp else ""
    if verb == "O":
        prefix = "0o"
    elif verb == "o" and digits.startswith("0"):
        prefix = ""
    return _pad(sign + prefix + digits, spec, zero=False)


def _fmt_float(f: float, verb: str, spec: _Spec) -> str:
    if verb not in "vbgGeEfFxX":
        return _bad_verb(f, verb, spec)
    neg = f < 0 or (f == 0 and str(f)[0] == "-")
    a = -f if neg else f
    if a != a or a == _INF:
        body = "NaN" if a != a else "Inf"
        sign = "-" if neg else "+" if spec.plus or (body == "Inf" and not spec.space) else " " if spec.space else ""
        return _pad(sign + body, spec, zero=False)
    if verb in "bxX":
        body = _binary_float(a, verb, spec.prec)
    elif verb in "vgG":
        body = _shortest(a) if spec.prec is None else format(a, f".{spec.prec}g")
    else:
        body = format(a, f".{6 if spec.prec is None else spec.prec}{'e' if verb in 'eE' else 'f'}")
    if spec.sharp and verb != "b":
        body = _sharp(body, 0 if verb in "eEfFX" else 6 if spec.prec is None else spec.prec, verb in "xX")
    body = body.upper() if verb in "GEX" else body
    sign = "-" if neg else "+" if spec.plus else " " if spec.space else ""
    if spec.zero and not spec.minus and spec.width:
        body = body.rjust(spec.width - len(sign), "0")
    return _pad(sign + body, spec, zero=False)


def _digits(a: float) -> tuple[str, int]:
    """Shortest digits that read back as a (> 0) and the decimal point's place: 0.0015 -> ("15", -2)."""
    mant, _, exp = repr(a).partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + int(exp or 0) - (len(whole + frac) - len(digits))
    return digits.rstrip("0") or "0", point


def _e_form(digits: str, exp: int) -> str:
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _f_form(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _shortest(a: float) -> str:
    """%v of a float64 >= 0 (strconv 'g', precision -1): %e form when the exponent is < -4 or >= 6."""
    if a == 0:
        return "0"
    digits, point = _digits(a)
    return _e_form(digits, point - 1) if not -4 <= point - 1 < 6 else _f_form(digits, point)


def _sharp(body: str, digits: int, hexa: bool) -> str:
    """The # flag on a float: always a decimal point, zeros up to ``digits`` significant digits
    (counted as Go's fmt counts them, from the first character that is not 0)."""
    cut = next((i for i, c in enumerate(body) if c in ("pP" if hexa else "eE")), len(body))
    mant, tail = body[:cut], body[cut:]
    digits -= len(mant.replace(".", "").lstrip("0"))
    if "." not in mant:
        digits -= mant == "0"
        mant += "."
    return mant + "0" * max(digits, 0) + tail


def _binary_float(a: float, verb: str, prec: int | None) -> str:
    """%b (``4503599627370496p-52``) or %x (``0x1.8p+00``, rounded to prec hex digits) of a >= 0."""
    lead, _, rest = a.hex()[2:].partition(".")
    frac, _, exp_text = rest.partition("p")
    mant, exp = int(lead + frac, 16), int(exp_text) - 52  # a == mant * 2**exp
    if verb == "b":
        return f"{mant}p{'+' if exp >= 0 else '-'}{abs(exp)}" if a else "0p-1074"
    if not a:
        return "0x0" + ("." + "0" * prec if prec else "") + "p+00"
    while mant < 1 << 52:  # subnormal: normalise to 1.xxx as Go does
        mant, exp = mant << 1, exp - 1
    if prec is not None and prec < 13:
        drop = 52 - 4 * prec
        rest_bits, mant = mant & ((1 << drop) - 1), mant >> drop
        if rest_bits > 1 << (drop - 1) or (rest_bits == 1 << (drop - 1) and mant & 1):
            mant += 1
        if mant >> (4 * prec + 1):
            mant, exp = mant >> 1, exp + 1
        mant <<= drop
    digits = format(mant & ((1 << 52) - 1), "013x")
    digits = digits.rstrip("0") if prec is None else (digits + "0" * prec)[:prec]
    exp += 52
    return f"0x1{'.' + digits if digits else ''}p{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _fmt_str(s: str, verb: str, spec: _Spec) -> str:
    if spec.prec is not None and verb not in "xX":  # precision counts runes, but bytes for %x
        s = s[:spec.prec]
    if verb in "sv":
        return _pad(_go_quote(s) if spec.sharp_v else s, spec)
    if verb == "q":
        if spec.sharp and "`" not in s and all(c == "\t" or c.isprintable() for c in s):
            return _pad("`" + s + "`", spec)
        return _pad(_go_quote(s, spec.plus), spec)
    if verb in "xX":
        data = s.encode("utf-8", "replace")[:spec.prec]
        hexes = [format(b, "02x" if verb == "x" else "02X") for b in data]
        prefix = ("0x" if verb == "x" else "0X") if spec.sharp else ""
        text = " ".join(prefix + h for h in hexes) if spec.space else prefix + "".join(hexes) if hexes else ""
        return _pad(text, spec)
    return _bad_verb(s, verb, spec)


_QUOTE_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quote(s: str, ascii_only: bool = False, quote: str = '"') -> str:
    """Go's strconv.Quote (QuoteToASCII when ascii_only; QuoteRune's quoting when quote is ')."""
    if s.isascii() and s.isprintable() and quote not in s and "\\" not in s:
        return quote + s + quote
    out = [quote]
    for c in s:
        o = ord(c)
        if c == quote or c == "\\":
            out.append("\\" + c)
        elif c.isprintable() and (o < 0x80 or not ascii_only):
            out.append(c)
        elif c in _QUOTE_ESC:
            out.append(_QUOTE_ESC[c])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        else:
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return "".join(out) + quote


def _sprint(*args: Any) -> str:
    """Go's fmt.Sprint: %v of each operand, a space between operands when neither is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_fmt(arg, "v", _Spec()))
    return "".join(out)


def _sprintln(*args: Any) -> str:
    return " ".join(_fmt(arg, "v", _Spec()) for arg in args) + "\n"


def _sprintf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf, with its error strings (%!d(string=x), %!d(MISSING), %!(EXTRA ...))."""
    return _Printf(args).run(fmt)


class _Printf:
    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args, self.argn, self.reordered, self.good = args, 0, False, True

    def run(self, f: str) -> str:
        out: list[str] = []
        i, n = 0, len(f)
        while (j := f.find("%", i)) >= 0:
            out.append(f[i:j])
            spec, i, self.good = _Spec(), j + 1, True
            while i < n and f[i] in _FLAGS:
                setattr(spec, _FLAGS[f[i]], True)
                i += 1
            i = self.arg_index(f, i)
            i, spec.width = self.number(f, i, out, "BADWIDTH")
            if spec.width is not None and spec.width < 0:
                spec.width, spec.minus = -spec.width, True
            if f.startswith(".", i) and i + 1 < n:
                star = f.startswith("*", j := self.arg_index(f, i + 1))
                i, spec.prec = self.number(f, j, out, "BADPREC")
                if not star:
                    spec.prec = spec.prec or 0
                elif spec.prec is not None and spec.prec < 0:
                    out.append("%!(BADPREC)")
                    spec.prec = None
            i = self.arg_index(f, i)
            if i >= n:
                out.append("%!(NOVERB)")
                break
            out.append(self.verb(f[i], spec))
            i += 1
        out.append(f[i:])
        if not self.reordered and self.argn < len(self.args):
            extra = ["<nil>" if a is None else f"{_go_type(a)}={_fmt(a, 'v', _Spec())}" for a in self.args[self.argn:]]
            out.append("%!(EXTRA " + ", ".join(extra) + ")")
        return "".join(out)

    def arg_index(self, f: str, i: int) -> int:
        """Consume an explicit argument index ``[n]`` at f[i], if there is one."""
        if not f.startswith("[", i):
            return i
        self.reordered = True
        end = f.find("]", i)
        text = f[i + 1:end] if end > 0 else ""
        if text.isdigit() and 0 < int(text) <= len(self.args):
            self.argn = int(text) - 1
        else:
            self.good = False
        return end + 1 if end > 0 else i + 1

    def number(self, f: str, i: int, out: list[str], bad: str) -> tuple[int, int | None]:
        """A width or precision at f[i]: digits, or * taking an int argument."""
        if f.startswith("*", i):
            arg = self.args[self.argn] if self.argn < len(self.args) else None
            self.argn += 1
            if isinstance(arg, int) and not isinstance(arg, bool):
                return i + 1, arg
            out.append(f"%!({bad})")
            return i + 1, None
        j = _skip(f, i, "0123456789")
        return j, int(f[i:j]) if j > i else None

    def verb(self, verb: str, spec: _Spec) -> str:
        if verb == "%":
            return "%"
        if not self.good:
            return f"%!{verb}(BADINDEX)"
        if self.argn >= len(self.args):
            return f"%!{verb}(MISSING)"
        if verb == "v":
            spec.sharp_v, spec.sharp, spec.plus_v, spec.plus = spec.sharp, False, spec.plus, False
        self.argn += 1
        return _fmt(self.args[self.argn - 1], verb, spec)


# ---------------------------------------------------------------------------------------------
# Go's json.Marshal, as docker's json function calls it (SetEscapeHTML(false): <, >, & kept).

_JSON_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
             "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _to_json(v: Any, out: list[str]) -> None:
    """Append v's compact JSON; dicts keep their order. ValueError for NaN and infinities."""
    if v is None or v is NO_VALUE:
        out.append("null")
    elif isinstance(v, bool):
        out.append("true" if v else "false")
    elif isinstance(v, (int, float)):
        out.append(str(v) if isinstance(v, int) else _json_float(v))
    elif isinstance(v, str):
        out.append(_json_str(v))
    elif isinstance(v, (bytes, bytearray)):
        import base64

        out.append('"' + base64.b64encode(v).decode() + '"')
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, e in enumerate(v):
            out.append("," if i else "")
            _to_json(e, out)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        for i, (k, e) in enumerate(v.items()):
            out.append(("," if i else "") + _json_str(str(k)) + ":")
            _to_json(e, out)
        out.append("}")
    elif (fields := getattr(type(v), "__dataclass_fields__", None)) is not None:
        _to_json({f: getattr(v, f) for f in fields}, out)
    elif hasattr(v, "__dict__"):
        _to_json({k: e for k, e in vars(v).items() if not k.startswith("_")}, out)
    else:
        out.append(_json_str(str(v)))


def _json_str(s: str) -> str:
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    out = ['"']
    for c in s:
        if c in _JSON_ESC:
            out.append(_JSON_ESC[c])
        elif c < " ":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append("\ufffd" if "\ud800" <= c <= "\udfff" else c)
    return "".join(out) + '"'


def _json_float(f: float) -> str:
    """encoding/json's float64: %f form, or %e form (e-7, not e-07) below 1e-6 and from 1e21."""
    if f != f or f in (_INF, -_INF):
        raise ValueError(f"json: unsupported value: {_fmt(f, 'v', _Spec())}")
    if f == 0:
        return "-0" if str(f)[0] == "-" else "0"
    digits, point = _digits(abs(f))
    sign = "-" if f < 0 else ""
    if not 1e-6 <= abs(f) < 1e21:
        mant, _, exp = _e_form(digits, point - 1).partition("e")
        return f"{sign}{mant}e{exp[0]}{exp[1:].lstrip('0') if exp[0] == '-' else exp[1:]}"
    return sign + _f_form(digits, point)


# ---------------------------------------------------------------------------------------------
# Functions: Go's builtins, then docker's (github.com/docker/cli cli/templates).


def _not(v: Any) -> bool:
    return not _is_true(v)


def _len(v: Any) -> int:
    if v is NO_VALUE:
        raise _CallError("reflect: call of reflect.Value.Type on zero Value")
    if v is None:
        return 0
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, (bytes, bytearray, list, tuple, dict)):
        return len(v)
    raise _CallError(f"len of type {_go_type(v)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _index(item: Any, *indexes: Any) -> Any:
    """index ITEM KEY...: map keys give NO_VALUE when absent; strings index their UTF-8 bytes."""
    for idx in indexes:
        if item is NO_VALUE:
            raise _CallError("index of untyped nil")
        if isinstance(item, dict) or (item is None and isinstance(idx, str)):
            if not isinstance(idx, str) and all(isinstance(k, str) for k in item or ()):
                raise _CallError(f"value has type {_go_type(idx)}; should be string")
            item = (item or {}).get(idx, NO_VALUE)
            continue
        if item is not None and not isinstance(item, (str, bytes, bytearray, list, tuple)):
            raise _CallError(f"can't index item of type {_go_type(item)}")
        seq = item.encode() if isinstance(item, str) else item or ()
        if not _is_int(idx):
            raise _CallError(f"cannot index slice/array with type {_go_type(idx)}")
        if not 0 <= idx < len(seq):
            raise _CallError(f"index out of range: {idx}")
        item = seq[idx]
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    """slice ITEM [LOW [HIGH [MAX]]]: item[low:high]; strings are sliced by UTF-8 bytes."""
    if item is None or item is NO_VALUE:
        raise _CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise _CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise _CallError("cannot 3-index slice a string")
        seq: Any = item.encode()
    elif isinstance(item, (bytes, bytearray, list, tuple)):
        seq = item
    else:
        raise _CallError(f"can't slice item of type {_go_type(item)}")
    for idx in indexes:
        if not _is_int(idx):
            raise _CallError(f"cannot index slice/array with type {_go_type(idx)}")
        if not 0 <= idx <= len(seq):
            raise _CallError(f"index out of range: {idx}")
    bounds = [indexes[0] if indexes else 0, indexes[1] if len(indexes) > 1 else len(seq), *indexes[2:]]
    for low, high in zip(bounds, bounds[1:], strict=False):
        if low > high:
            raise _CallError(f"invalid slice index: {low} > {high}")
    part = seq[bounds[0]:bounds[1]]
    return part.decode("utf-8", "replace") if isinstance(item, str) else part


def _kind(v: Any) -> str:
    """Go's basic kind for comparisons: "" for nil, "other" for what has none."""
    if v is None or v is NO_VALUE:
        return ""
    for cls, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "string")):
        if isinstance(v, cls):
            return name
    return "other"


def _eq(a: Any, *others: Any) -> bool:
    """eq A B...: A equals any of B; basic kinds only, ints and floats do not mix (Go's rules)."""
    if not others:
        raise _CallError("missing argument for comparison")
    ka = _kind(a)
    for b in others:
        kb = _kind(b)
        if ka != kb:
            if ka and kb:
                raise _CallError("incompatible types for comparison")
            continue
        for x in (a, b):
            if isinstance(x, (list, tuple, dict, bytearray)):
                raise _CallError(f"non-comparable type {_fmt(x, 's', _Spec())}: {_go_type(x)}")
        if not ka or a == b:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka in ("", "other") or kb in ("", "other"):
        raise _CallError("invalid type for comparison")
    if ka != kb:
        raise _CallError("incompatible types for comparison")
    if ka == "bool":
        raise _CallError("invalid type for comparison")
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _eval_args(args: tuple[Any, ...]) -> str:
    return args[0] if len(args) == 1 and isinstance(args[0], str) else _sprint(*args)


_HTML_ESC = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_JS_ESC = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def _html(*args: Any) -> str:
    return "".join(_HTML_ESC.get(c, c) for c in _eval_args(args))


def _js(*args: Any) -> str:
    return "".join(_JS_ESC.get(c) or (c if c.isprintable() else f"\\u{ord(c):04X}") for c in _eval_args(args))


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_eval_args(args), safe="")


def _json(v: Any) -> str:
    """docker's json: compact JSON, HTML characters unescaped; "" for what cannot be encoded."""
    out: list[str] = []
    try:
        _to_json(v, out)
    except ValueError:
        return ""
    return "".join(out)


def _per_rune(s: str, conv: Callable[[str], str]) -> str:
    """Map runes one to one as Go's unicode.ToUpper/ToLower/ToTitle do (no "ß" -> "SS")."""
    return "".join(t if len(t := conv(c)) == 1 else c for c in s)


def _upper(s: str) -> str:
    return s.upper() if s.isascii() else _per_rune(s, str.upper)


def _lower(s: str) -> str:
    return s.lower() if s.isascii() else _per_rune(s, str.lower)


def _title(s: str) -> str:
    """Go's strings.Title: title-case each letter that follows a separator (not letter, digit or _)."""
    out, prev = [], " "
    for c in s:
        if prev <= "\x7f" and not (prev.isalnum() or prev == "_") or prev > "\x7f" and prev.isspace():
            out.append(_per_rune(c, str.title))
        else:
            out.append(c)
        prev = c
    return "".join(out)


def _truncate(s: str, length: int) -> str:
    data = s.encode()
    if len(data) < length:
        return s
    if length < 0:
        raise _CallError(f"runtime error: slice bounds out of range [:{length}]")
    return data[:length].decode("utf-8", "replace")


def _pad_with_space(s: str, left: int, right: int) -> str:
    if not s:
        return s
    if left < 0 or right < 0:
        raise _CallError("strings: negative Repeat count")
    return " " * left + s + " " * right


_BUILTINS = {b.name: b for b in (
    _Builtin("and", None, "value", "value"),
    _Builtin("or", None, "value", "value"),
    _Builtin("not", _not, "value"),
    _Builtin("len", _len, "value"),
    _Builtin("index", _index, "value", "value"),
    _Builtin("slice", _slice, "value", "value"),
    _Builtin("eq", _eq, "value", "value"),
    _Builtin("ne", lambda a, b: not _eq(a, b), "value value"),
    _Builtin("lt", _lt, "value value"),
    _Builtin("le", _le, "value value"),
    _Builtin("gt", lambda a, b: not _le(a, b), "value value"),
    _Builtin("ge", lambda a, b: not _lt(a, b), "value value"),
    _Builtin("print", _sprint, "", "any"),
    _Builtin("printf", _sprintf, "string", "any"),
    _Builtin("println", _sprintln, "", "any"),
    _Builtin("html", _html, "", "any"),
    _Builtin("js", _js, "", "any"),
    _Builtin("urlquery", _urlquery, "", "any"),
    _Builtin("call", None, "value", "value"),
    _Builtin("json", _json, "any"),
    _Builtin("split", lambda s, sep: list(s) if sep == "" else s.split(sep), "string string"),
    _Builtin("join", lambda items, sep: sep.join(items), "strings string"),
    _Builtin("lower", _lower, "string"),
    _Builtin("upper", _upper, "string"),
    _Builtin("title", _title, "string"),
    _Builtin("truncate", _truncate, "string int"),
    _Builtin("pad", _pad_with_space, "string int int"),
)}
