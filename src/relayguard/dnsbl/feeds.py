"""Feeds for mirrors: live listings as rbldnsd data files (for rsync), and AXFR/IXFR of live zones to an
allow-list of secondaries (NSD, Knot, BIND).

File zones are not transferred: ranges, exclusions and `$` templates have no faithful standard zone form.
A live zone's standard form splits CIDRs the way rbldnsd's ip4set does (whole /8, /16 and /24 blocks
become wildcards, smaller blocks single addresses), and IPv6 prefixes at nibble boundaries.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Iterator, Sequence

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from relayguard.dnsbl.answer import Zone
from relayguard.dnsbl.live import Listing, ListingStore, LiveZones, listing_lines, normalize_entry
from relayguard.dnsbl.server import Catalog, DnsblServer
from relayguard.dnsbl.wire import answer_packet

MAX_EXPANDED = 4096  # addresses a single CIDR may expand into in a transferred zone
RRS_PER_MESSAGE = 500


# ---------------------------------------------------------------------------------------------------
# rbldnsd data files
# ---------------------------------------------------------------------------------------------------


def _atomic_write(path: str, lines: Sequence[str]) -> None:
    """Write to a temporary file in the same directory, fsync, rename: readers see old or new, never half."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="latin-1", errors="replace") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export_rbldnsd(store: ListingStore, zone: str, outdir: str, *, combined: bool = False,
                   soa: str | None = None, ns: Sequence[str] = ()) -> list[str]:
    """Write the zone's active listings as ip4trie / ip6trie / dnset files (or one combined file).

    Returns the paths written. Each file is replaced atomically, so an rbldnsd (or rsync) reading it
    sees either the old or the new content.
    """
    listings = store.search(zone)
    v4, v6, names = listing_lines(listings)
    head = [f"# relayguard live listings for {zone}: {len(listings)} entries"]
    if soa:
        head.append(f"$SOA {soa}")
    if ns:
        head.append("$NS 0 " + " ".join(ns))
    written: list[str] = []
    if combined:
        lines = list(head)
        for dtype, body in (("ip4trie", v4), ("ip6trie", v6), ("dnset", names)):
            if body:
                lines.append(f"$DATASET {dtype} @")
                lines += body
        path = os.path.join(outdir, f"{zone}.combined")
        _atomic_write(path, lines)
        return [path]
    for dtype, body in (("ip4trie", v4), ("ip6trie", v6), ("dnset", names)):
        path = os.path.join(outdir, f"{zone}.{dtype}")
        _atomic_write(path, head + body)
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------------
# Standard zone form of live listings
# ---------------------------------------------------------------------------------------------------


