"""The CLI's small HTTP/1.1 client: request framing and response bodies (length, chunked, until
close), against a socketpair standing in for the daemon."""

from __future__ import annotations

import socket
import threading

import pytest

from berth.client import wire


def serve(answer: bytes) -> tuple[socket.socket, list[bytes]]:
    """A client socket whose peer records the request and sends ``answer``, then closes."""
    ours, theirs = socket.socketpair()
    seen: list[bytes] = []

    def run() -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += theirs.recv(65536)
        theirs.settimeout(0.2)
        try:
            while chunk := theirs.recv(65536):
                data += chunk
        except OSError:
            pass
        seen.append(data)
        theirs.sendall(answer)
        theirs.close()

    threading.Thread(target=run, daemon=True).start()
    return ours, seen


def test_content_length_body_and_headers():
    sock, seen = serve(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    wire.send_request(sock, "GET", "/v1.41/_ping", {"User-Agent": "t"}, None)
    resp = wire.Response(sock, "GET")
    assert (resp.status, resp.reason, resp.headers["content-type"], resp.read()) == (200, "OK", "application/json", b"{}")
    assert seen[0] == b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: t\r\n\r\n"
    resp.close()


def test_chunked_body_read_in_pieces_and_lines():
    body = b"6\r\nline1\n\r\n8\r\nline2\nli\r\n3\r\nne3\r\n0\r\n\r\n"
    sock, _ = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    wire.send_request(sock, "GET", "/events", {}, None)
    resp = wire.Response(sock, "GET")
    assert [resp.readline(), resp.readline(), resp.readline(), resp.readline()] == [b"line1\n", b"line2\n", b"line3", b""]


def test_chunked_request_body_and_close_delimited_response():
    sock, seen = serve(b"HTTP/1.1 200 OK\r\n\r\nraw bytes until close")
    wire.send_request(sock, "POST", "/images/load", {}, iter([b"abc", b"", b"de"]))
    resp = wire.Response(sock, "POST")
    assert resp.read() == b"raw bytes until close"
    assert seen[0].endswith(b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")


def test_no_body_for_204_and_head():
    sock, _ = serve(b"HTTP/1.1 204 No Content\r\n\r\n")
    wire.send_request(sock, "POST", "/containers/x/start", {}, None)
    assert wire.Response(sock, "POST").read() == b""


def test_truncated_body_and_bad_status_line_raise():
    sock, _ = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    wire.send_request(sock, "GET", "/x", {}, None)
    with pytest.raises(wire.ProtocolError):
        wire.Response(sock, "GET").read()
    sock, _ = serve(b"garbage\r\n\r\n")
    wire.send_request(sock, "GET", "/x", {}, None)
    with pytest.raises(wire.ProtocolError):
        wire.Response(sock, "GET")
