"""Go's json.Marshal, as docker's json function calls it (SetEscapeHTML(false): <, >, & kept)."""

from __future__ import annotations

from berth.gotemplate import NO_VALUE
from berth.gotemplate.strconv import e_form, f_form, shortest_digits

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import, and the CLI imports this package
    from typing import Any


_INF = float("inf")
_JSON_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
             "\u2028": "\\u2028", "\u2029": "\\u2029"}


def to_json(v: Any, out: list[str]) -> None:
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
            to_json(e, out)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        for i, (k, e) in enumerate(v.items()):
            out.append(("," if i else "") + _json_str(str(k)) + ":")
            to_json(e, out)
        out.append("}")
    elif (fields := getattr(type(v), "__dataclass_fields__", None)) is not None:
        to_json({f: getattr(v, f) for f in fields}, out)
    elif hasattr(v, "__dict__"):
        to_json({k: e for k, e in vars(v).items() if not k.startswith("_")}, out)
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
        from berth.gotemplate.fmt import Spec, format_value

        raise ValueError(f"json: unsupported value: {format_value(f, 'v', Spec())}")
    if f == 0:
        return "-0" if str(f)[0] == "-" else "0"
    digits, point = shortest_digits(abs(f))
    sign = "-" if f < 0 else ""
    if not 1e-6 <= abs(f) < 1e21:
        mant, _, exp = e_form(digits, point - 1).partition("e")
        return f"{sign}{mant}e{exp[0]}{exp[1:].lstrip('0') if exp[0] == '-' else exp[1:]}"
    return sign + f_form(digits, point)