def _rev4_names(net: ipaddress.IPv4Network) -> Iterator[str]:
    p = net.prefixlen
    a = int(net.network_address)
    if p > 24:
        n = 1 << (32 - p)
        if n > MAX_EXPANDED:
            return
        for i in range(n):
            x = a + i
            yield f"{x & 255}.{(x >> 8) & 255}.{(x >> 16) & 255}.{x >> 24}"
        return
    top = 24 if p > 16 else 16 if p > 8 else 8
    n = 1 << (top - p)
    if n > MAX_EXPANDED:
        return
    step = 1 << (32 - top)
    for i in range(n):
        x = a + i * step
        octs = [(x >> 24) & 255, (x >> 16) & 255, (x >> 8) & 255][: top // 8]
        yield "*." + ".".join(str(o) for o in reversed(octs))


def _rev6_names(net: ipaddress.IPv6Network) -> Iterator[str]:
    p = net.prefixlen
    nib = net.network_address.exploded.replace(":", "")
    if p == 128:
        yield ".".join(reversed(nib))
        return
    top = (p + 3) // 4 * 4
    n = 1 << (top - p)
    if n > MAX_EXPANDED:
        return
    base = int(net.network_address)
    for i in range(n):
        x = base + (i << (128 - top))
        h = f"{x:032x}"[: top // 4]
        yield "*." + ".".join(reversed(h)) if h else "*"


def listing_rrsets(origin: dns.name.Name, lst: Listing, ttl: int) -> list[dns.rrset.RRset]:
    kind, entry = normalize_entry(lst.entry)
    if kind == "ip4":
        owners = list(_rev4_names(ipaddress.IPv4Network(entry)))
        value = entry.split("/")[0]
    elif kind == "ip6":
        owners = list(_rev6_names(ipaddress.IPv6Network(entry)))
        value = entry.split("/")[0]
    elif entry.startswith("*."):
        owners = ["*." + entry[2:]]
        value = entry[2:]
    elif entry.startswith("."):
        owners = [entry[1:], "*." + entry[1:]]
        value = entry[1:]
    else:
        owners = [entry]
        value = entry
    out: list[dns.rrset.RRset] = []
    text = (lst.reason or "listed").replace('"', "'")
    del value
    for o in owners:
        name = dns.name.from_text(o, origin)
        out.append(dns.rrset.from_text(name, ttl, "IN", "A", lst.code))
        out.append(dns.rrset.from_text(name, ttl, "IN", "TXT", '"' + text[:250] + '"'))
    return out


def zone_records(zone: Zone, listings: Sequence[Listing]) -> tuple[dns.rrset.RRset, list[dns.rrset.RRset]]:
    """(SOA rrset, every other rrset: NS then listings) of a live zone."""
    origin = dns.name.from_text(zone.name)
    assert zone.soa is not None
    s = zone.soa
    soa = dns.rrset.from_text(origin, zone.soa_ttl, "IN", "SOA",
                              f"{s.mname}. {s.rname}. {zone.serial} {s.refresh} {s.retry} {s.expire} {s.minimum}")
    rest: list[dns.rrset.RRset] = []
    if zone.ns:
        rest.append(dns.rrset.from_text_list(origin, zone.ns_ttl, "IN", "NS", [n + "." for n in zone.ns]))
    for lst in listings:
        rest += listing_rrsets(origin, lst, zone.ttl)
    return soa, rest


# ---------------------------------------------------------------------------------------------------
# AXFR / IXFR
# ---------------------------------------------------------------------------------------------------


def _allowed(peer: str | None, allow: Sequence[str]) -> bool:
    if peer is None:
        return False
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    for a in allow:
        try:
            if ip in ipaddress.ip_network(a, strict=False):
                return True
        except ValueError:
            continue
    return False


class FeedServer(DnsblServer):
    """DnsblServer plus zone transfers of live zones over TCP, for the addresses in allow."""

    def __init__(self, catalog: Catalog, listen: Sequence[tuple[str, int]], *, live: LiveZones,
                 allow: Sequence[str], check_interval: float = 60.0, live_interval: float = 0.5) -> None:
        super().__init__(catalog, listen, check_interval=check_interval, live_interval=live_interval)
        self.live = live
        self.allow = list(allow)

    def answer_tcp(self, data: bytes, host: str | None) -> bytes | list[bytes] | None:
        try:
            msg = dns.message.from_wire(data)
        except Exception:
            return answer_packet(self.catalog.zoneset, data, host, tcp=True)
        if (msg.opcode() != dns.opcode.QUERY or len(msg.question) != 1
                or msg.question[0].rdtype not in (dns.rdatatype.AXFR, dns.rdatatype.IXFR)):
            return answer_packet(self.catalog.zoneset, data, host, tcp=True)
        return self.transfer(msg, host)

    def _refuse(self, msg: dns.message.Message, rcode: dns.rcode.Rcode) -> list[bytes]:
        r = dns.message.make_response(msg)
        r.set_rcode(rcode)
        wire: bytes = r.to_wire()
        return [wire]

    def transfer(self, msg: dns.message.Message, host: str | None) -> list[bytes]:
        q = msg.question[0]
        zname = q.name.to_text(omit_final_dot=True).lower()
        zone = next((z for z in self.catalog.live_zones if z.name == zname), None)
        if zone is None:
            # file zones are not transferred, and we are not authoritative for anything else
            return self._refuse(msg, dns.rcode.NOTAUTH if self.catalog.zoneset.by_name.get(zname)
                                else dns.rcode.REFUSED)
        if not _allowed(host, self.allow):
            return self._refuse(msg, dns.rcode.REFUSED)
        listings = [lst for lst in self.live.store.search(zname)]
        soa, rest = zone_records(zone, listings)
        if q.rdtype == dns.rdatatype.IXFR:
            client_serial = None
            for rr in msg.authority:
                if rr.rdtype == dns.rdatatype.SOA:
                    client_serial = rr[0].serial
            if client_serial is not None:
                if client_serial >= zone.serial:
                    return self._messages(msg, [soa])
                inc = self.incremental(zone, soa, client_serial)
                if inc is not None:
                    return self._messages(msg, inc)
        return self._messages(msg, [soa, *rest, soa])

    def incremental(self, zone: Zone, soa: dns.rrset.RRset, since: int) -> list[dns.rrset.RRset] | None:
        """One condensed IXFR difference from serial since to now; None if the log does not reach back."""
        changes = self.live.store.changes_since(zone.name, since)
        if changes is None:
            return None
        first: dict[str, tuple[str, str, str]] = {}
        for ch in changes:
            first.setdefault(ch.entry, (ch.op, ch.code, ch.reason))
        current = {lst.entry: lst for lst in self.live.store.search(zone.name)}
        origin = dns.name.from_text(zone.name)
        deleted: list[dns.rrset.RRset] = []
        added: list[dns.rrset.RRset] = []
        for entry, (op, code, reason) in first.items():
            old = Listing(zone.name, entry, code, reason, None, 0.0, None) if op == "del" else None
            new = current.get(entry)
            if old is not None and new is not None and (old.code, old.reason) == (new.code, new.reason):
                continue
            if old is not None:
                deleted += listing_rrsets(origin, old, zone.ttl)
            if new is not None:
                added += listing_rrsets(origin, new, zone.ttl)
        s = zone.soa
        assert s is not None
        old_soa = dns.rrset.from_text(origin, zone.soa_ttl, "IN", "SOA",
                                      f"{s.mname}. {s.rname}. {since} {s.refresh} {s.retry} {s.expire} {s.minimum}")
        return [soa, old_soa, *deleted, soa, *added, soa]

    def _messages(self, query: dns.message.Message, rrsets: list[dns.rrset.RRset]) -> list[bytes]:
        """The transfer as one or more DNS messages."""
        chunks: list[bytes] = []
        cur: list[dns.rrset.RRset] = []
        count = 0
        for rs in rrsets:
            cur.append(rs)
            count += len(rs)
            if count >= RRS_PER_MESSAGE:
                chunks.append(self._one(query, cur))
                cur, count = [], 0
        if cur or not chunks:
            chunks.append(self._one(query, cur))
        return chunks

    @staticmethod
    def _one(query: dns.message.Message, rrsets: list[dns.rrset.RRset]) -> bytes:
        r = dns.message.make_response(query)
        r.flags |= dns.flags.AA
        r.answer = list(rrsets)
        wire: bytes = r.to_wire(max_size=65535)
        return wire
