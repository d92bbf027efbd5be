"""Pure lookups: (zone data, question, peer) -> rcode and resource records. No sockets, no wire bytes.

The rules follow rbldnsd (checked by the differential test): the first matching zone answers; every
dataset of the zone is consulted and all their records are merged; the zone apex answers NS and SOA;
a name no dataset knows is NXDOMAIN; negative and empty answers carry the SOA in the authority section
with the SOA's minimum as TTL.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from relayguard.dnsbl.datafile import Meta, Rec, Soa

# RR types and the classes of questions rbldnsd distinguishes
T_A = 1
T_NS = 2
T_SOA = 6
T_MX = 15
T_TXT = 16
T_AAAA = 28
T_OPT = 41
T_IXFR = 251
T_AXFR = 252
T_ANY = 255
C_IN = 1
C_CH = 3
C_ANY = 255

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5


@dataclass(slots=True)
class Limits:
    """rbldnsd -t defttl:minttl:maxttl; 0 for min/max means no bound."""

    defttl: int = 2100
    minttl: int = 0
    maxttl: int = 0

    def clamp(self, ttl: int) -> int:
        if self.minttl and ttl < self.minttl:
            ttl = self.minttl
        if self.maxttl and ttl > self.maxttl:
            ttl = self.maxttl
        return ttl

    def ttl_of(self, meta: Meta) -> int:
        return self.clamp(meta.ttl) if meta.ttl is not None else self.defttl


class Query:
    """One question, relative to the zone (or sub-zone) a dataset serves.

    labels are lowercase, leftmost first; the IPv4/IPv6 readings of reversed names are computed once.
    """

    __slots__ = ("_ip4", "_ip6", "labels", "peer", "qtype")

    def __init__(self, labels: tuple[str, ...], qtype: int, peer: str | None = None) -> None:
        self.labels = labels
        self.qtype = qtype
        self.peer = peer
        self._ip4: int | None = -1
        self._ip6: int | None = -1

    def sub(self, labels: tuple[str, ...]) -> Query:
        return Query(labels, self.qtype, self.peer)

    @property
    def ip4(self) -> int | None:
        """`4.3.2.1` -> 0x01020304; None unless exactly four decimal labels, each 0-255."""
        if self._ip4 == -1:
            self._ip4 = ip4_of_labels(self.labels)
        return self._ip4

    @property
    def ip6(self) -> int | None:
        """32 reversed nibble labels -> the 128-bit address; None otherwise."""
        if self._ip6 == -1:
            self._ip6 = ip6_of_labels(self.labels)
        return self._ip6


def ip4_of_labels(labels: Sequence[str]) -> int | None:
    if len(labels) != 4:
        return None
    v = 0
    for lab in reversed(labels):
        if not (0 < len(lab) <= 3) or not lab.isdigit() or not lab.isascii():
            return None
        o = int(lab)
        if o > 255:
            return None
        v = (v << 8) | o
    return v


_HEX = frozenset("0123456789abcdef")


def ip6_of_labels(labels: Sequence[str]) -> int | None:
    if len(labels) != 32:
        return None
    s = "".join(reversed(labels))
    if len(s) != 32 or not set(s) <= _HEX:
        return None
    return int(s, 16)


def ip4_text(a: int) -> str:
    return f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"


def ip6_text(a: int) -> str:
    return str(ipaddress.IPv6Address(a))


@dataclass(slots=True)
class RR:
    rtype: int
    ttl: int
    rdata: bytes
    owner: str | None = None  # None: the question name; otherwise a name relative to nothing (absolute)


class Answer:
    """Records collected for one question. Duplicates (same type and data) are dropped, as in rbldnsd."""

    __slots__ = ("rrs",)

    def __init__(self) -> None:
        self.rrs: list[RR] = []

    def add(self, rtype: int, ttl: int, rdata: bytes) -> None:
        for r in self.rrs:
            if r.rtype == rtype and r.rdata == rdata:
                return
        self.rrs.append(RR(rtype, ttl, rdata))


def expand_txt(template: str, value: str, subst: dict[str, str], base: str | None) -> str:
    """A TXT template -> text: `$` is the listed value, `$$` a dollar, `$0`-`$9` the variables.

    With a base template (`$=`), the entry text takes the place of `$=` in it (an entry text starting with
    `=` opts out); an empty entry text stands for `$`. At most 255 characters, as one TXT string holds.
    """
    return expand_txt_whole(template, value, subst, base)[:255]


def expand_txt_whole(template: str, value: str, subst: dict[str, str], base: str | None) -> str:
    """expand_txt before the cut to 255 characters (the compiled path cuts after putting in the value)."""
    if base is not None:
        template = template[1:] if template.startswith("=") else base.replace("$=", template or "$")
    if "$" not in template:
        return template
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        nxt = template[j + 1 : j + 2]
        if nxt.isdigit() and nxt.isascii():
            v = subst.get(nxt)
            out.append(v if v is not None else "$" + nxt)
            i = j + 2
        elif nxt == "$":
            out.append("$")
            i = j + 2
        else:
            out.append(value)
            i = j + 1
    return "".join(out)


def txt_rdata(text: str) -> bytes:
    b = text.encode("latin-1", "replace")[:255]
    return bytes((len(b),)) + b


def add_a_txt(ans: Answer, qtype: int, rec: Rec, value: str, meta: Meta, ttl: int) -> None:
    """The A and/or TXT records of one listed entry, as the question asks."""
    if qtype in (T_A, T_ANY):
        ans.add(T_A, ttl, rec.a)
    if (qtype in (T_TXT, T_ANY)) and (rec.txt or meta.base_template is not None):
        text = expand_txt(rec.txt, value, meta.subst, meta.base_template)
        if text:
            ans.add(T_TXT, ttl, txt_rdata(text))


_TAIL = struct.Struct("!HHIH")
_A_TAILS: dict[tuple[bytes, int], bytes] = {}


def emit_a_txt(out: list[bytes], qtype: int, rec: Rec, value: str, meta: Meta, ttl: int) -> None:
    """add_a_txt for the fast path: record bytes from TYPE on (the owner is the question name)."""
    if qtype == T_A:
        key = (rec.a, ttl)
        rr = _A_TAILS.get(key)
        if rr is None:
            rr = _TAIL.pack(T_A, 1, ttl, 4) + rec.a
            if len(_A_TAILS) < 4096:
                _A_TAILS[key] = rr
    elif rec.txt or meta.base_template is not None:
        text = expand_txt(rec.txt, value, meta.subst, meta.base_template)
        if not text:
            return
        rd = txt_rdata(text)
        rr = _TAIL.pack(T_TXT, 1, ttl, len(rd)) + rd
    else:
        return
    add_tail(out, rr)


def add_tail(out: list[bytes], rr: bytes) -> None:
    """Append unless a record of the same type and data is there (TTL aside), as Answer.add."""
    for x in out:
        if x[:2] == rr[:2] and x[8:] == rr[8:]:
            return
    out.append(rr)


def fast_via_query(ds: Dataset, labels: tuple[str, ...], qtype: int, out: list[bytes], peer: str | None) -> bool:
    """The fast-path interface for datasets without a special one: through query()."""
    ans = Answer()
    found = ds.query(Query(labels, qtype, peer), ans)
    for r in ans.rrs:
        add_tail(out, _TAIL.pack(r.rtype, 1, r.ttl, len(r.rdata)) + r.rdata)
    return found


class Dataset(Protocol):
    """A loaded dataset: pure, immutable after load, shared by every zone that uses it."""

    kind: str
    meta: Meta

    def query(self, q: Query, ans: Answer) -> bool:
        """Add this dataset's records for q to ans; True if the name exists here (even without records)."""
        ...

    def count(self) -> int: ...


