"""Go's strconv as templates need it: Unquote, number literals, shortest float digits (Quote is
:mod:`berth.goquote`)."""

from __future__ import annotations

from berth.goquote import quote

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def unquote(lit: str) -> str:
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


def parse_number(text: str) -> tuple[int | float, int | None]:
    """(value as an untyped constant prints, int value or None); ValueError when illegal."""
    if text.startswith("'"):
        value = unquote(text)
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
        raise ValueError(f"illegal number syntax: {quote(text)}") from None
    if not any(c in body for c in ".eEpP"):  # Go: what reads as a float but not an int is too big
        raise ValueError(f"integer overflow: {quote(text)}")
    ival = int(fval) if fval.is_integer() else None
    return (fval if any(c in body for c in ".eEpP") or ival is None else ival), ival


def shortest_digits(a: float) -> tuple[str, int]:
    """Shortest digits that read back as a (> 0) and the decimal point's place: 0.0015 -> ("15", -2)."""
    mant, _, exp = repr(a).partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + int(exp or 0) - (len(whole + frac) - len(digits))
    return digits.rstrip("0") or "0", point


def e_form(digits: str, exp: int) -> str:
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def f_form(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]
