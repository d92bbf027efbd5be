"""IPv6 datasets: ip6trie (CIDR ranges with values, longest prefix wins) and ip6tset (/64s, one value)."""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Iterable

from relayguard.dnsbl.answer import Answer, Limits, Query, add_a_txt, ip6_text
from relayguard.dnsbl.datafile import (
    NO_TXT_DEFAULT,
    Meta,
    Rec,
    RecTable,
    Source,
    entry_rest_ok,
    iter_entry_lines,
    parse_a_txt,
    value_of,
)
from relayguard.dnsbl.ip4 import PrefixDataset, PrefixTable

_KEY = re.compile(r"[0-9A-Fa-f:.]+(?:/\d{1,3})?")


def parse_ip6_cidr(text: str) -> tuple[int, int, str] | None:
    """`2001:db8::/32`, `2001:21ab:c000/36` (trailing zero groups omitted), `2001:db8:1:2` (= /64).

    -> (network, bits, rest). Without a `/`, the length is 128 for `::` forms and 16 per group otherwise.
    The host part must be zero, as rbldnsd requires.
    """
    m = _KEY.match(text)
    if not m:
        return None
    key = m.group(0)
    rest = text[m.end() :]
    addr_s, _, bits_s = key.partition("/")
    if "::" in addr_s:
        try:
            a = int(ipaddress.IPv6Address(addr_s))
        except ValueError:
            return None
        bits = 128
    else:
        groups = addr_s.split(":")
        if not 1 <= len(groups) <= 8 or any(not g or len(g) > 4 for g in groups):
            return None
        try:
            vals = [int(g, 16) for g in groups]
        except ValueError:
            return None
        a = 0
        for v in vals + [0] * (8 - len(vals)):
            a = (a << 16) | v
        bits = 16 * len(groups)
    if bits_s:
        bits = int(bits_s)
        if bits > 128:
            return None
    host = (1 << (128 - bits)) - 1
    if a & host:
        return None
    return a, bits, rest


class Ip6Trie(PrefixDataset):
    kind = "ip6trie"

    @staticmethod
    def address(q: Query) -> int | None:
        return q.ip6

    @staticmethod
    def text(ip: int) -> str:
        return ip6_text(ip)

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> Ip6Trie:
        meta = Meta()
        recs = RecTable()
        default = NO_TXT_DEFAULT
        entries: dict[tuple[int, int], int] = {}
        for where, line in iter_entry_lines(paths, meta, default_ttl=limits.defttl):
            if line[0] == ":" and line[1:2] != ":":  # "::1" is an address, not a default line
                r = parse_a_txt(line, NO_TXT_DEFAULT)
                if r is None:
                    meta.warn(where, "invalid default value")
                else:
                    default = r
                continue
            excl = line[0] == "!"
            key = line[1:].lstrip(" \t") if excl else line
            c = parse_ip6_cidr(key)
            if c is None or not entry_rest_ok(c[2]):
                meta.warn(where, "invalid address")
                continue
            net, bits, rest = c
            if excl:
                val = 0
            else:
                rec = value_of(rest, default)
                if rec is None:
                    meta.warn(where, "invalid value")
                    continue
                val = recs.intern(rec)
            if (net, bits) in entries:
                meta.warn(where, "duplicated entry")
                continue
            entries[(net, bits)] = val
        recs.freeze()
        return cls(meta, recs, PrefixTable(entries, 128), len(entries), limits)



class Ip6TSet:
    """ip6tset: /64 networks sharing one value, with single-address (/128) exclusions."""

    kind = "ip6tset"

    def __init__(self, meta: Meta, nets: list[int], excl: list[int], rec: Rec, limits: Limits) -> None:
        self.meta = meta
        self.nets = nets
        self.excl = excl
        self.rec = rec
        self.ttl = limits.ttl_of(meta)

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> Ip6TSet:
        meta = Meta()
        nets: set[int] = set()
        excl: set[int] = set()
        rec: Rec | None = None
        for where, line in iter_entry_lines(paths, meta, default_ttl=limits.defttl):
            if line[0] == ":" and line[1:2] != ":":
                if rec is None:
                    rec = parse_a_txt(line, NO_TXT_DEFAULT)
                continue
            if line[0] == "!":
                c = parse_ip6_cidr(line[1:].lstrip(" \t"))
                if c is None or c[1] != 128 or not entry_rest_ok(c[2]):
                    meta.warn(where, "invalid exclusion")
                    continue
                excl.add(c[0])
                continue
            c = parse_ip6_cidr(line)
            if c is None or c[1] != 64 or not entry_rest_ok(c[2]):
                meta.warn(where, "invalid /64")
                continue
            nets.add(c[0] >> 64)
        return cls(meta, sorted(nets), sorted(excl), rec or NO_TXT_DEFAULT, limits)

    def count(self) -> int:
        return len(self.nets)

    def listed(self, ip: int) -> bool:
        k = ip >> 64
        i = bisect_left(self.nets, k)
        if i >= len(self.nets) or self.nets[i] != k:
            return False
        j = bisect_left(self.excl, ip)
        return not (j < len(self.excl) and self.excl[j] == ip)

    def query(self, q: Query, ans: Answer) -> bool:
        ip = q.ip6
        if ip is None or not self.listed(ip):
            return False
        add_a_txt(ans, q.qtype, self.rec, ip6_text(ip), self.meta, self.ttl)
        return True
