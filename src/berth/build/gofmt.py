"""Go's ``fmt`` renderings that docker 20.10 writes into build history (sans-I/O).

The classic builder records each metadata instruction as a comment made with Go's ``fmt``
verbs, e.g. ``CMD %q`` (a quoted string list), ``SHELL %v`` (a bare list), ``HEALTHCHECK %q``
of a ``*container.HealthConfig`` (``&{["CMD" "true"] "5s" "0s" "0s" '\\x03'}``). These
functions reproduce what Go prints, following the ``fmt`` package documentation ("Printing")
and ``strconv.Quote``/``QuoteRune``/``time.Duration.String``.
"""

from __future__ import annotations

from collections.abc import Iterable

_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _escape_char(char: str, quote: str) -> str:
    if char == quote or char == "\\":
        return "\\" + char
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if char == " " or char.isprintable():
        return char
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote(text: str) -> str:
    """``strconv.Quote``: a double-quoted Go string literal (printable runes kept as they are)."""
    return '"' + "".join(_escape_char(char, '"') for char in text) + '"'


def quote_rune(value: int) -> str:
    """``%q`` of an integer: a single-quoted Go character literal (``'\\x00'``, ``'A'``)."""
    if value < 0 or value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        value = 0xFFFD
    return "'" + _escape_char(chr(value), "'") + "'"


def quoted_list(items: Iterable[str]) -> str:
    """``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(quote(item) for item in items) + "]"


def plain_list(items: Iterable[str]) -> str:
    """``%v`` of a ``[]string``: ``[a b]``."""
    return "[" + " ".join(items) + "]"


def _fraction(value: int, digits: int) -> str:
    """``value / 10**digits`` with the fraction's trailing zeros (and a bare point) dropped."""
    whole, frac = divmod(value, 10**digits)
    text = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def duration(nanoseconds: int) -> str:
    """``time.Duration.String``: ``0s``, ``1.5ms``, ``5s``, ``1m30s``, ``1h0m0s``."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    value = abs(nanoseconds)
    if value < 1_000:
        return f"{sign}{value}ns"
    if value < 1_000_000:
        return f"{sign}{_fraction(value, 3)}µs"
    if value < 1_000_000_000:
        return f"{sign}{_fraction(value, 6)}ms"
    minutes, rest = divmod(value, 60 * 1_000_000_000)
    text = _fraction(rest, 9) + "s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def healthcheck(test: list[str], interval: int, timeout: int, start_period: int, retries: int) -> str:
    """``%q`` of docker 20.10's ``*HealthConfig``: ``&{[test] "interval" "timeout" "start" 'retries'}``."""
    times = " ".join(quote(duration(value)) for value in (interval, timeout, start_period))
    return f"&{{{quoted_list(test)} {times} {quote_rune(retries)}}}"
