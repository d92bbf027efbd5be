"""DNS wire format: a lean parser and builder for the questions a DNSBL gets (one question, maybe an
EDNS0 OPT record), and dnspython for everything else (odd opcodes, extra records, malformed packets).

Sizes are enforced here: a UDP answer never exceeds what the query allows (512 bytes, or the EDNS0
payload size capped at MAX_UDP), so the server cannot be used to amplify traffic; an answer that does
not fit is sent empty with TC set, and the client retries over TCP.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

from relayguard.dnsbl.answer import (
    FORMERR,
    NOTIMP,
    NXDOMAIN,
    REFUSED,
    RR,
    T_OPT,
    T_SOA,
    Result,
    Zone,
    ZoneSet,
    encode_name,
    fast_via_query,
    ip4_of_labels,
    soa_rdata,
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
        labels.append(data[pos + 1 : end].lower().decode("latin-1"))
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
    import dns.exception  # dnspython only on the rare paths: it costs a fifth of a second to import
    import dns.flags
    import dns.message
    import dns.rcode

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
    import dns.exception
    import dns.flags
    import dns.message
    import dns.opcode

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


# ---------------------------------------------------------------------------------------------------
# The lean fast path: plain A/TXT questions to simple zones, answered straight from bytes
# ---------------------------------------------------------------------------------------------------

_SIMPLE_KINDS = frozenset({"ip4set", "ip4tset", "ip4trie", "ip6trie", "ip6tset", "dnset", "live"})
NOT_FAST = object()


class FastZone:
    __slots__ = ("handlers", "reads_ip4", "soa_tail", "ttl", "wire", "zone")

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.wire = encode_name(zone.name) if zone.name else b"\x00"
        # 1: fast(ip4, qtype, out); 2: fast(name, labels, qtype, out); 0: through query()
        self.handlers: list[tuple[int, Any]] = [
            (1 if ds.kind in ("ip4set", "ip4tset", "ip4trie") else 2 if ds.kind in ("dnset", "live") else 0, ds)
            for ds in zone.datasets]
        self.reads_ip4 = any(k == 1 for k, _ in self.handlers)  # else the IPv4 reading of a name is not needed
        soa = zone.soa
        if soa is not None:
            rdata = soa_rdata(soa, zone.serial)
            self.soa_tail: bytes | None = _RR_HEAD.pack(T_SOA, 1, soa.minimum, len(rdata)) + rdata
        else:
            self.soa_tail = None
        self.ttl = zone.ttl


class FastPath:
    """Per-ZoneSet tables for answer_fast; built once per ZoneSet (a reload builds a new one)."""

    def __init__(self, zs: ZoneSet) -> None:
        self.zs = zs
        self.engine: Any = None  # native.engine_for builds the compiled engine on first use
        self.by_wire: dict[bytes, FastZone] = {}
        lengths: set[int] = set()
        for z in zs.zones:
            fz = FastZone(z)
            simple = (z.acl is None and zs.global_acl is None and zs.lazy and z.expires is None
                      and all(ds.kind in _SIMPLE_KINDS for ds in z.datasets))
            # the first zone of a name wins, as in ZoneSet.find_zone; a zone with non-simple parts makes
            # its name (and so every name under it) go the general way
            if fz.wire in self.by_wire:
                continue
            self.by_wire[fz.wire] = fz if simple else NOT_FAST  # type: ignore[assignment]
            lengths.add(len(fz.wire))
        # longest zone first, as ZoneSet.find_zone
        self.lengths = sorted(lengths, reverse=True)
        # IPv4-only zones with no zone below them: one regex recognises "d.c.b.a.<zone> A|TXT IN"
        names = [z.name for z in zs.zones]
        ip4: dict[bytes, FastZone] = {}
        for wire, fz in self.by_wire.items():
            if fz is NOT_FAST or not fz.handlers or any(k != 1 for k, _ in fz.handlers):  # type: ignore[comparison-overlap]
                continue
            if any(nm != fz.zone.name and nm.endswith("." + fz.zone.name) for nm in names) or not fz.zone.name:
                continue
            ip4[wire[:-1]] = fz
        self.ip4_by_wire = ip4
        self.ip4_re: re.Pattern[bytes] | None = None
        if ip4:
            # the whole plain query up to QCLASS, header included: id, flags of a plain query (QR, opcode,
            # AA, TC clear), one question, no answer or authority records, ARCOUNT 0 or 1 (an OPT)
            header = rb"..[\x00-\x07].\x00\x01\x00\x00\x00\x00\x00([\x00\x01])"
            octet = rb"(\x01\d|\x02\d\d|\x03\d\d\d)"
            zones = b"|".join(re.escape(w) for w in sorted(ip4, key=len, reverse=True))
            self.ip4_re = re.compile(header + octet * 4 + rb"(" + zones + rb")\x00\x00([\x01\x10])\x00\x01",
                                     re.IGNORECASE | re.DOTALL)


def fast_path(zs: ZoneSet) -> FastPath:
    fp: FastPath | None = zs.fast
    if fp is None:
        fp = zs.fast = FastPath(zs)
    return fp


_A_HEAD = struct.Struct("!HHHIH")  # pointer, type, class, ttl, rdlength


def answer_fast(zs: ZoneSet, data: bytes, peer: str | None) -> bytes | None:
    """answer_packet for UDP, with a shortcut for the questions a DNSBL mostly gets.

    Anything unusual (other types, classes, opcodes, extra records, zones with acl or generic data, the
    zone apex) falls back to answer_packet, which gives the same answers the slow way.
    """
    fp = zs.fast or fast_path(zs)
    rx = fp.ip4_re
    n = len(data)
    if rx is not None:
        m = rx.match(data)
        if m is not None:
            resp = _answer_ip4(fp, data, m, n)
            if resp is not None:
                return resp
    if n < 17 or data[2] & 0xF8 or data[4:10] != b"\x00\x01\x00\x00\x00\x00" or data[10] or data[11] > 1:
        return answer_packet(zs, data, peer)
    # walk QNAME
    pos = 12
    offs = []
    while True:
        ln = data[pos] if pos < n else 255
        if ln == 0:
            break
        if ln > 63:
            return answer_packet(zs, data, peer)
        offs.append(pos)
        pos += ln + 1
    end = pos + 5  # after QTYPE and QCLASS
    if end > n or pos - 12 > 254:
        return answer_packet(zs, data, peer)
    qtype = (data[pos + 1] << 8) | data[pos + 2]
    if (qtype != 1 and qtype != 16) or data[pos + 3] != 0 or data[pos + 4] != 1:
        return answer_packet(zs, data, peer)
    edns = data[11] == 1
    limit = 512
    if edns:
        limit = _edns_limit(data, end, n)
        if not limit:
            return answer_packet(zs, data, peer)
    elif end != n:
        return answer_packet(zs, data, peer)
    qn = data[12 : pos + 1].lower()
    fz = None
    zstart = 0
    for zl in fp.lengths:
        cut = len(qn) - zl
        if cut <= 0:
            continue
        cand = fp.by_wire.get(qn[cut:])
        if cand is not None and (cut + 12) in offs:
            fz = cand
            zstart = cut + 12
            break
    if fz is None or fz is NOT_FAST:
        return answer_packet(zs, data, peer)
    # labels relative to the zone, and the IPv4 reading of a 4-label name
    labels = tuple([qn[o - 11 : o - 11 + data[o]].decode("latin-1") for o in offs if o < zstart])
    ip4: int | None = None
    if len(labels) == 4 and fz.reads_ip4:
        ip4 = ip4_of_labels(labels)
    name = ".".join(labels)
    out: list[bytes] = []
    found = False
    for kind, ds in fz.handlers:
        if kind == 1:
            hit = ds.fast(ip4, qtype, out)
        elif kind == 2:
            hit = ds.fast(name, labels, qtype, out)
        else:
            hit = fast_via_query(ds, labels, qtype, out, peer)
        found = found or hit
    return _finish(data, end, edns, limit, out, found, fz, zstart)


def _edns_limit(data: bytes, end: int, n: int) -> int:
    """UDP size limit from the query's OPT record right at end; 0 if it is not a plain version-0 OPT."""
    if end + 11 > n or data[end] != 0 or data[end + 1] != 0 or data[end + 2] != 41 or data[end + 6] != 0:
        return 0
    if end + 11 + ((data[end + 9] << 8) | data[end + 10]) != n:
        return 0
    return min(max(512, (data[end + 3] << 8) | data[end + 4]), MAX_UDP)


