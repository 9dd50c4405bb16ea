"""Calls: how a template calls a function or method (arity, typed arguments, as Go's evalCall),
and the functions: Go's builtins, then docker's (github.com/docker/cli cli/templates)."""

from __future__ import annotations

from berth.gotemplate import NO_VALUE, TemplateError, go_type, is_true
from berth.gotemplate.executor import NO_FINAL
from berth.gotemplate.parser import Literal

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import, and the CLI imports this package
    from collections.abc import Callable
    from typing import Any

    from berth.gotemplate.executor import Executor
    from berth.gotemplate.parser import Node


class CallError(Exception):
    """A builtin function's error; reported as Go's ``error calling NAME: ...``."""


class Builtin:
    """A builtin function: params are kinds ("value" raw, "any" with NO_VALUE as None, "string",
    "int", "strings"); variadic is the kind of the repeated last parameter, if any."""

    __slots__ = ("name", "fn", "params", "variadic")

    def __init__(self, name: str, fn: Callable[..., Any] | None, params: str, variadic: str = "") -> None:
        self.name, self.fn, self.params, self.variadic = name, fn, params.split(), variadic

    def kind(self, i: int) -> str:
        return self.params[i] if i < len(self.params) else self.variadic


_GO_PARAM = {"string": "string", "int": "int", "strings": "[]string"}


def call(ex: Executor, dot: Any, fn: Any, name: str, node: Node, args: list[Node], final: Any,
         spec: Builtin | None = None) -> Any:
    """Call fn with the arguments args[1:] (+ final); node is where errors are reported.
    A builtin's spec types its arguments (and gives and, or, call their own evaluation)."""
    arg_nodes = args[1:]
    if spec is not None:
        _check_arity(ex, spec, len(arg_nodes), final is not NO_FINAL)
        if spec.name in ("and", "or"):
            return _and_or(ex, dot, spec.name == "and", arg_nodes, final)
    values = [_typed_arg(ex, dot, a, spec.kind(i) if spec else "any") for i, a in enumerate(arg_nodes)]
    if final is not NO_FINAL:
        values.append(_check_value(ex, final, spec.kind(len(arg_nodes)) if spec else "any"))
    if spec is not None and spec.name == "call":
        if not callable(values[0]):
            ex.fail(f"error calling call: non-function {arg_nodes[0]} of type {go_type(values[0])}", node)
        fn, values = values[0], [None if v is NO_VALUE else v for v in values[1:]]
    try:
        return fn(*values)
    except TemplateError:
        raise
    except Exception as e:
        ex.fail(f"error calling {name}: {e}", node)


def _check_arity(ex: Executor, spec: Builtin, given: int, piped: bool) -> None:
    fixed = len(spec.params)
    if spec.variadic and given + piped < fixed:
        ex.fail(f"wrong number of args for {spec.name}: want at least {fixed} got {given}")
    if not spec.variadic and given + piped != fixed:
        ex.fail(f"wrong number of args for {spec.name}: want {fixed} got {given + piped}")


def _and_or(ex: Executor, dot: Any, is_and: bool, arg_nodes: list[Node], final: Any) -> Any:
    val = NO_VALUE
    for node in arg_nodes:
        val = ex.arg(dot, node)
        if is_true(val) != is_and:
            return val
    return val if final is NO_FINAL else final


def _typed_arg(ex: Executor, dot: Any, node: Node, kind: str) -> Any:
    ex.node = node
    if kind in _GO_PARAM and isinstance(node, Literal) and node.kind != "dot":
        # constants are checked against the parameter type, as Go's evalArg does
        if kind == "string" and node.kind == "string":
            return node.value
        if kind == "int" and node.kind == "number" and node.ival is not None:
            return node.ival
        if node.kind == "nil":
            ex.fail(f"cannot assign nil to {_GO_PARAM[kind]}")
        if kind == "strings":
            ex.fail(f"can't handle {node} for arg of type []string")
        ex.fail(f"expected {'integer' if kind == 'int' else 'string'}; found {node}")
    return _check_value(ex, ex.arg(dot, node), kind)


def _check_value(ex: Executor, val: Any, kind: str) -> Any:
    if kind == "value":
        return val
    if kind == "any":
        return None if val is NO_VALUE else val
    if kind == "strings" and val is None:  # a nil slice
        return []
    if val is NO_VALUE:
        ex.fail(f"invalid value; expected {_GO_PARAM[kind]}")
    if kind == "string":
        ok = isinstance(val, str)
    elif kind == "int":
        ok = isinstance(val, int) and not isinstance(val, bool)
    else:
        ok = isinstance(val, (list, tuple)) and all(isinstance(v, str) for v in val)
    if not ok:
        got = "interface {}" if val is None else go_type(val)
        ex.fail(f"wrong type for value; expected {_GO_PARAM[kind]}; got {got}")
    return val


def _not(v: Any) -> bool:
    return not is_true(v)


