"""The parse tree (each node prints as Go's parse package prints it in error messages) and the
recursive-descent parser that builds it from tokens, with Go's error messages."""

from __future__ import annotations

from berth.gotemplate.lexer import ParseError, Token, lex, quoted

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import, and the CLI imports this package
    from collections.abc import Collection, Iterator
    from typing import Any, NoReturn


# ---------------------------------------------------------------------------------------------
# Parse tree.


class Node:
    __slots__ = ("pos",)
    pos: int


class Text(Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str) -> None:
        self.pos, self.text = pos, text


class Action(Node):
    __slots__ = ("pipe",)

    def __init__(self, pos: int, pipe: Pipe) -> None:
        self.pos, self.pipe = pos, pipe


class Control(Node):
    """if, with or range: body runs on a true value, else_body otherwise (None when absent)."""

    __slots__ = ("kind", "pipe", "body", "else_body")

    def __init__(self, pos: int, kind: str, pipe: Pipe, body: list[Node], else_body: list[Node] | None):
        self.pos, self.kind, self.pipe, self.body, self.else_body = pos, kind, pipe, body, else_body


class Jump(Node):
    """{{break}} or {{continue}}."""

    __slots__ = ("kind",)

    def __init__(self, pos: int, kind: str) -> None:
        self.pos, self.kind = pos, kind


class Pipe(Node):
    __slots__ = ("decl", "is_assign", "cmds")

    def __init__(self, pos: int, decl: list[str], is_assign: bool, cmds: list[Command]) -> None:
        self.pos, self.decl, self.is_assign, self.cmds = pos, decl, is_assign, cmds

    def __str__(self) -> str:
        head = ", ".join(self.decl) + (" = " if self.is_assign else " := ") if self.decl else ""
        return head + " | ".join(map(str, self.cmds))


class Command(Node):
    __slots__ = ("args",)

    def __init__(self, pos: int, args: list[Node]) -> None:
        self.pos, self.args = pos, args

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


class Field(Node):
    __slots__ = ("names",)

    def __init__(self, pos: int, names: list[str]) -> None:
        self.pos, self.names = pos, names

    def __str__(self) -> str:
        return "." + ".".join(self.names)


class Variable(Node):
    __slots__ = ("name", "fields")

    def __init__(self, pos: int, name: str, fields: list[str]) -> None:
        self.pos, self.name, self.fields = pos, name, fields

    def __str__(self) -> str:
        return self.name + "".join("." + f for f in self.fields)


class Chain(Node):
    """Fields of a parenthesised pipeline or other term: ``(index . 0).Name``."""

    __slots__ = ("node", "fields")

    def __init__(self, pos: int, node: Node, fields: list[str]) -> None:
        self.pos, self.node, self.fields = pos, node, fields

    def __str__(self) -> str:
        head = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return head + "".join("." + f for f in self.fields)


class Identifier(Node):
    __slots__ = ("name",)

    def __init__(self, pos: int, name: str) -> None:
        self.pos, self.name = pos, name

    def __str__(self) -> str:
        return self.name


class Literal(Node):
    """dot, nil, a bool, number or string constant: ``text`` as written, ``value`` as evaluated."""

    __slots__ = ("kind", "text", "value", "ival")

    def __init__(self, pos: int, kind: str, text: str, value: Any = None, ival: int | None = None):
        self.pos, self.kind, self.text, self.value, self.ival = pos, kind, text, value, ival

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------------------------
# Parser.


class _Marker:
    """{{end}} or {{else}} (``chain`` is "if" or "with" for ``{{else if ...}}``)."""

    def __init__(self, kind: str, chain: str = "") -> None:
        self.kind, self.chain = kind, chain

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"


#: The builtin functions' names: enough to parse. Their table (funcs.BUILTINS) loads only when a
#: template calls one, which most of docker's --format templates never do; a unit test keeps both in step.
BUILTIN_NAMES = frozenset((
    "and", "or", "not", "len", "index", "slice", "eq", "ne", "lt", "le", "gt", "ge", "print", "printf",
    "println", "html", "js", "urlquery", "call", "json", "split", "join", "lower", "upper", "title",
    "truncate", "pad",
))
_MAX_DEPTH = 100
_OPERAND_START = {"bool", "char", "dot", "field", "identifier", "number", "nil", "raw", "string", "variable", "("}


