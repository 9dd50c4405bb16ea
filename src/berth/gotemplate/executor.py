"""Executing a parse tree on data, with Go's error messages (``executing "" at <NODE>: ...``)."""

from __future__ import annotations

from berth.gotemplate import NO_VALUE, TemplateError, go_type, is_true, sorted_items
from berth.gotemplate.parser import (
    Action,
    Chain,
    Command,
    Control,
    Field,
    Identifier,
    Jump,
    Literal,
    Node,
    Pipe,
    Text,
    Variable,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import, and the CLI imports this package
    from typing import Any, NoReturn


#: No value piped in from a previous command.
NO_FINAL: Any = object()


class _LoopJump(Exception):
    def __init__(self, kind: str) -> None:
        self.kind = kind


class Executor:
    """One execution of a parsed template: ``text`` and ``name`` are the template's (for the
    positions in messages), ``funcs`` the caller's functions (ahead of funcs.BUILTINS); the
    output collects in ``out``."""

    def __init__(self, text: str, name: str, funcs: dict[str, Any], data: Any) -> None:
        self.text, self.name, self.funcs = text, name, funcs
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = [("$", data)]
        self.node: Node | None = None

    def fail(self, msg: str, node: Node | None = None) -> NoReturn:
        raise TemplateError(self.message(msg, node or self.node))

    def message(self, msg: str, node: Node | None) -> str:
        """Go's execution error: ``template: NAME:LINE:COL: executing "NAME" at <NODE>: MSG``."""
        if node is None:
            return f"template: {self.name}: {msg}"
        pos, text = node.pos, self.text
        line = text.count("\n", 0, pos) + 1
        col = len(text[text.rfind("\n", 0, pos) + 1:pos].encode())
        return f'template: {self.name}:{line}:{col}: executing "{self.name}" at <{node}>: {msg}'

    def walk(self, nodes: list[Node], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                val = self.pipeline(dot, node.pipe)
                if not node.pipe.decl:
                    self.out.append(_print_value(val))
            elif isinstance(node, Control):
                self.walk_control(node, dot)
            elif isinstance(node, Jump):
                raise _LoopJump(node.kind)

    def walk_control(self, node: Control, dot: Any) -> None:
        mark = len(self.vars)
        try:
            val = self.pipeline(dot, node.pipe)
            if node.kind == "range":
                self.walk_range(node, dot, val)
            elif is_true(val):
                self.walk(node.body, val if node.kind == "with" else dot)
            elif node.else_body is not None:
                self.walk(node.else_body, dot)
        finally:
            del self.vars[mark:]

    def walk_range(self, node: Control, dot: Any, val: Any) -> None:
        decl, assign = node.pipe.decl, node.pipe.is_assign
        if val is NO_VALUE or val is None:
            items: list[tuple[Any, Any]] = []
        elif isinstance(val, (list, tuple)):
            items = list(enumerate(val))
        elif isinstance(val, dict):
            items = sorted_items(val)
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

    def pipeline(self, dot: Any, pipe: Pipe) -> Any:
        val = NO_FINAL
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

    def command(self, dot: Any, cmd: Command, final: Any) -> Any:
        first = self.node = cmd.args[0]
        if isinstance(first, Field):
            return self.field_chain(dot, dot, first, first.names, cmd.args, final)
        if isinstance(first, Chain):
            return self.chain(dot, first, cmd.args, final)
        if isinstance(first, Identifier):
            return self.call_function(dot, first, cmd, final)
        if isinstance(first, Variable) and first.fields:
            return self.field_chain(dot, self.var_value(first.name), first, first.fields, cmd.args, final)
        if len(cmd.args) > 1 or final is not NO_FINAL:
            self.fail(f"can't give argument to non-function {first}")
        if isinstance(first, Literal) and first.kind == "nil":
            self.fail("nil is not a command")
        return self.arg(dot, first)

    def arg(self, dot: Any, node: Node) -> Any:
        """The value of an argument, as Go evaluates one for an interface{} parameter."""
        self.node = node
        if isinstance(node, Literal):
            return dot if node.kind == "dot" else node.value
        if isinstance(node, Field):
            return self.field_chain(dot, dot, node, node.names, None, NO_FINAL)
        if isinstance(node, Variable):
            val = self.var_value(node.name)
            return self.field_chain(dot, val, node, node.fields, None, NO_FINAL) if node.fields else val
        if isinstance(node, Pipe):
            return self.pipeline(dot, node)
        if isinstance(node, Identifier):
            return self.call_function(dot, node, Command(node.pos, [node]), NO_FINAL)
        assert isinstance(node, Chain)
        return self.chain(dot, node, None, NO_FINAL)

    def chain(self, dot: Any, node: Chain, args: list[Node] | None, final: Any) -> Any:
        if isinstance(node.node, Literal) and node.node.kind == "nil":
            self.fail(f"indirection through explicit nil in {node}", node)
        return self.field_chain(dot, self.arg(dot, node.node), node, node.fields, args, final)

    def field_chain(self, dot: Any, recv: Any, node: Node, names: list[str], args: list[Node] | None,
                    final: Any) -> Any:
        # errors name the current node, which for a chain is the last thing evaluated (as in Go)
        for name in names[:-1]:
            recv = self.field(dot, name, node, None, NO_FINAL, recv)
        return self.field(dot, names[-1], node, args, final, recv)

    def field(self, dot: Any, name: str, node: Node, args: list[Node] | None, final: Any, recv: Any) -> Any:
        if recv is NO_VALUE:
            return NO_VALUE
        if recv is None:
            self.fail(f"nil pointer evaluating interface {{}}.{name}")
        has_args = (args is not None and len(args) > 1) or final is not NO_FINAL
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
            self.fail(f"can't evaluate field {name} in type {go_type(recv)}")
        if callable(attr) and not isinstance(attr, type):
            from berth.gotemplate.funcs import call

            return call(self, dot, attr, name, node, args or [node], final)
        if has_args:
            self.fail(f"{name} is not a method but has arguments")
        return attr

    def call_function(self, dot: Any, ident: Identifier, cmd: Command, final: Any) -> Any:
        self.node = ident
        from berth.gotemplate.funcs import BUILTINS, call  # loaded by the first template that calls one

        fn = self.funcs.get(ident.name)
        if fn is not None:
            return call(self, dot, fn, ident.name, cmd, cmd.args, final)
        spec = BUILTINS[ident.name]
        return call(self, dot, spec.fn, ident.name, cmd, cmd.args, final, spec)


def _print_value(val: Any) -> str:
    """%v of val; strings, ints and bools (most of what docker's tables print) without loading fmt."""
    if val is NO_VALUE:
        return "<no value>"
    kind = type(val)
    if kind is str:
        return val  # type: ignore[no-any-return]
    if kind is int:
        return str(val)
    if kind is bool:
        return "true" if val else "false"
    from berth.gotemplate.fmt import Spec, format_value

    return format_value(val, "v", Spec())
