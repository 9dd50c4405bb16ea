"""json-file log format: exact bytes written, pieces, joining and filters on read."""

from __future__ import annotations

import asyncio
import itertools
import os

import pytest

from berth.runtime.jsonlog import (
    PIECE_SIZE,
    JsonLogWriter,
    LogEntry,
    encode_entry,
    follow_log,
    json_string,
    read_log,
    split_output,
)

T0 = 1704164645_123456789  # 2024-01-02T03:04:05.123456789Z


@pytest.mark.parametrize("data, expected", [
    (b"hello\n", '"hello\\n"'),
    (b'say "hi" \\ now\r\n', '"say \\"hi\\" \\\\ now\\r\\n"'),
    (b"tab\there", '"tab\\u0009here"'),
    (b"\x00\x1b[0m\x7f", '"\\u0000\\u001b[0m\x7f"'),
    (b"<a href='x'>&amp;</a>", "\"\\u003ca href='x'\\u003e\\u0026amp;\\u003c/a\\u003e\""),
    ("héllo ✓\u2028\u2029".encode(), '"héllo ✓\\u2028\\u2029"'),
    (b"bad \xff\xfe end", '"bad \\ufffd\\ufffd end"'),
    (b"cut \xe2\x82", '"cut \\ufffd\\ufffd"'),
    (b"\x08\x0c", '"\\u0008\\u000c"'),
    ("valid \ufffd".encode(), '"valid \ufffd"'),
    (b"surrogate \xed\xa0\x80", '"surrogate \\ufffd\\ufffd\\ufffd"'),
    (b'\x00"\\\n\r<>&\x1f\xff ok', '"\\u0000\\"\\\\\\n\\r\\u003c\\u003e\\u0026\\u001f\\ufffd ok"'),
    (bytes(range(0x20)), '"' + "".join({0x0A: "\\n", 0x0D: "\\r"}.get(c, f"\\u{c:04x}") for c in range(0x20)) + '"'),
])
def test_json_string_escapes_like_docker(data: bytes, expected: str) -> None:
    assert json_string(data) == expected


@pytest.mark.parametrize("ns, stamp", [
    (T0, "2024-01-02T03:04:05.123456789Z"),
    (1704164645_120000000, "2024-01-02T03:04:05.12Z"),
    (1704164645_000000000, "2024-01-02T03:04:05Z"),
    (1704164645_000000001, "2024-01-02T03:04:05.000000001Z"),
])
def test_encode_entry_exact_bytes(ns: int, stamp: str) -> None:
    assert encode_entry(b"hi\n", "stderr", ns) == (
        b'{"log":"hi\\n","stream":"stderr","time":"' + stamp.encode() + b'"}\n')


@pytest.mark.parametrize("data, pieces, rest", [
    (b"a\nbc\n", [b"a\n", b"bc\n"], b""),
    (b"a\nbc", [b"a\n"], b"bc"),
    (b"x" * (PIECE_SIZE - 1) + b"\n", [b"x" * (PIECE_SIZE - 1) + b"\n"], b""),
    (b"x" * PIECE_SIZE + b"\n", [b"x" * PIECE_SIZE, b"\n"], b""),
    (b"y" * 40000 + b"\nz", [b"y" * PIECE_SIZE, b"y" * PIECE_SIZE, b"y" * (40000 - 2 * PIECE_SIZE) + b"\n"], b"z"),
    (b"w" * (PIECE_SIZE + 5), [b"w" * PIECE_SIZE], b"w" * 5),
    (b"", [], b""),
])
def test_split_output(data: bytes, pieces: list[bytes], rest: bytes) -> None:
    buffer = bytearray(data)
    assert split_output(buffer) == pieces
    assert bytes(buffer) == rest


def _writer(path) -> JsonLogWriter:
    ticks = itertools.count(T0, 1_000_000_000)
    return JsonLogWriter(path, clock=lambda: next(ticks))


def test_writer_buffers_per_stream_and_flushes_at_exit(tmp_path) -> None:
    path = tmp_path / "c-json.log"
    writer = _writer(path)
    writer.write("stdout", b"hel")
    writer.write("stderr", b"oops\nwar")
    writer.write("stdout", b"lo\nworld")
    writer.close()
    writer.close()
    assert path.read_bytes() == (
        b'{"log":"oops\\n","stream":"stderr","time":"2024-01-02T03:04:05.123456789Z"}\n'
        b'{"log":"hello\\n","stream":"stdout","time":"2024-01-02T03:04:06.123456789Z"}\n'
        b'{"log":"world","stream":"stdout","time":"2024-01-02T03:04:07.123456789Z"}\n'
        b'{"log":"war","stream":"stderr","time":"2024-01-02T03:04:07.123456789Z"}\n'
    )
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"


def test_writer_keeps_tty_crlf(tmp_path) -> None:
    path = tmp_path / "tty.log"
    writer = _writer(path)
    writer.write("stdout", b"/ # ls\r\nbin\r\n/ # ")
    writer.close()
    assert path.read_bytes() == (
        b'{"log":"/ # ls\\r\\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}\n'
        b'{"log":"bin\\r\\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}\n'
        b'{"log":"/ # ","stream":"stdout","time":"2024-01-02T03:04:06.123456789Z"}\n'
    )


