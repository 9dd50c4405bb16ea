"""berth.goquote against what Go's strconv.Quote, QuoteToASCII, QuoteRune and %q print."""

from __future__ import annotations

import pytest

from berth.goquote import quote, quote_list, quote_rune


@pytest.mark.parametrize(("text", "expected"), [
    ("sh", '"sh"'),
    ("", '""'),
    ('echo "x"', '"echo \\"x\\""'),
    ("sh -c 'echo'", "\"sh -c 'echo'\""),
    ("a\tb\\c", '"a\\tb\\\\c"'),
    ("tab\there\n", '"tab\\there\\n"'),
    ("é\n", '"é\\n"'),
    ("café…", '"café…"'),
    ("\x00\x01\x7f", '"\\x00\\x01\\x7f"'),
    ("\x85", '"\\u0085"'),
    ("\u200b", '"\\u200b"'),
    ("\U000e0001", '"\\U000e0001"'),
])
def test_quote_is_strconv_quote(text, expected):
    assert quote(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("é☺", '"\\u00e9\\u263a"'), ("a\U0001f600", '"a\\U0001f600"')])
def test_quote_to_ascii(text, expected):
    assert quote(text, ascii_only=True) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (0, "'\\x00'"), (3, "'\\x03'"), (7, "'\\a'"), (10, "'\\n'"), (34, "'\"'"), (39, "'\\''"), (65, "'A'"),
    (92, "'\\\\'"), (233, "'é'"), (-1, "'�'"), (0xD800, "'�'"), (0x110000, "'�'"),
])
def test_quote_rune(value, expected):
    assert quote_rune(value) == expected


def test_quote_list():
    assert quote_list(["/bin/sh", "-c", 'echo "x"']) == '["/bin/sh" "-c" "echo \\"x\\""]'
    assert quote_list([]) == "[]"
