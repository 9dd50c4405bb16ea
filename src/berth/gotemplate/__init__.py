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

The package: this module holds the public API and the value model (NO_VALUE, truth, Go type
names); ``lexer`` (tokens), ``parser`` (parse tree and parser), ``executor`` (walking the tree),
``funcs`` (calls and the builtin functions), ``fmt`` (Go's printing and printf), ``gojson`` (the
json function) and ``strconv`` (Go's quoting and float digits). Importing the package loads only
this module; the others load on first use, so a docker table template (fields printed as strings)
costs the lexer, parser and executor and no more: the CLI's start-up path.
"""

from __future__ import annotations

from berth.errors import InvalidParameter

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import, and the CLI imports this package
    from collections.abc import Callable
    from typing import Any

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


_GO_TYPES: tuple[tuple[Any, str], ...] = (
    (bool, "bool"), (int, "int"), (float, "float64"), (str, "string"), ((bytes, bytearray), "[]uint8"),
    ((list, tuple), "[]interface {}"), (dict, "map[string]interface {}"),
)


def go_type(v: Any) -> str:
    """Go's name for the type a Python value stands for, as %T prints it."""
    if v is None or v is NO_VALUE:
        return "<nil>"
    for cls, name in _GO_TYPES:
        if isinstance(v, cls):
            return name
    return type(v).__name__


def is_true(val: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, slices and maps are false; structs are true."""
    if val is None or val is NO_VALUE:
        return False
    if isinstance(val, (bool, int, float, str, bytes, list, tuple, dict)):
        return bool(val)
    return True


def sorted_items(d: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """A map's items in the order Go prints and ranges over them: by key (keys that do not
    compare with each other by their type's name, then their text)."""
    try:
        return sorted(d.items(), key=lambda kv: kv[0])
    except TypeError:
        return sorted(d.items(), key=lambda kv: (type(kv[0]).__name__, str(kv[0])))


class Template:
    """A parsed Go template.

    ``text`` is the template source; ``funcs`` maps extra function names to Python callables
    (they take precedence over the builtins and get NO_VALUE as None; an exception they raise
    becomes ``error calling NAME: ...``); ``name`` appears in messages (docker's CLI uses "").
    Raises TemplateError with Go's message (``template: :LINE: ...``) when the text does not parse.
    """

    __slots__ = ("text", "name", "_funcs", "_tree")

    def __init__(self, text: str, funcs: dict[str, Callable[..., Any]] | None = None, *, name: str = "") -> None:
        # the engine's modules load on first use: importing this package stays cheap for the CLI
        from berth.gotemplate.lexer import ParseError
        from berth.gotemplate.parser import BUILTIN_NAMES, Parser

        self.text, self.name = text, name
        self._funcs: dict[str, Any] = dict(funcs or {})
        try:
            self._tree = Parser(text, BUILTIN_NAMES | self._funcs.keys()).parse()
        except ParseError as e:
            line = text.count("\n", 0, e.pos) + 1
            raise TemplateError(f"template: {name}:{line}: {e.msg}") from None

    def execute(self, data: Any) -> str:
        """Render with ``data`` as dot and ``$``. Raises TemplateError with Go's message
        (``template: :LINE:COL: executing "" at <NODE>: ...``) when execution fails."""
        from berth.gotemplate.executor import Executor

        ex = Executor(self.text, self.name, self._funcs, data)
        try:
            ex.walk(self._tree, data)
        except RecursionError:  # data that contains itself
            raise TemplateError(f"template: {self.name}: data nested too deeply to print") from None
        return "".join(ex.out)


def render(text: str, data: Any, funcs: dict[str, Callable[..., Any]] | None = None) -> str:
    """Parse ``text`` and execute it on ``data`` (see Template); raises TemplateError."""
    return Template(text, funcs).execute(data)