def test_writer_appends_to_existing_log(tmp_path) -> None:
    path = tmp_path / "c.log"
    path.write_bytes(b'{"log":"old\\n","stream":"stdout","time":"2020-01-01T00:00:00Z"}\n')
    writer = _writer(path)
    writer.write("stdout", b"new\n")
    writer.close()
    assert [e.data for e in read_log(path)] == [b"old\n", b"new\n"]


def test_long_line_written_in_pieces_and_joined_on_read(tmp_path) -> None:
    path = tmp_path / "long.log"
    line = bytes(range(65, 91)) * 1600  # 41600 bytes
    writer = _writer(path)
    writer.write("stdout", line[:10000])
    writer.write("stderr", b"between\n")
    writer.write("stdout", line[10000:] + b"\n")
    writer.close()
    raw = path.read_bytes().splitlines()
    assert len(raw) == 4
    assert raw[0].startswith(b'{"log":"between\\n","stream":"stderr"')
    assert raw[1].startswith(b'{"log":"' + line[:PIECE_SIZE] + b'","stream":"stdout"')
    assert raw[2].startswith(b'{"log":"' + line[PIECE_SIZE:2 * PIECE_SIZE] + b'","stream":"stdout"')
    assert raw[3].startswith(b'{"log":"' + line[2 * PIECE_SIZE:] + b'\\n","stream":"stdout"')
    entries = list(read_log(path))
    assert [(e.stream, e.data) for e in entries] == [("stderr", b"between\n"), ("stdout", line + b"\n")]
    assert entries[1].time == T0 + 1_000_000_000


def _sample_log(path) -> None:
    writer = _writer(path)
    for i in range(5):
        writer.write("stdout" if i % 2 == 0 else "stderr", b"line %d\n" % i)
    writer.close()


@pytest.mark.parametrize("kwargs, expected", [
    ({}, [0, 1, 2, 3, 4]),
    ({"tail": 2}, [3, 4]),
    ({"tail": 0}, []),
    ({"tail": -1}, [0, 1, 2, 3, 4]),
    ({"tail": 10}, [0, 1, 2, 3, 4]),
    ({"stderr": False}, [0, 2, 4]),
    ({"stdout": False}, [1, 3]),
    ({"tail": 2, "stdout": False}, [3]),
    ({"since": T0 + 2_000_000_000}, [2, 3, 4]),
    ({"until": T0 + 1_000_000_000}, [0, 1]),
    ({"since": T0 + 1_000_000_000, "until": T0 + 3_000_000_000}, [1, 2, 3]),
    ({"tail": 3, "since": T0 + 3_000_000_000}, [3, 4]),
])
def test_read_log_filters(tmp_path, kwargs, expected) -> None:
    path = tmp_path / "c.log"
    _sample_log(path)
    entries = list(read_log(path, **kwargs))
    assert entries == [
        LogEntry("stdout" if i % 2 == 0 else "stderr", b"line %d\n" % i, T0 + i * 1_000_000_000)
        for i in expected
    ]


def test_read_log_skips_malformed_lines_and_returns_cut_entry(tmp_path) -> None:
    path = tmp_path / "c.log"
    path.write_bytes(
        b'{"log":"a\\n","stream":"stdout","time":"2024-01-02T03:04:05Z"}\n'
        b'not json\n'
        b'{"log":"no newline","stream":"stdout","time":"2024-01-02T03:04:06Z"}\n'
    )
    assert [e.data for e in read_log(path)] == [b"a\n", b"no newline"]


def test_read_log_follow_stops_when_ended(tmp_path) -> None:
    path = tmp_path / "c.log"
    writer = _writer(path)
    writer.write("stdout", b"first\n")
    polls = []

    def ended() -> bool:
        polls.append(1)
        if len(polls) == 1:
            writer.write("stdout", b"second\nthird")
            return False
        writer.close()
        return True

    got = [e.data for e in read_log(path, follow=True, ended=ended, poll_interval=0.01)]
    assert got == [b"first\n", b"second\n", b"third"]


def test_follow_log_async(tmp_path) -> None:
    path = tmp_path / "c.log"
    writer = _writer(path)
    writer.write("stdout", b"one\n")

    async def scenario() -> list[bytes]:
        ended = asyncio.Event()
        got: list[bytes] = []

        async def consume() -> None:
            async for entry in follow_log(path, ended, poll_interval=0.01, tail=5):
                got.append(entry.data)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        writer.write("stderr", b"two\n")
        await asyncio.sleep(0.05)
        assert got == [b"one\n", b"two\n"]
        writer.write("stdout", b"three")
        writer.close()
        ended.set()
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(scenario()) == [b"one\n", b"two\n", b"three"]


def test_missing_log_raises(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        list(read_log(tmp_path / "nope.log"))
