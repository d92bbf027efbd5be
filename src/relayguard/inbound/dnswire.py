"""A small, strict DNS wire codec for the questions checks ask most (A, AAAA, TXT).

Why not dnspython's Message for these: building and parsing one costs hundreds of microseconds in
Python, and a message with six lists asks a dozen or more questions; the bench showed that as most of
the lists' CPU. This codec does only what the resolver needs: encode one question; decode the header,
check the echoed question, read A/AAAA/TXT answers and the SOA minimum of a negative answer. Every
read is bounds-checked and compression pointers may only point backwards (so no loops): hostile bytes
raise `WireError`, nothing else. Anything else (MX, PTR, ... for SPF) is decoded by dnspython.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_TXT = 16
TYPE_AAAA = 28
FAST_TYPES = frozenset({TYPE_A, TYPE_AAAA, TYPE_TXT})
CLASS_IN = 1
FLAG_QR = 0x8000
FLAG_TC = 0x0200
FLAG_RD = 0x0100
MAX_POINTERS = 32  # compression pointers followed in one name


class WireError(ValueError):
    """The bytes are not a well-formed DNS message (or not an answer to our question)."""


@dataclass(frozen=True, slots=True)
class ARecord:
    rdtype: int
    address: str


@dataclass(frozen=True, slots=True)
class TxtRecord:
    strings: tuple[bytes, ...]
    rdtype: int = TYPE_TXT


@dataclass(frozen=True, slots=True)
class Decoded:
    id: int
    flags: int
    rcode: int
    records: tuple[ARecord | TxtRecord, ...]
    min_ttl: int | None  # lowest TTL of the matching records, None when there are none
    soa_negative_ttl: int | None  # min(SOA TTL, SOA MINIMUM) from the authority section, if any

    @property
    def truncated(self) -> bool:
        return bool(self.flags & FLAG_TC)


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        b = label.encode("ascii")
        if not 0 < len(b) < 64:
            raise WireError(f"bad label in {name!r}")
        out.append(len(b))
        out += b
    out.append(0)
    if len(out) > 255:
        raise WireError(f"name too long: {name!r}")
    return bytes(out)


def encode_query(qid: int, name: str, rdtype: int, rd: bool = True) -> bytes:
    header = struct.pack("!HHHHHH", qid, FLAG_RD if rd else 0, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", rdtype, CLASS_IN)


def _read_name(buf: bytes, pos: int) -> tuple[str, int]:
    """(lower-case name without the final dot, position after it in the original stream)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    total = 0
    while True:
        if pos >= len(buf):
            raise WireError("name runs past the end")
        n = buf[pos]
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(buf):
                raise WireError("truncated pointer")
            target = ((n & 0x3F) << 8) | buf[pos + 1]
            if target >= pos:
                raise WireError("forward compression pointer")
            jumps += 1
            if jumps > MAX_POINTERS:
                raise WireError("too many compression pointers")
            if end < 0:
                end = pos + 2
            pos = target
            continue
        if n & 0xC0:
            raise WireError("unknown label type")
        pos += 1
        if n == 0:
            break
        if pos + n > len(buf):
            raise WireError("label runs past the end")
        total += n + 1
        if total > 255:
            raise WireError("name too long")
        labels.append(buf[pos : pos + n].decode("latin-1").lower())
        pos += n
    return ".".join(labels), (end if end >= 0 else pos)


def _u16(buf: bytes, pos: int) -> int:
    if pos + 2 > len(buf):
        raise WireError("short read")
    return int.from_bytes(buf[pos : pos + 2], "big")


def decode_response(buf: bytes, qid: int, qname: str, qtype: int) -> Decoded:
    """Decode an answer to (qid, qname, qtype); WireError when it is malformed or not ours."""
    if len(buf) < 12:
        raise WireError("shorter than a header")
    rid, flags, qd, an, ns, _ar = struct.unpack_from("!HHHHHH", buf, 0)
    if rid != qid:
        raise WireError("id mismatch")
    if not flags & FLAG_QR:
        raise WireError("not a response")
    rcode = flags & 0xF
    pos = 12
    want = qname.lower().rstrip(".")
    if qd != 1:
        if flags & FLAG_TC and qd == 0:
            return Decoded(rid, flags, rcode, (), None, None)
        raise WireError("expected one question")
    name, pos = _read_name(buf, pos)
    if name != want or _u16(buf, pos) != qtype or _u16(buf, pos + 2) != CLASS_IN:
        raise WireError("answer to another question")
    pos += 4
    records: list[ARecord | TxtRecord] = []
    min_ttl: int | None = None
    soa_ttl: int | None = None
    for section, count in ((0, an), (1, ns)):
        for _ in range(count):
            _owner, pos = _read_name(buf, pos)
            if pos + 10 > len(buf):
                raise WireError("truncated record header")
            rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", buf, pos)
            pos += 10
            end = pos + rdlen
            if end > len(buf):
                raise WireError("rdata runs past the end")
            if ttl & 0x80000000:
                ttl = 0  # RFC 2181 §8: a TTL with the top bit set is treated as zero
            if section == 0 and rtype == qtype and rclass == CLASS_IN:
                records.append(_rdata(buf, pos, end, rtype))
                min_ttl = ttl if min_ttl is None else min(min_ttl, ttl)
            elif section == 1 and rtype == TYPE_SOA and soa_ttl is None:
                p = pos
                _m, p = _read_name(buf, p)
                _r, p = _read_name(buf, p)
                if p + 20 > end:
                    raise WireError("short SOA")
                minimum = struct.unpack_from("!I", buf, p + 16)[0]
                soa_ttl = min(ttl, minimum)
            pos = end
    return Decoded(rid, flags, rcode, tuple(records), min_ttl, soa_ttl)


def _rdata(buf: bytes, pos: int, end: int, rtype: int) -> ARecord | TxtRecord:
    data = buf[pos:end]
    if rtype == TYPE_A:
        if len(data) != 4:
            raise WireError("A record is not 4 bytes")
        return ARecord(TYPE_A, str(ipaddress.IPv4Address(data)))
    if rtype == TYPE_AAAA:
        if len(data) != 16:
            raise WireError("AAAA record is not 16 bytes")
        return ARecord(TYPE_AAAA, str(ipaddress.IPv6Address(data)))
    if rtype == TYPE_TXT:
        strings = []
        p = 0
        while p < len(data):
            n = data[p]
            if p + 1 + n > len(data):
                raise WireError("TXT string runs past its record")
            strings.append(data[p + 1 : p + 1 + n])
            p += 1 + n
        return TxtRecord(tuple(strings))
    raise WireError(f"type {rtype} is not decoded here")
