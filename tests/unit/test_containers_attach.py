"""The daemon's detach-key scanner (berth.containers.attach.DetachScanner): docker's escape proxy
watches a TTY session's stdin for the sequence (default ctrl-p ctrl-q); a session without a
terminal gets empty keys and passes binary stdin through untouched."""

from __future__ import annotations

import pytest

from berth.containers.attach import DEFAULT_DETACH_KEYS, DetachScanner

CASES = [  # (keys, chunks, forwarded, detached)
    (DEFAULT_DETACH_KEYS, [b"ls\r"], b"ls\r", False),
    (DEFAULT_DETACH_KEYS, [b"ls\r\x10\x11rest"], b"ls\r", True),
    (DEFAULT_DETACH_KEYS, [b"a\x10", b"\x11"], b"a", True),           # split across reads
    (DEFAULT_DETACH_KEYS, [b"\x10x"], b"\x10x", False),               # abandoned partial match passes on
    (DEFAULT_DETACH_KEYS, [b"\x10\x10\x11"], b"\x10", True),          # a repeated first key restarts
    (DEFAULT_DETACH_KEYS, [b"abc\x10"], b"abc\x10", False),           # held byte released at EOF
    (b"", [b"abc\x10\x11xyz"], b"abc\x10\x11xyz", False),             # no terminal: no detach keys
    (b"", [b"\x10", b"\x11", b"\x10"], b"\x10\x11\x10", False),
]


@pytest.mark.parametrize("keys,chunks,forwarded,detached", CASES)
def test_detach_scanner(keys, chunks, forwarded, detached):
    scanner = DetachScanner(keys)
    out, seen = b"", False
    for chunk in chunks:
        data, seen = scanner.feed(chunk)
        out += data
        if seen:
            break
    if not seen:
        out += scanner.flush()
    assert (out, seen) == (forwarded, detached)
