"""Go's quoting, as docker's messages and records print strings: ``strconv.Quote``,
``QuoteToASCII``, ``QuoteRune`` and ``%q`` of a ``[]string``.

Printable characters (Python's ``str.isprintable``, which agrees with Go's ``unicode.IsPrint``
for what docker prints) stay as they are; quotes and backslashes are escaped; ``\\a \\b \\f \\n
\\r \\t \\v`` get their short escapes, other control characters ``\\xNN``, other unprintable
runes ``\\uNNNN`` or ``\\UNNNNNNNN`` (Go package ``strconv`` documentation).
"""

from __future__ import annotations

from collections.abc import Iterable

_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def quote(text: str, ascii_only: bool = False, delim: str = '"') -> str:
    """``strconv.Quote`` of ``text`` (``QuoteToASCII`` when ``ascii_only``: non-ASCII escaped too);
    ``delim`` ``'`` quotes as ``QuoteRune`` does."""
    if text.isascii() and text.isprintable() and delim not in text and "\\" not in text:
        return delim + text + delim
    out = [delim]
    for char in text:
        code = ord(char)
        if char == delim or char == "\\":
            out.append("\\" + char)
        elif char.isprintable() and (code < 0x80 or not ascii_only):
            out.append(char)
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out) + delim


def quote_rune(value: int, ascii_only: bool = False) -> str:
    """``strconv.QuoteRune`` (``%q`` of an integer): ``'A'``, ``'\\x00'``; a value that is no valid
    rune quotes as U+FFFD, as Go does."""
    if not 0 <= value <= 0x10FFFF or 0xD800 <= value < 0xE000:
        value = 0xFFFD
    return quote(chr(value), ascii_only, "'")


def quote_list(items: Iterable[str]) -> str:
    """``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(quote(item) for item in items) + "]"
