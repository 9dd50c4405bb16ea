"""DNS wire format round trips and the server's answer logic (no sockets)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address as A

import pytest

from berth.network.dns import (
    FLAG_AA,
    FLAG_QR,
    FLAG_RD,
    FLAG_TC,
    RCODE_FORMERR,
    RCODE_NOERROR,
    RCODE_NOTIMP,
    RCODE_NXDOMAIN,
    TYPE_A,
    TYPE_AAAA,
    TYPE_PTR,
    DNSFormatError,
    DNSServer,
    Message,
    Question,
    ResourceRecord,
    build_query,
    decode_name,
    encode_name,
    reverse_pointer_address,
)

CLIENT = A("172.18.0.9")


class TableResolver:
    """Names and reverse names from two dicts (what the daemon's resolver will hold per network)."""

    def __init__(self, names: dict[str, list[A]], reverse: dict[A, str] | None = None) -> None:
        self.names = names
        self.reverse_names = reverse or {}
        self.asked: list[tuple[str, A]] = []

    def lookup(self, name: str, client_ip: A) -> list[A] | None:
        self.asked.append((name, client_ip))
        return self.names.get(name)

    def reverse(self, ip: A, client_ip: A) -> str | None:
        return self.reverse_names.get(ip)


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("web", b"\x03web\x00"),
        ("web.", b"\x03web\x00"),
        ("a.example.org", b"\x01a\x07example\x03org\x00"),
        ("", b"\x00"),
        (".", b"\x00"),
    ],
)
def test_encode_name(name, wire):
    assert encode_name(name) == wire
    assert decode_name(wire, 0) == (name.rstrip("."), len(wire))


@pytest.mark.parametrize("name", ["a..b", "x" * 64 + ".org", ".".join(["abcdefgh"] * 29), "é.org"])
def test_encode_name_rejects(name):
    with pytest.raises(DNSFormatError):
        encode_name(name)


def test_decode_name_follows_compression_pointer():
    data = b"\x00" * 12 + b"\x07example\x03org\x00" + b"\x03www\xc0\x0c"
    assert decode_name(data, 12) == ("example.org", 25)
    assert decode_name(data, 25) == ("www.example.org", 31)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00" * 5,  # shorter than the header
        b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03ab",  # label past the end
        b"\x00\x00\x00\x00\x00\x01" + b"\x00" * 6 + b"\xc0\x0c",  # pointer loop
        b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00",  # question without type/class
    ],
)
def test_decode_rejects_malformed(data):
    with pytest.raises(DNSFormatError):
        Message.decode(data)


def test_message_round_trip():
    message = Message(
        0xBEEF,
        FLAG_QR | FLAG_AA | FLAG_RD,
        [Question("web", TYPE_A)],
        [ResourceRecord("web", TYPE_A, 1, 600, A("172.18.0.2").packed),
         ResourceRecord("2.0.18.172.in-addr.arpa", TYPE_PTR, 1, 600, encode_name("web."))],
        [],
        [ResourceRecord("", 41, 1232, 0, b"")],
    )
    decoded = Message.decode(message.encode())
    assert decoded == message
    assert decoded.answers[0].address() == A("172.18.0.2")
    assert decoded.answers[1].target() == "web"


def test_build_query_wire():
    assert build_query("web", TYPE_A, ident=0x1234) == (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web\x00\x00\x01\x00\x01"
    )


@pytest.mark.parametrize(
    ("name", "ip"),
    [("2.0.17.172.in-addr.arpa", A("172.17.0.2")), ("2.0.17.172.IN-ADDR.ARPA.", A("172.17.0.2")),
     ("0.17.172.in-addr.arpa", None), ("web", None), ("x.0.17.172.in-addr.arpa", None)],
)
def test_reverse_pointer_address(name, ip):
    assert reverse_pointer_address(name) == ip


def ask(server: DNSServer, name: str, qtype: int = TYPE_A, limit: int | None = None) -> Message:
    reply = asyncio.run(server.respond(build_query(name, qtype, ident=7), CLIENT, limit))
    assert reply is not None
    message = Message.decode(reply)
    assert message.id == 7 and message.flags & FLAG_QR
    return message


WEB = [A("172.18.0.2"), A("172.18.0.3"), A("172.18.0.4")]


def test_known_name_answers_every_address_in_random_order():
    server = DNSServer(TableResolver({"web": WEB}))
    orders = set()
    for _ in range(30):
        reply = ask(server, "web")
        assert reply.rcode == RCODE_NOERROR and reply.questions == [Question("web", TYPE_A)]
        assert all(r.ttl == 600 and r.name == "web" for r in reply.answers)
        orders.add(tuple(r.address() for r in reply.answers))
    assert all(sorted(order) == WEB for order in orders)
    assert len(orders) > 1


@pytest.mark.parametrize(
    ("name", "qtype", "rcode", "answers"),
    [
        ("WEB.", TYPE_A, RCODE_NOERROR, 3),  # case-insensitive, trailing dot
        ("web", TYPE_AAAA, RCODE_NOERROR, 0),  # known name: empty NOERROR
        ("web", 16, RCODE_NOERROR, 0),  # TXT
        ("db", TYPE_A, RCODE_NXDOMAIN, 0),
        ("db", TYPE_AAAA, RCODE_NXDOMAIN, 0),
        ("2.0.18.172.in-addr.arpa", TYPE_PTR, RCODE_NOERROR, 1),
        ("9.9.18.172.in-addr.arpa", TYPE_PTR, RCODE_NXDOMAIN, 0),
    ],
)
def test_answers(name, qtype, rcode, answers):
    resolver = TableResolver({"web": WEB}, {A("172.18.0.2"): "web"})
    reply = ask(DNSServer(resolver), name, qtype)
    assert (reply.rcode, len(reply.answers)) == (rcode, answers)
    if qtype == TYPE_PTR and answers:
        assert reply.answers[0].target() == "web"
    if qtype != TYPE_PTR:
        assert resolver.asked[-1] == (name.rstrip(".").lower(), CLIENT)


def test_udp_reply_is_truncated_to_512_bytes():
    many = [A(f"10.0.{i // 250}.{i % 250 + 1}") for i in range(100)]
    server = DNSServer(TableResolver({"big": many}))
    reply = ask(server, "big", limit=512)
    assert reply.flags & FLAG_TC and 0 < len(reply.answers) < 100
    assert len(reply.encode()) <= 512
    assert len(ask(server, "big").answers) == 100  # TCP: no limit


def test_other_opcodes_and_question_counts():
    server = DNSServer(TableResolver({}))
    status = Message(1, 2 << 11, [Question("web", TYPE_A)]).encode()
    two = Message(2, FLAG_RD, [Question("a", TYPE_A), Question("b", TYPE_A)]).encode()
    replies = [Message.decode(asyncio.run(server.respond(q, CLIENT)) or b"") for q in (status, two)]
    assert [r.rcode for r in replies] == [RCODE_NOTIMP, RCODE_FORMERR]


def test_responses_and_garbage_are_dropped_or_formerr():
    server = DNSServer(TableResolver({}))
    response = Message(3, FLAG_QR, [Question("web", TYPE_A)]).encode()
    assert asyncio.run(server.respond(response, CLIENT)) is None
    assert asyncio.run(server.respond(b"\x01", CLIENT)) is None
    garbage = asyncio.run(server.respond(b"\x00\x05\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x09ab", CLIENT))
    assert garbage is not None and Message.decode(garbage).rcode == RCODE_FORMERR
