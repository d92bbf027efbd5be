"""DNS wire format: a lean parser and builder for the questions a DNSBL gets (one question, maybe an
EDNS0 OPT record), and dnspython for everything else (odd opcodes, extra records, malformed packets).

Sizes are enforced here: a UDP answer never exceeds what the query allows (512 bytes, or the EDNS0
payload size capped at MAX_UDP), so the server cannot be used to amplify traffic; an answer that does
not fit is sent empty with TC set, and the client retries over TCP.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode

from relayguard.dnsbl.answer import (
    FORMERR,
    NOTIMP,
    REFUSED,
    RR,
    T_OPT,
    Result,
    ZoneSet,
    encode_name,
)

MAX_UDP = 1232  # the DNS flag day 2020 default: no IP fragmentation
MAX_TCP = 65535
EDNS_VERSION = 0

_HDR = struct.Struct("!HHHHHH")
_RR_HEAD = struct.Struct("!HHIH")


class Malformed(ValueError):
    """A packet we cannot even answer FORMERR to (too short for a header, or a response)."""


@dataclass(slots=True)
class Question:
    qid: int
    flags: int
    labels: tuple[str, ...]  # lowercase
    qname_end: int  # offset just after QNAME in the packet
    qtype: int
    qclass: int
    edns: bool
    edns_payload: int
    edns_do: bool
    edns_bad_version: bool
    # offsets of each label of QNAME in the packet, for compression pointers to the zone apex
    label_offsets: tuple[int, ...]


def parse_question(data: bytes) -> Question:
    """Parse a query. Raises Malformed (drop it) or ValueError (answer FORMERR)."""
    n = len(data)
    if n < 12:
        raise Malformed("short header")
    qid, flags, qd, an, ns, ar = _HDR.unpack_from(data, 0)
    if flags & 0x8000:
        raise Malformed("a response, not a query")
    if qd != 1:
        raise ValueError("qdcount must be 1")
    if an or ns:
        raise ValueError("unexpected answer/authority records in a query")
    pos = 12
    labels: list[str] = []
    offsets: list[int] = []
    total = 0
    while True:
        if pos >= n:
            raise ValueError("truncated question")
        ln = data[pos]
        if ln == 0:
            pos += 1
            break
        if ln > 63:
            raise ValueError("compression or bad label in question")
        offsets.append(pos)
        end = pos + 1 + ln
        if end > n:
            raise ValueError("truncated label")
        total += ln + 1
        if total > 254:
            raise ValueError("name too long")
        labels.append(data[pos + 1 : end].decode("latin-1").lower())
        pos = end
    if pos + 4 > n:
        raise ValueError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    qname_end = pos
    pos += 4
    edns = False
    payload = 512
    do = False
    badvers = False
    if ar:
        # only one OPT record is understood here; anything else goes to the general path
        if ar != 1 or pos + 11 > n or data[pos] != 0:
            raise ValueError("additional records other than one OPT")
        rtype, rclass, ttl, rdlen = _RR_HEAD.unpack_from(data, pos + 1)
        if rtype != T_OPT or pos + 11 + rdlen != n:
            raise ValueError("bad OPT record")
        edns = True
        payload = max(512, rclass)
        do = bool(ttl & 0x8000)
        badvers = ((ttl >> 16) & 0xFF) != EDNS_VERSION
        pos += 11 + rdlen
    if pos != n:
        raise ValueError("trailing bytes")
    return Question(qid, flags, tuple(labels), qname_end, qtype, qclass, edns, payload, do, badvers,
                    tuple(offsets))


def _owner(q: Question, rr: RR) -> bytes:
    if rr.owner is None:
        return b"\xc0\x0c"
    # the zone apex is a suffix of the question name: point at it
    zl = len(rr.owner.split(".")) if rr.owner else 0
    idx = len(q.labels) - zl
    if 0 <= idx < len(q.label_offsets):
        off = q.label_offsets[idx]
        return bytes((0xC0 | (off >> 8), off & 0xFF))
    if idx == len(q.labels):
        return b"\x00"
    return encode_name(rr.owner)


def _rr_bytes(q: Question, rr: RR) -> bytes:
    return _owner(q, rr) + _RR_HEAD.pack(rr.rtype, 1, rr.ttl, len(rr.rdata)) + rr.rdata


def opt_record(payload: int = MAX_UDP, ext_rcode: int = 0) -> bytes:
    return b"\x00" + _RR_HEAD.pack(T_OPT, payload, (ext_rcode << 24), 0)


def build_response(data: bytes, q: Question, res: Result, limit: int) -> bytes:
    """Answer bytes for q; never longer than limit (TC and no records if the records do not fit)."""
    flags = 0x8000 | (q.flags & 0x0100)  # QR, keep RD; never RA
    if res.aa:
        flags |= 0x0400
    flags |= res.rcode & 0xF
    question = data[12 : q.qname_end + 4]
    opt = opt_record() if q.edns else b""
    an = [_rr_bytes(q, r) for r in res.answer]
    ns = [_rr_bytes(q, r) for r in res.authority]
    body = b"".join(an) + b"".join(ns)
    size = 12 + len(question) + len(body) + len(opt)
    if size > limit:
        flags |= 0x0200  # TC: the client retries over TCP
        hdr = _HDR.pack(q.qid, flags, 1, 0, 0, 1 if opt else 0)
        return hdr + question + opt
    hdr = _HDR.pack(q.qid, flags, 1, len(an), len(ns), 1 if opt else 0)
    return hdr + question + body + opt


def udp_limit(q: Question) -> int:
    return min(q.edns_payload, MAX_UDP) if q.edns else 512


def error_response(data: bytes, rcode: int) -> bytes | None:
    """FORMERR/NOTIMP/REFUSED for a packet the lean parser refused: dnspython reads what it can.

    Returns None when not even the header is usable (the packet is dropped).
    """
    try:
        msg = dns.message.from_wire(data, question_only=True)
    except dns.exception.DNSException:
        if len(data) < 12 or data[2] & 0x80:
            return None
        qid, flags = struct.unpack_from("!HH", data, 0)
        # header only: echo the id and opcode, no question section
        return _HDR.pack(qid, 0x8000 | (flags & 0x7900) | rcode, 0, 0, 0, 0)
    if msg.flags & dns.flags.QR:
        return None
    resp = dns.message.make_response(msg)
    resp.flags &= ~dns.flags.AA
    resp.set_rcode(dns.rcode.Rcode(rcode))
    wire: bytes = resp.to_wire(max_size=512)
    return wire


def answer_packet(zs: ZoneSet, data: bytes, peer: str | None, *, tcp: bool = False) -> bytes | None:
    """The whole answer to one packet, or None to stay silent (garbage, responses, acl ignore)."""
    try:
        q = parse_question(data)
    except Malformed:
        return None
    except ValueError:
        return general_answer(zs, data, peer, tcp=tcp)
    opcode = (q.flags >> 11) & 0xF
    if opcode != 0:
        return error_response(data, NOTIMP)
    if q.edns and q.edns_bad_version:
        # BADVERS (16): extended rcode 1 in the OPT record, header rcode 0
        hdr = _HDR.pack(q.qid, 0x8000 | (q.flags & 0x0100), 1, 0, 0, 1)
        return hdr + data[12 : q.qname_end + 4] + opt_record(ext_rcode=1)
    res = zs.resolve(q.labels, q.qtype, q.qclass, peer)
    if res.drop:
        return None
    return build_response(data, q, res, MAX_TCP if tcp else udp_limit(q))


def general_answer(zs: ZoneSet, data: bytes, peer: str | None, *, tcp: bool) -> bytes | None:
    """The dnspython path for queries outside the lean parser's shape; FORMERR if they are malformed."""
    try:
        msg = dns.message.from_wire(data)
    except dns.exception.DNSException:
        return error_response(data, FORMERR)
    if msg.flags & dns.flags.QR:
        return None
    if msg.opcode() != dns.opcode.QUERY:
        return error_response(data, NOTIMP)
    if len(msg.question) != 1:
        return error_response(data, FORMERR)
    # a well-formed query the lean parser did not take (e.g. extra records, compression in the
    # question): re-encode the question plainly and answer it through the normal path
    rrset = msg.question[0]
    plain = dns.message.Message(id=msg.id)
    plain.flags = msg.flags
    plain.question = [rrset]
    if msg.edns >= 0:
        plain.use_edns(0, payload=msg.payload)
    wire: bytes = plain.to_wire()
    try:
        q = parse_question(wire)
    except ValueError:
        return error_response(data, FORMERR)
    res = zs.resolve(q.labels, q.qtype, q.qclass, peer)
    if res.drop:
        return None
    return build_response(wire, q, res, MAX_TCP if tcp else udp_limit(q))


def refused(data: bytes) -> bytes | None:
    return error_response(data, REFUSED)