class Parser:
    """Recursive descent over the token stream, after the grammar in Go's text/template docs."""

    def __init__(self, text: str, funcs: Collection[str]) -> None:
        self.toks: Iterator[Token] = lex(text)
        self.back: list[Token] = []
        self.funcs = funcs
        self.vars = ["$"]
        self.range_depth = 0
        self.depth = 0
        self.last = 0

    def next(self) -> Token:
        if self.back:
            tok = self.back.pop()
        else:
            try:
                tok = next(self.toks)
            except ParseError as e:  # as in Go, a lex error is reported when the parser reaches it
                tok = Token("error", e.msg, e.pos)
                self.toks = iter(lambda: tok, None)
        self.last = tok.pos
        return tok

    def next_nonspace(self) -> Token:
        tok = self.next()
        while tok.kind == "space":
            tok = self.next()
        return tok

    def peek(self) -> Token:
        tok = self.next()
        self.back.append(tok)
        return tok

    def peek_nonspace(self) -> Token:
        tok = self.next_nonspace()
        self.back.append(tok)
        return tok

    def error(self, msg: str) -> NoReturn:
        raise ParseError(msg, self.last)

    def unexpected(self, tok: Token, context: str) -> NoReturn:
        if tok.kind == "error":
            raise ParseError(tok.val, tok.pos)
        self.error(f"unexpected {tok.describe()} in {context}")

    def parse(self) -> list[Node]:
        nodes, end = self.item_list()
        if end is not None:
            self.error(f"unexpected {end}")
        return nodes

    def item_list(self) -> tuple[list[Node], _Marker | None]:
        """Nodes up to EOF (marker None) or to an {{end}} or {{else}} (returned)."""
        nodes: list[Node] = []
        while True:
            tok = self.next()
            if tok.kind == "eof":
                self.back.append(tok)
                return nodes, None
            if tok.kind == "text":
                nodes.append(Text(tok.pos, tok.val))
                continue
            if tok.kind != "{{":
                self.unexpected(tok, "input")
            node = self.action()
            if isinstance(node, _Marker):
                return nodes, node
            nodes.append(node)

    def action(self) -> Node | _Marker:
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
            return Jump(tok.pos, word)
        if word:
            self.error(f"the {{{{{word}}}}} action is not supported")
        self.back.append(tok)
        return Action(tok.pos, self.pipeline("command", "}}"))

    def expect_close(self, context: str) -> None:
        tok = self.next_nonspace()
        if tok.kind != "}}":
            self.unexpected(tok, context)

    def nest(self) -> None:
        """Count one more level of nesting; Go caps it too, and Python's stack is smaller."""
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.error("max expression depth exceeded")

    def control(self, kind: str, pos: int) -> Control:
        self.nest()
        mark = len(self.vars)
        pipe = self.pipeline(kind, "}}")
        self.range_depth += kind == "range"
        body, end = self.item_list()
        self.range_depth -= kind == "range"
        else_body: list[Node] | None = None
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
        return Control(pos, kind, pipe, body, else_body)

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

    def pipeline(self, context: str, end: str) -> Pipe:
        self.nest()
        pos = self.peek_nonspace().pos
        decl, is_assign = self.declarations(context)
        cmds: list[Command] = []
        while (tok := self.next_nonspace()).kind != end:
            if tok.kind not in _OPERAND_START:
                self.unexpected(tok, context)
            self.back.append(tok)
            cmds.append(self.command())
        if not cmds:
            self.error(f"missing value for {context}")
        for stage, cmd in enumerate(cmds[1:], 2):
            if isinstance(cmd.args[0], Literal):
                self.error(f"non executable command in pipeline stage {stage}")
        self.depth -= 1
        return Pipe(pos, decl, is_assign, cmds)

    def command(self) -> Command:
        cmd = Command(self.peek_nonspace().pos, [])
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

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        pos, fields = self.peek().pos, []
        while self.peek().kind == "field":
            fields.append(self.next().val[1:])
        if isinstance(node, Field):
            return Field(pos, node.names + fields)
        if isinstance(node, Variable):
            return Variable(pos, node.name, node.fields + fields)
        if isinstance(node, Literal):
            self.error(f"unexpected . after term {quoted(str(node))}")
        return Chain(pos, node, fields)

    def term(self) -> Node | None:
        tok = self.next_nonspace()
        kind, val, pos = tok.kind, tok.val, tok.pos
        if kind == "identifier":
            if val not in self.funcs:
                self.error(f"function {quoted(val)} not defined")
            return Identifier(pos, val)
        if kind == "variable":
            if val not in self.vars:
                self.error(f"undefined variable {quoted(val)}")
            return Variable(pos, val, [])
        if kind == "field":
            return Field(pos, [val[1:]])
        if kind == "(":
            return self.pipeline("parenthesized pipeline", ")")
        try:
            if kind in ("number", "char", "string"):  # strconv loads with the first such literal
                from berth.gotemplate.strconv import parse_number, unquote
            if kind in ("number", "char"):
                return Literal(pos, "number", val, *parse_number(val))
            if kind in ("string", "raw"):
                text = val[1:-1].replace("\r", "") if kind == "raw" else unquote(val)
                return Literal(pos, "string", val, text)
        except ValueError as e:
            self.error(str(e))
        if kind in ("dot", "nil", "bool"):
            return Literal(pos, kind, val, val == "true" if kind == "bool" else None)
        self.back.append(tok)
        return None