def encode_name(name: str) -> bytes:
    out = bytearray()
    for lab in name.split("."):
        if lab:
            b = lab.encode("latin-1")
            out.append(len(b))
            out += b
    out.append(0)
    return bytes(out)


def soa_rdata(soa: Soa, serial: int) -> bytes:
    return (
        encode_name(soa.mname)
        + encode_name(soa.rname)
        + b"".join(
            v.to_bytes(4, "big") for v in (serial & 0xFFFFFFFF, soa.refresh, soa.retry, soa.expire, soa.minimum)
        )
    )


class AclAction:
    IGNORE = "ignore"
    REFUSE = "refuse"
    EMPTY = "empty"
    PASS = "pass"


class AclLike(Protocol):
    def action(self, peer: str | None) -> str | Rec | None: ...

    meta: Meta


@dataclass(slots=True)
class Zone:
    """A served zone: its name and datasets in command-line order; SOA/NS from the first dataset with them."""

    name: str
    datasets: list[Dataset] = field(default_factory=list)
    acl: AclLike | None = None
    soa: Soa | None = None
    serial: int = 0
    ns: list[str] = field(default_factory=list)
    ns_ttl: int = 0
    soa_ttl: int = 0
    ttl: int = 2100
    live: bool = False
    # the earliest $TIMESTAMP expiry among the datasets: past it, the zone is not served (as rbldnsd)
    expires: float | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.name.split(".")) if self.name else ()

    def finish_meta(self, serial_of: dict[int, int]) -> None:
        """Pick SOA and NS the way rbldnsd does: from the first dataset (command-line order) that has them."""
        self.soa = None
        self.ns = []
        exp = [ds.meta.expires for ds in self.datasets if ds.meta.expires is not None]
        self.expires = min(exp) if exp else None
        for ds in self.datasets:
            m = ds.meta
            if self.soa is None and m.soa is not None:
                self.soa = m.soa
                self.soa_ttl = m.soa.ttl
                self.serial = m.soa.serial or serial_of.get(id(ds), 0)
            if not self.ns and m.ns_seen:
                self.ns = list(m.ns)
                self.ns_ttl = m.ns_ttl


