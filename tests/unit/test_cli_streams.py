"""Attached-stream plumbing of the CLI: detach keys, the multiplexed stream format, and a whole
hijacked session over a real socket pair (one end plays the daemon)."""

from __future__ import annotations

import io
import os
import socket
import struct
import threading

import pytest

from berth.cli import streams
from berth.errors import InvalidParameter


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", kind, len(payload)) + payload


@pytest.mark.parametrize("spec,keys", [
    ("ctrl-p,ctrl-q", b"\x10\x11"), ("ctrl-a", b"\x01"), ("ctrl-@", b"\x00"), ("ctrl-z", b"\x1a"),
    ("ctrl-[", b"\x1b"), ("ctrl-\\", b"\x1c"), ("ctrl-]", b"\x1d"), ("ctrl-^", b"\x1e"), ("ctrl-_", b"\x1f"),
    ("a", b"a"), ("a,b,ctrl-c", b"ab\x03"), ("DEL", b"\x7f"),
])
def test_parse_detach_keys(spec, keys):
    assert streams.parse_detach_keys(spec) == keys


@pytest.mark.parametrize("spec,bad", [("ctrl-P", "ctrl-P"), ("foo", "foo"), ("ctrl-p,", ""), (",", ""), ("ctrl-1", "ctrl-1")])
def test_parse_detach_keys_refuses(spec, bad):
    with pytest.raises(InvalidParameter) as info:
        streams.parse_detach_keys(spec)
    assert str(info.value) == f"Unknown character: '{bad}'"


@pytest.mark.parametrize("chunks,forwarded,detached", [
    ([b"ls\r"], b"ls\r", False),
    ([b"ls\r\x10\x11"], b"ls\r", True),
    ([b"a\x10", b"\x11"], b"a", True),            # sequence split across reads
    ([b"\x10x"], b"\x10x", False),                # abandoned partial match is passed on
    ([b"\x10", b"\x10\x11"], b"\x10", True),      # a repeated first key restarts the match
    ([b"\x10"], b"", False),                      # held back until decided
])
def test_escape_filter(chunks, forwarded, detached):
    escape = streams.EscapeFilter(b"\x10\x11")
    out, seen = b"", False
    for chunk in chunks:
        data, seen = escape.feed(chunk)
        out += data
        if seen:
            break
    assert (out, seen) == (forwarded, detached)


def test_demultiplexer_splits_frames_across_chunks():
    out, err = io.BytesIO(), io.BytesIO()
    demux = streams.Demultiplexer(out, err)
    data = frame(1, b"hello\n") + frame(2, b"oops\n") + frame(1, b"") + frame(1, b"bye\n")
    for i in range(0, len(data), 5):
        demux.feed(data[i:i + 5])
    assert out.getvalue() == b"hello\nbye\n" and err.getvalue() == b"oops\n"


def test_demultiplexer_reports_system_errors():
    demux = streams.Demultiplexer(io.BytesIO(), io.BytesIO())
    with pytest.raises(streams.StreamError, match="error from daemon in stream: broken"):
        demux.feed(frame(3, b"broken"))


def test_copy_stream_raw_with_tty():
    out, err = io.BytesIO(), io.BytesIO()
    streams.copy_stream([b"\x01\x00\x00", b"raw"], tty=True, stdout=out, stderr=err)
    assert out.getvalue() == b"\x01\x00\x00raw" and err.getvalue() == b""


class FakeDaemon(threading.Thread):
    """The daemon end of a hijacked connection: records stdin until EOF, then answers with frames."""

    def __init__(self, sock: socket.socket, reply: bytes) -> None:
        super().__init__(daemon=True)
        self.sock, self.reply, self.received = sock, reply, b""

    def run(self) -> None:
        while chunk := self.sock.recv(4096):
            self.received += chunk
        try:
            self.sock.sendall(self.reply)  # output still flows after the client's half-close
        except OSError:
            pass
        self.sock.close()


@pytest.fixture
def pipe_stdin():
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", buffering=0)
    writer = os.fdopen(write_fd, "wb", buffering=0)
    yield reader, writer
    for f in (reader, writer):
        if not f.closed:
            f.close()


def test_session_half_closes_and_keeps_reading(pipe_stdin):
    reader, writer = pipe_stdin
    client, server = socket.socketpair()
    daemon = FakeDaemon(server, frame(1, b"got it\n") + frame(2, b"warn\n"))
    daemon.start()
    writer.write(b"line 1\nline 2\n")
    writer.close()
    out, err = io.BytesIO(), io.BytesIO()
    result = streams.stream_hijacked(client, frame(1, b"early\n"), tty=False, stdin=reader, stdout=out,
                                     stderr=err, detach_keys=None)
    daemon.join(5)
    assert result == "eof"
    assert daemon.received == b"line 1\nline 2\n"
    assert out.getvalue() == b"early\ngot it\n" and err.getvalue() == b"warn\n"


def test_session_detaches_without_sending_the_keys(pipe_stdin):
    reader, writer = pipe_stdin
    client, server = socket.socketpair()
    daemon = FakeDaemon(server, b"")
    daemon.start()
    writer.write(b"echo hi\r\x10\x11after")
    out = io.BytesIO()
    result = streams.stream_hijacked(client, b"", tty=True, stdin=reader, stdout=out, stderr=out,
                                     detach_keys=b"\x10\x11")
    daemon.join(5)
    assert result == "detached"
    assert daemon.received == b"echo hi\r"


def test_session_without_stdin_ends_with_the_output():
    client, server = socket.socketpair()
    server.sendall(b"tty output")
    server.close()
    out = io.BytesIO()
    assert streams.stream_hijacked(client, b"", tty=True, stdin=None, stdout=out, stderr=out,
                                   detach_keys=None) == "eof"
    assert out.getvalue() == b"tty output"


def test_raw_terminal_restores_the_mode():
    import pty
    import termios
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        with streams.RawTerminal(slave):
            raw = termios.tcgetattr(slave)
            assert not raw[3] & termios.ECHO and not raw[3] & termios.ICANON and not raw[1] & termios.OPOST
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_raw_terminal_leaves_non_terminals_alone():
    read_fd, write_fd = os.pipe()
    try:
        with streams.RawTerminal(read_fd) as raw:
            assert raw._saved is None
    finally:
        os.close(read_fd)
        os.close(write_fd)