def _len(v: Any) -> int:
    if v is NO_VALUE:
        raise CallError("reflect: call of reflect.Value.Type on zero Value")
    if v is None:
        return 0
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, (bytes, bytearray, list, tuple, dict)):
        return len(v)
    raise CallError(f"len of type {go_type(v)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _index(item: Any, *indexes: Any) -> Any:
    """index ITEM KEY...: map keys give NO_VALUE when absent; strings index their UTF-8 bytes."""
    for idx in indexes:
        if item is NO_VALUE:
            raise CallError("index of untyped nil")
        if isinstance(item, dict) or (item is None and isinstance(idx, str)):
            if not isinstance(idx, str) and all(isinstance(k, str) for k in item or ()):
                raise CallError(f"value has type {go_type(idx)}; should be string")
            item = (item or {}).get(idx, NO_VALUE)
            continue
        if item is not None and not isinstance(item, (str, bytes, bytearray, list, tuple)):
            raise CallError(f"can't index item of type {go_type(item)}")
        seq = item.encode() if isinstance(item, str) else item or ()
        if not _is_int(idx):
            raise CallError(f"cannot index slice/array with type {go_type(idx)}")
        if not 0 <= idx < len(seq):
            raise CallError(f"index out of range: {idx}")
        item = seq[idx]
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    """slice ITEM [LOW [HIGH [MAX]]]: item[low:high]; strings are sliced by UTF-8 bytes."""
    if item is None or item is NO_VALUE:
        raise CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise CallError("cannot 3-index slice a string")
        seq: Any = item.encode()
    elif isinstance(item, (bytes, bytearray, list, tuple)):
        seq = item
    else:
        raise CallError(f"can't slice item of type {go_type(item)}")
    for idx in indexes:
        if not _is_int(idx):
            raise CallError(f"cannot index slice/array with type {go_type(idx)}")
        if not 0 <= idx <= len(seq):
            raise CallError(f"index out of range: {idx}")
    bounds = [indexes[0] if indexes else 0, indexes[1] if len(indexes) > 1 else len(seq), *indexes[2:]]
    for low, high in zip(bounds, bounds[1:], strict=False):
        if low > high:
            raise CallError(f"invalid slice index: {low} > {high}")
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
        raise CallError("missing argument for comparison")
    ka = _kind(a)
    for b in others:
        kb = _kind(b)
        if ka != kb:
            if ka and kb:
                raise CallError("incompatible types for comparison")
            continue
        for x in (a, b):
            if isinstance(x, (list, tuple, dict, bytearray)):
                from berth.gotemplate.fmt import Spec, format_value

                raise CallError(f"non-comparable type {format_value(x, 's', Spec())}: {go_type(x)}")
        if not ka or a == b:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka in ("", "other") or kb in ("", "other"):
        raise CallError("invalid type for comparison")
    if ka != kb:
        raise CallError("incompatible types for comparison")
    if ka == "bool":
        raise CallError("invalid type for comparison")
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


# fmt loads with the first template that prints through it, not with every template that calls a function
def _print(*args: Any) -> str:
    from berth.gotemplate.fmt import sprint

    return sprint(*args)


def _printf(fmt: str, *args: Any) -> str:
    from berth.gotemplate.fmt import sprintf

    return sprintf(fmt, *args)


def _println(*args: Any) -> str:
    from berth.gotemplate.fmt import sprintln

    return sprintln(*args)


def _eval_args(args: tuple[Any, ...]) -> str:
    return args[0] if len(args) == 1 and isinstance(args[0], str) else _print(*args)


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
    from berth.gotemplate.gojson import to_json  # only templates that call json pay for it

    out: list[str] = []
    try:
        to_json(v, out)
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
        raise CallError(f"runtime error: slice bounds out of range [:{length}]")
    return data[:length].decode("utf-8", "replace")


def _pad_with_space(s: str, left: int, right: int) -> str:
    if not s:
        return s
    if left < 0 or right < 0:
        raise CallError("strings: negative Repeat count")
    return " " * left + s + " " * right


BUILTINS = {b.name: b for b in (
    Builtin("and", None, "value", "value"),
    Builtin("or", None, "value", "value"),
    Builtin("not", _not, "value"),
    Builtin("len", _len, "value"),
    Builtin("index", _index, "value", "value"),
    Builtin("slice", _slice, "value", "value"),
    Builtin("eq", _eq, "value", "value"),
    Builtin("ne", lambda a, b: not _eq(a, b), "value value"),
    Builtin("lt", _lt, "value value"),
    Builtin("le", _le, "value value"),
    Builtin("gt", lambda a, b: not _le(a, b), "value value"),
    Builtin("ge", lambda a, b: not _lt(a, b), "value value"),
    Builtin("print", _print, "", "any"),
    Builtin("printf", _printf, "string", "any"),
    Builtin("println", _println, "", "any"),
    Builtin("html", _html, "", "any"),
    Builtin("js", _js, "", "any"),
    Builtin("urlquery", _urlquery, "", "any"),
    Builtin("call", None, "value", "value"),
    Builtin("json", _json, "any"),
    Builtin("split", lambda s, sep: list(s) if sep == "" else s.split(sep), "string string"),
    Builtin("join", lambda items, sep: sep.join(items), "strings string"),
    Builtin("lower", _lower, "string"),
    Builtin("upper", _upper, "string"),
    Builtin("title", _title, "string"),
    Builtin("truncate", _truncate, "string int"),
    Builtin("pad", _pad_with_space, "string int int"),
)}
