"""Printing as Go's fmt does: %v of the Python values standing for Go's, and the printf verbs."""

from __future__ import annotations

from berth.goquote import quote as go_quote
from berth.gotemplate import NO_VALUE, go_type, sorted_items
from berth.gotemplate.lexer import skip
from berth.gotemplate.strconv import e_form, f_form, shortest_digits

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import, and the CLI imports this package
    from typing import Any


_INF = float("inf")
_FLAGS = {"#": "sharp", "0": "zero", "+": "plus", "-": "minus", " ": "space"}


class Spec:
    """printf flags, width and precision; plus_v and sharp_v mean %+v and %#v."""

    __slots__ = ("minus", "plus", "sharp", "space", "zero", "plus_v", "sharp_v", "width", "prec")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = self.plus_v = self.sharp_v = False
        self.width: int | None = None
        self.prec: int | None = None


def _pad(s: str, spec: Spec, zero: bool = True) -> str:
    width = spec.width
    if width is None or len(s) >= width:
        return s
    if spec.minus:
        return s + " " * (width - len(s))
    return ("0" if zero and spec.zero else " ") * (width - len(s)) + s


def format_value(v: Any, verb: str, spec: Spec, depth: int = 0) -> str:
    """One operand formatted with a verb as fmt does; containers format each element alike."""
    if verb == "T":
        return _pad(go_type(v) if v is None or v is NO_VALUE else go_type(v)[:spec.prec], spec)
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
        items = [format_value(e, verb, spec, depth + 1) for e in v]
        return "[]interface {}{" + ", ".join(items) + "}" if spec.sharp_v else "[" + " ".join(items) + "]"
    if isinstance(v, dict):
        items = [format_value(k, verb, spec, depth + 1) + ":" + format_value(e, verb, spec, depth + 1) for k, e in sorted_items(v)]
        return "map[string]interface {}{" + ", ".join(items) + "}" if spec.sharp_v else "map[" + " ".join(items) + "]"
    fields = getattr(type(v), "__dataclass_fields__", None)
    if fields is not None:
        items = [(f"{f}:" if spec.plus_v else "") + format_value(getattr(v, f), verb, spec, depth + 1) for f in fields]
        return "{" + " ".join(items) + "}"
    return _fmt_str(str(v), verb, spec)


def _bad_verb(v: Any, verb: str, spec: Spec) -> str:
    return f"%!{verb}({go_type(v)}={format_value(v, 'v', spec)})"


def _rune(n: int) -> str:
    return chr(n) if 0 <= n <= 0x10FFFF and not 0xD800 <= n < 0xE000 else "\ufffd"


def _fmt_int(n: int, verb: str, spec: Spec) -> str:
    if verb == "c":
        return _pad(_rune(n), spec)
    if verb == "q":
        return _pad(go_quote(_rune(n), spec.plus, "'"), spec)
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


def _fmt_float(f: float, verb: str, spec: Spec) -> str:
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


def _shortest(a: float) -> str:
    """%v of a float64 >= 0 (strconv 'g', precision -1): %e form when the exponent is < -4 or >= 6."""
    if a == 0:
        return "0"
    digits, point = shortest_digits(a)
    return e_form(digits, point - 1) if not -4 <= point - 1 < 6 else f_form(digits, point)


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


def _fmt_str(s: str, verb: str, spec: Spec) -> str:
    if spec.prec is not None and verb not in "xX":  # precision counts runes, but bytes for %x
        s = s[:spec.prec]
    if verb in "sv":
        return _pad(go_quote(s) if spec.sharp_v else s, spec)
    if verb == "q":
        if spec.sharp and "`" not in s and all(c == "\t" or c.isprintable() for c in s):
            return _pad("`" + s + "`", spec)
        return _pad(go_quote(s, spec.plus), spec)
    if verb in "xX":
        data = s.encode("utf-8", "replace")[:spec.prec]
        hexes = [format(b, "02x" if verb == "x" else "02X") for b in data]
        prefix = ("0x" if verb == "x" else "0X") if spec.sharp else ""
        text = " ".join(prefix + h for h in hexes) if spec.space else prefix + "".join(hexes) if hexes else ""
        return _pad(text, spec)
    return _bad_verb(s, verb, spec)


def sprint(*args: Any) -> str:
    """Go's fmt.Sprint: %v of each operand, a space between operands when neither is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(format_value(arg, "v", Spec()))
    return "".join(out)


def sprintln(*args: Any) -> str:
    return " ".join(format_value(arg, "v", Spec()) for arg in args) + "\n"


def sprintf(fmt: str, *args: Any) -> str:
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
            spec, i, self.good = Spec(), j + 1, True
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
            extra = ["<nil>" if a is None else f"{go_type(a)}={format_value(a, 'v', Spec())}" for a in self.args[self.argn:]]
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
        j = skip(f, i, "0123456789")
        return j, int(f[i:j]) if j > i else None

    def verb(self, verb: str, spec: Spec) -> str:
        if verb == "%":
            return "%"
        if not self.good:
            return f"%!{verb}(BADINDEX)"
        if self.argn >= len(self.args):
            return f"%!{verb}(MISSING)"
        if verb == "v":
            spec.sharp_v, spec.sharp, spec.plus_v, spec.plus = spec.sharp, False, spec.plus, False
        self.argn += 1
        return format_value(self.args[self.argn - 1], verb, spec)
