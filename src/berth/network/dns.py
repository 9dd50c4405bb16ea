"""The per-network DNS server: container names on a user network resolve to their addresses.

Behaviour follows docker's embedded DNS server ("Container networking", "DNS services"): A
records for names the network knows (several addresses for a shared alias, shuffled like docker's
round robin), an empty NOERROR answer to AAAA (and other types) for known names, PTR answers for
``in-addr.arpa`` names of known addresses, and NXDOMAIN for everything else unless upstream
servers are configured, in which case the query is forwarded unchanged (off by default).

The wire format (RFC 1035 section 4: header, question, resource records, name compression on
decode; section 4.2.2: two-byte length prefix over TCP) is small enough to carry here with the
stdlib only. The server speaks UDP and TCP on the same address and port.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_address
from typing import Any, Protocol, cast

from berth.errors import SystemError_

TYPE_A, TYPE_PTR, TYPE_AAAA, TYPE_ANY = 1, 12, 28, 255
CLASS_IN = 1
RCODE_NOERROR, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_NOTIMP = 0, 1, 2, 3, 4
FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD, FLAG_RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
UDP_LIMIT = 512  # RFC 1035 4.2.1: UDP messages without EDNS
DEFAULT_TTL = 600  # docker's embedded DNS answers with TTL 600
_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")


class DNSFormatError(ValueError):
    """A DNS message that cannot be decoded (RFC 1035 FORMERR)."""


@dataclass
class Question:
    """RFC 1035 4.1.2: ``name`` without trailing dot, ``qtype`` (1 = A, 12 = PTR, 28 = AAAA ...)."""

    name: str
    qtype: int
    qclass: int = CLASS_IN


@dataclass
class ResourceRecord:
    """RFC 1035 4.1.3: ``rdata`` is the raw RDATA (4 bytes for A, an encoded name for PTR); ``ttl`` in seconds."""

    name: str
    rtype: int
    rclass: int
    ttl: int
    rdata: bytes

    def address(self) -> IPv4Address:
        """The IPv4 address of an A record."""
        return IPv4Address(self.rdata)

    def target(self) -> str:
        """The domain name carried by a PTR record (uncompressed RDATA)."""
        return decode_name(self.rdata, 0)[0]


@dataclass
class Message:
    """A DNS message (RFC 1035 4.1). ``flags`` is the header's second 16-bit word (QR, opcode,
    AA, TC, RD, RA, rcode)."""

    id: int
    flags: int
    questions: list[Question] = field(default_factory=list)
    answers: list[ResourceRecord] = field(default_factory=list)
    authorities: list[ResourceRecord] = field(default_factory=list)
    additionals: list[ResourceRecord] = field(default_factory=list)

    @property
    def rcode(self) -> int:
        """Response code (low 4 bits of ``flags``)."""
        return self.flags & 0xF

    @property
    def opcode(self) -> int:
        """Operation code (0 = standard query)."""
        return (self.flags >> 11) & 0xF

    def encode(self) -> bytes:
        """Wire bytes of the message (names written uncompressed)."""
        sections = (self.questions, self.answers, self.authorities, self.additionals)
        out = bytearray(_HEADER.pack(self.id, self.flags, *(len(s) for s in sections)))
        for question in self.questions:
            out += encode_name(question.name) + struct.pack("!HH", question.qtype, question.qclass)
        for record in (*self.answers, *self.authorities, *self.additionals):
            out += encode_name(record.name)
            out += _RR_FIXED.pack(record.rtype, record.rclass, record.ttl, len(record.rdata)) + record.rdata
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Message:
        """Parse wire bytes; raises DNSFormatError on truncated or malformed input."""
        if len(data) < _HEADER.size:
            raise DNSFormatError("message shorter than the DNS header")
        ident, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
        message = cls(ident, flags)
        offset = _HEADER.size
        for _ in range(qd):
            name, offset = decode_name(data, offset)
            if offset + 4 > len(data):
                raise DNSFormatError("truncated question")
            qtype, qclass = struct.unpack_from("!HH", data, offset)
            message.questions.append(Question(name, qtype, qclass))
            offset += 4
        for section, count in ((message.answers, an), (message.authorities, ns), (message.additionals, ar)):
            for _ in range(count):
                record, offset = _decode_record(data, offset)
                section.append(record)
        return message


def _decode_record(data: bytes, offset: int) -> tuple[ResourceRecord, int]:
    name, offset = decode_name(data, offset)
    if offset + _RR_FIXED.size > len(data):
        raise DNSFormatError("truncated resource record")
    rtype, rclass, ttl, length = _RR_FIXED.unpack_from(data, offset)
    offset += _RR_FIXED.size
    if offset + length > len(data):
        raise DNSFormatError("truncated RDATA")
    rdata = data[offset : offset + length]
    if rtype == TYPE_PTR:  # re-encode so the name no longer points into this message
        rdata = encode_name(decode_name(data, offset)[0])
    return ResourceRecord(name, rtype, rclass, ttl, rdata), offset + length


def encode_name(name: str) -> bytes:
    """Encode ``name`` as length-prefixed labels ending in the root label (RFC 1035 3.1).

    A trailing dot is allowed; ``""`` or ``"."`` is the root. Raises DNSFormatError for empty
    labels, labels over 63 bytes, names over 255 bytes or non-ASCII text.
    """
    out = bytearray()
    stripped = name[:-1] if name.endswith(".") else name
    for label in stripped.split(".") if stripped else []:
        try:
            raw = label.encode("ascii")
        except UnicodeEncodeError as exc:
            raise DNSFormatError(f"non-ASCII label in {name!r}") from exc
        if not 0 < len(raw) < 64:
            raise DNSFormatError(f"bad label length in {name!r}")
        out += bytes([len(raw)]) + raw
    out += b"\x00"
    if len(out) > 255:
        raise DNSFormatError(f"name too long: {name!r}")
    return bytes(out)


def decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """Decode the name at ``offset`` (following compression pointers, RFC 1035 4.1.4); returns
    ``(name without trailing dot, offset just past the name in the original position)``."""
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    while True:
        if offset >= len(data):
            raise DNSFormatError("name runs past the end of the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data) or jumps > 64:
                raise DNSFormatError("bad compression pointer")
            end = offset + 2 if end is None else end
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            jumps += 1
            continue
        if length & 0xC0:
            raise DNSFormatError("unsupported label type")
        if length == 0:
            return ".".join(labels), (offset + 1 if end is None else end)
        if offset + 1 + length > len(data):
            raise DNSFormatError("label runs past the end of the message")
        labels.append(data[offset + 1 : offset + 1 + length].decode("ascii", errors="replace"))
        offset += 1 + length


def normalize_name(name: str) -> str:
    """Lower-case ``name`` and drop a trailing dot: DNS names compare case-insensitively (RFC 4343)."""
    return name.rstrip(".").lower()


def reverse_pointer_address(name: str) -> IPv4Address | None:
    """``"2.0.17.172.in-addr.arpa"`` -> 172.17.0.2; None when ``name`` is no IPv4 reverse name."""
    name = normalize_name(name)
    suffix = ".in-addr.arpa"
    if not name.endswith(suffix):
        return None
    parts = name[: -len(suffix)].split(".")
    if len(parts) != 4:
        return None
    try:
        return IPv4Address(".".join(reversed(parts)))
    except ValueError:
        return None


def build_query(name: str, qtype: int = TYPE_A, ident: int | None = None) -> bytes:
    """Wire bytes of a recursive standard query for ``name`` (used by tests and clients)."""
    ident = random.getrandbits(16) if ident is None else ident
    return Message(ident, FLAG_RD, [Question(name, qtype)]).encode()


class Resolver(Protocol):
    """What a network knows. Names arrive lower-cased without a trailing dot; ``client_ip`` is
    the address the query came from (so answers can depend on the asking container's networks)."""

    def lookup(self, name: str, client_ip: IPv4Address) -> list[IPv4Address] | None: ...

    def reverse(self, ip: IPv4Address, client_ip: IPv4Address) -> str | None: ...


class DNSServer(asyncio.DatagramProtocol):
    """DNS over UDP and TCP for one network's gateway address.

    ``resolver``: see ``Resolver``; ``upstreams``: ``(ip, port)`` servers that get unknown names
    (empty: answer NXDOMAIN); ``ttl``: seconds on our answers; ``forward_timeout``: seconds per
    upstream attempt.
    """

    def __init__(
        self,
        resolver: Resolver,
        upstreams: Sequence[tuple[str, int]] = (),
        ttl: int = DEFAULT_TTL,
        forward_timeout: float = 2.0,
    ) -> None:
        self.resolver = resolver
        self.upstreams = list(upstreams)
        self.ttl = ttl
        self.forward_timeout = forward_timeout
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int = 53) -> None:
        """Listen on UDP and TCP ``host:port`` (``port=0``: one free port for both, in ``self.port``).

        Raises SystemError_ when the address cannot be bound.
        """
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port), family=socket.AF_INET)
            assert self._udp is not None
            self.port = self._udp.get_extra_info("sockname")[1]
            self._tcp = await asyncio.start_server(self._serve_tcp, host, self.port, reuse_address=True)
        except OSError as exc:
            self.close()
            raise SystemError_(f"failed to start DNS server on {host}:{port}: {exc.strerror}") from exc

    def close(self) -> None:
        """Stop listening and cancel queries in flight. Safe to call twice."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        for task in list(self._tasks):
            task.cancel()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._udp = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer_udp(self._udp, data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_udp(self, udp: asyncio.DatagramTransport | None, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.respond(data, _client_ip(addr), limit=UDP_LIMIT)
        if reply is not None and udp is not None and not udp.is_closing():
            udp.sendto(reply, addr)

    async def respond(self, query: bytes, client_ip: IPv4Address, limit: int | None = None) -> bytes | None:
        """Answer one query message; None when it must be dropped (not a query, undecodable header).

        ``limit``: the largest reply allowed (UDP: 512); longer replies lose answers and get TC set.
        """
        try:
            message = Message.decode(query)
        except DNSFormatError:
            if len(query) < _HEADER.size:
                return None
            message = Message(struct.unpack_from("!H", query)[0], FLAG_RD)
            return self._reply(message, RCODE_FORMERR).encode()
        if message.flags & FLAG_QR:
            return None
        reply = self.answer(message, client_ip)
        if reply is None:
            forwarded = await self._forward(query)
            if forwarded is not None:
                return forwarded
            reply = self._reply(message, RCODE_SERVFAIL)
        return _fit(reply, limit)

    def answer(self, query: Message, client_ip: IPv4Address) -> Message | None:
        """Build the reply from the resolver; None when the name is unknown and upstreams exist."""
        if query.opcode != 0:
            return self._reply(query, RCODE_NOTIMP)
        if len(query.questions) != 1:
            return self._reply(query, RCODE_FORMERR)
        question = query.questions[0]
        name = normalize_name(question.name)
        reverse_ip = reverse_pointer_address(name) if question.qtype in (TYPE_PTR, TYPE_ANY) else None
        if reverse_ip is not None:
            target = self.resolver.reverse(reverse_ip, client_ip)
            if target is None:
                return None if self.upstreams else self._reply(query, RCODE_NXDOMAIN)
            rdata = encode_name(target.rstrip(".") + ".")
            return self._reply(query, RCODE_NOERROR, [self._record(question, TYPE_PTR, rdata)])
        addresses = self.resolver.lookup(name, client_ip)
        if addresses is None:
            return None if self.upstreams else self._reply(query, RCODE_NXDOMAIN)
        records = []
        if question.qtype in (TYPE_A, TYPE_ANY):
            shuffled = random.sample(list(addresses), len(addresses))
            records = [self._record(question, TYPE_A, ip.packed) for ip in shuffled]
        return self._reply(query, RCODE_NOERROR, records)

    def _record(self, question: Question, rtype: int, rdata: bytes) -> ResourceRecord:
        return ResourceRecord(question.name, rtype, CLASS_IN, self.ttl, rdata)

    def _reply(self, query: Message, rcode: int, answers: list[ResourceRecord] | None = None) -> Message:
        flags = FLAG_QR | (query.flags & (0x7800 | FLAG_RD)) | rcode
        if rcode in (RCODE_NOERROR, RCODE_NXDOMAIN):
            flags |= FLAG_AA
        if self.upstreams:
            flags |= FLAG_RA
        return Message(query.id, flags, list(query.questions), answers or [])

    async def _forward(self, query: bytes) -> bytes | None:
        ident = query[:2]
        for host, port in self.upstreams:
            try:
                reply = await asyncio.wait_for(_udp_exchange(host, port, query), self.forward_timeout)
                if reply[:2] == ident and len(reply) > 2 and reply[2] & (FLAG_TC >> 8):
                    reply = await asyncio.wait_for(_tcp_exchange(host, port, query), self.forward_timeout)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                continue
            if reply[:2] == ident:
                return reply
        return None

    async def wait_closed(self) -> None:
        """After ``close``: wait until queries and TCP connections in flight are gone."""
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _client_ip(writer.get_extra_info("peername"))
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 30))[0]
                reply = await self.respond(await reader.readexactly(size), client)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # from close(); Python 3.11's start_server would log a cancelled handler as an error
        finally:
            self._tasks.discard(task)
            writer.close()


def _client_ip(addr: tuple[str, int] | None) -> IPv4Address:
    try:
        ip = ip_address(addr[0]) if addr else None
    except ValueError:
        ip = None
    return ip if isinstance(ip, IPv4Address) else IPv4Address(0)


def _fit(reply: Message, limit: int | None) -> bytes:
    data = reply.encode()
    while limit is not None and len(data) > limit and reply.answers:
        reply.answers.pop()
        reply.flags |= FLAG_TC
        data = reply.encode()
    return data


async def _udp_exchange(host: str, port: int, query: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(sock, query)
        return await loop.sock_recv(sock, 65535)


async def _tcp_exchange(host: str, port: int, query: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("!H", len(query)) + query)
        await writer.drain()
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        return await reader.readexactly(size)
    finally:
        writer.close()