@dataclass(slots=True)
class Result:
    rcode: int
    aa: bool
    answer: list[RR]
    authority: list[RR]
    drop: bool = False


def _parses(kind: str, q: Query) -> bool:
    """Would a dataset of this kind read the question as one of its keys (an address, a name)?"""
    if kind in ("ip4set", "ip4tset", "ip4trie"):
        return q.ip4 is not None
    if kind in ("ip6trie", "ip6tset"):
        return q.ip6 is not None
    return bool(q.labels)


def _soa_rr(zone: Zone, auth: bool) -> RR | None:
    if zone.soa is None:
        return None
    ttl = zone.soa.minimum if auth else zone.soa_ttl
    return RR(T_SOA, ttl, soa_rdata(zone.soa, zone.serial), owner=zone.name)


def _ns_rrs(zone: Zone) -> list[RR]:
    return [RR(T_NS, zone.ns_ttl, encode_name(n), owner=zone.name) for n in zone.ns]


class ZoneSet:
    """All zones served; `resolve` answers a question. Immutable: a reload builds a new ZoneSet."""

    def __init__(self, zones: list[Zone], *, global_acl: AclLike | None = None, lazy: bool = True) -> None:
        self.zones = zones
        self.global_acl = global_acl
        self.lazy = lazy
        # longest zone first, so that a sub-zone served apart wins over its parent
        self._by_len = sorted(zones, key=lambda z: -len(z.labels))
        self.by_name: dict[str, Zone] = {}
        for z in zones:
            self.by_name.setdefault(z.name, z)
        self.fast: Any = None  # wire.FastPath, the fast path's tables, built on the first query

    def find_zone(self, labels: tuple[str, ...]) -> Zone | None:
        for z in self._by_len:
            zl = z.labels
            n = len(zl)
            if n <= len(labels) and (n == 0 or labels[-n:] == zl):
                return z
        return None

    def resolve(self, labels: tuple[str, ...], qtype: int, qclass: int, peer: str | None = None) -> Result:
        """labels: the lowercase question name, leftmost first."""
        if qclass == C_CH and qtype in (T_TXT, T_ANY) and labels == ("version", "bind"):
            # rbldnsd tells its version here; we tell only the name
            return Result(NOERROR, False, [RR(T_TXT, 0, txt_rdata("relayguard"))], [])
        if qclass not in (C_IN, C_ANY):
            return Result(FORMERR, False, [], [])
        if qtype >= 250 and qtype != T_ANY:
            return Result(NOTIMP, False, [], [])
        zone = self.find_zone(labels)
        if zone is None:
            return Result(REFUSED, False, [], [])
        if zone.expires is not None and zone.expires < time.time():
            return Result(SERVFAIL, False, [], [])  # expired data ($TIMESTAMP) is not served
        aa = qclass == C_IN
        rel = labels[: len(labels) - len(zone.labels)]
        acl_rec: Rec | None = None
        empty = False
        for acl in (self.global_acl, zone.acl):
            if acl is None:
                continue
            act = acl.action(peer)
            if act == AclAction.IGNORE:
                return Result(REFUSED, False, [], [], drop=True)
            if act == AclAction.REFUSE:
                return Result(REFUSED, False, [], [])
            if act == AclAction.EMPTY:
                empty = True
            elif isinstance(act, Rec) and acl_rec is None:
                acl_rec = act
        q = Query(rel, qtype, peer)
        ans = Answer()
        found = False
        override = empty or acl_rec is not None
        for ds in zone.datasets:
            if not override:
                if ds.query(q, ans):
                    found = True
            elif ds.kind == "generic":
                # as rbldnsd: under an acl override, generic names still exist but give no records
                if ds.query(q, Answer()):
                    found = True
            elif acl_rec is not None and _parses(ds.kind, q):
                # the acl's "always listed" answer stands in for what the dataset would have said
                add_a_txt(ans, qtype, acl_rec, peer or "", zone.acl.meta if zone.acl else Meta(), zone.ttl)
                found = True
        answer = ans.rrs
        authority: list[RR] = []
        if not rel:
            if qtype in (T_NS, T_ANY):
                if not zone.ns:
                    return Result(REFUSED, False, [], [])
                answer = answer + _ns_rrs(zone)
            if qtype in (T_SOA, T_ANY):
                soa = _soa_rr(zone, False)
                if soa is None:
                    return Result(REFUSED, False, [], [])
                answer = [*answer, soa]
            found = True
        if not found:
            soa = _soa_rr(zone, True)
            return Result(NXDOMAIN, aa, [], [soa] if soa else [])
        if not answer:
            soa = _soa_rr(zone, True)
            return Result(NOERROR, aa, [], [soa] if soa else [])
        if not self.lazy:  # rbldnsd -A: NS in authority of every positive answer, NS questions too
            authority = _ns_rrs(zone)
        return Result(NOERROR, aa, answer, authority)