def _answer_ip4(fp: FastPath, data: bytes, m: re.Match[bytes], n: int) -> bytes | None:
    """The regex-recognised IPv4 question; None to let the walking path decide."""
    end = m.end()
    g = m.groups()
    edns = g[0] == b"\x01"
    if edns:
        limit = _edns_limit(data, end, n)
        if not limit:
            return None
    elif end != n:
        return None
    else:
        limit = 512
    try:
        ip = (_OCT[g[4]] << 24) | (_OCT[g[3]] << 16) | (_OCT[g[2]] << 8) | _OCT[g[1]]
    except KeyError:  # an octet above 255: the walking path answers it
        return None
    fz = fp.ip4_by_wire[g[5].lower()]
    qtype = g[6][0]
    out: list[bytes] = []
    found = False
    for _k, ds in fz.handlers:
        if ds.fast(ip, qtype, out):
            found = True
    return _finish(data, end, edns, limit, out, found, fz, m.start(6))


def _finish(data: bytes, end: int, edns: bool, limit: int, out: list[bytes], found: bool, fz: FastZone,
            zstart: int) -> bytes:
    question = data[12:end]
    flags = 0x8400 | (data[2] & 0x01) << 8
    opt = OPT_DEFAULT if edns else b""
    if out:
        body = b"".join([b"\xc0\x0c" + rr for rr in out])
        ancount = len(out)
        nscount = 0
    else:
        if not found:
            flags |= NXDOMAIN
        tail = fz.soa_tail
        if tail is not None:
            body = bytes((0xC0 | (zstart >> 8), zstart & 0xFF)) + tail
            nscount = 1
        else:
            body = b""
            nscount = 0
        ancount = 0
    if 12 + len(question) + len(body) + len(opt) > limit:
        return _HDR.pack((data[0] << 8) | data[1], flags | 0x0200, 1, 0, 0, 1 if edns else 0) + question + opt
    return _HDR.pack((data[0] << 8) | data[1], flags, 1, ancount, nscount, 1 if edns else 0) + question + body + opt


# every way to write an octet as a length-prefixed label ("7", "07", "007"), to its value
_OCT: dict[bytes, int] = {}
for _v in range(256):
    for _w in range(len(str(_v)), 4):
        _t = str(_v).zfill(_w).encode()
        _OCT[bytes((len(_t),)) + _t] = _v
OPT_DEFAULT = b"\x00" + _RR_HEAD.pack(T_OPT, MAX_UDP, 0, 0)
