"""IPv4 datasets: ip4set, ip4tset and ip4trie, stored as compact sorted arrays searched with bisect.

A million entries must load in well under 3 s and take tens of MiB, so entries are 32-bit keys in
`array('I')` with a parallel array of indexes into an interned table of values (datafile.RecTable),
sorted once with numpy, plus a 64k-bucket index on the top 16 bits that narrows each bisect to a few
comparisons.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

import numpy as np

from relayguard.dnsbl.answer import Answer, Limits, Query, add_a_txt, ip4_text
from relayguard.dnsbl.datafile import (
    NO_TXT_DEFAULT,
    Meta,
    Rec,
    RecTable,
    Source,
    entry_rest_ok,
    iter_entry_lines,
    parse_a_txt,
    parse_ip4_prefix,
    parse_ip4_range,
    value_of,
)


class SortedKeys:
    """Sorted uint32 keys with a parallel uint32 payload and a top-16-bit bucket index."""

    __slots__ = ("buckets", "keys", "vals")

    def __init__(self, keys: np.ndarray, vals: np.ndarray) -> None:
        order = np.lexsort((vals, keys))  # by key, then value (0 = exclusion sorts first)
        k = keys[order]
        v = vals[order]
        if len(k) > 1:
            # drop exact duplicates (same key and value), as rbldnsd's REMOVE_DUPS does
            keep = np.ones(len(k), dtype=bool)
            keep[1:] = (k[1:] != k[:-1]) | (v[1:] != v[:-1])
            k = k[keep]
            v = v[keep]
        edges = np.searchsorted(k, np.arange(65537, dtype=np.uint64) << np.uint64(16)).astype(np.uint32)
        self.keys = array("I", k.astype(np.uint32).tobytes())
        self.vals = array("I", v.astype(np.uint32).tobytes())
        self.buckets = array("I", edges.tobytes())

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, key: int) -> int:
        """Index of the first entry equal to key, or -1."""
        b = key >> 16
        lo = self.buckets[b]
        hi = self.buckets[b + 1]
        if lo == hi:
            return -1
        i = bisect_left(self.keys, key, lo, hi)
        if i < hi and self.keys[i] == key:
            return i
        return -1


class _Builder:
    """Growable key/value arrays for one level (cheap appends while parsing)."""

    __slots__ = ("keys", "vals")

    def __init__(self) -> None:
        self.keys = array("I")
        self.vals = array("I")

    def add(self, start: int, count: int, step: int, val: int) -> None:
        if count <= 0:
            return
        if count == 1:
            self.keys.append(start)
            self.vals.append(val)
        else:
            self.keys.extend(range(start, start + count * step, step))
            self.vals.extend([val] * count)

    def build(self) -> SortedKeys:
        return SortedKeys(
            np.frombuffer(self.keys, dtype=np.uint32) if self.keys else np.zeros(0, np.uint32),
            np.frombuffer(self.vals, dtype=np.uint32) if self.vals else np.zeros(0, np.uint32),
        )


_MASKS = (0xFFFFFFFF, 0xFFFFFF00, 0xFFFF0000, 0xFF000000)


def _expand(levels: list[_Builder], a: int, b: int, val: int) -> None:
    """Split [a, b] into /32, /24, /16 and /8 pieces, as rbldnsd's ip4set does (so lookups stay exact)."""
    for lvl, bits in ((0, 0), (1, 8), (2, 16)):
        step = 1 << bits
        if (a | 255) >= b:
            if b - a == 255:
                levels[lvl + 1].add(a << bits, 1, step << 8, val)
            else:
                levels[lvl].add(a << bits, b - a + 1, step, val)
            return
        if a & 255:
            levels[lvl].add(a << bits, 256 - (a & 255), step, val)
            a = (a >> 8) + 1
        else:
            a >>= 8
        if (b & 255) != 255:
            levels[lvl].add((b & ~255) << bits, (b & 255) + 1, step, val)
            b = (b >> 8) - 1
        else:
            b >>= 8
    levels[3].add(a << 24, b - a + 1, 1 << 24, val)


class Ip4Set:
    """ip4set: addresses, prefixes, CIDRs and ranges, each with its own A/TXT; `!` excludes.

    The most specific octet level that has the address decides (/32, then /24, /16, /8); every value
    listed at that level is returned; an exclusion at that level hides them all.
    """

    kind = "ip4set"

    def __init__(self, meta: Meta, recs: RecTable, levels: list[SortedKeys], limits: Limits) -> None:
        self.meta = meta
        self.recs = recs.recs
        self.levels = [lv for lv in levels]
        self._active = [(lv, m) for lv, m in zip(levels, _MASKS, strict=True) if len(lv)]
        self.ttl = limits.ttl_of(meta)

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> Ip4Set:
        meta = Meta()
        recs = RecTable()
        levels = [_Builder() for _ in range(4)]
        default = NO_TXT_DEFAULT
        dflt_idx = recs.intern(default)
        last_rest = ""
        last_val = dflt_idx
        for where, line in iter_entry_lines(paths, meta, default_ttl=limits.defttl):
            c = line[0]
            if c == ":":
                r = parse_a_txt(line, NO_TXT_DEFAULT)
                if r is None:
                    meta.warn(where, "invalid default value")
                    continue
                default = r
                dflt_idx = recs.intern(default)
                last_rest = ""
                last_val = dflt_idx
                continue
            # fast path: a bare dotted quad, the bulk of every real list
            parts = line.split(".")
            if len(parts) == 4 and line.replace(".", "").isdigit() and len(line) <= 15:
                o = [int(x) for x in parts]
                if max(o) <= 255 and all(len(x) <= 3 for x in parts):
                    levels[0].keys.append((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3])
                    levels[0].vals.append(dflt_idx)
                    continue
            excl = c == "!"
            key = line[1:].lstrip(" \t") if excl else line
            rng = parse_ip4_range(key)
            if rng is None or not entry_rest_ok(rng[2]):
                meta.warn(where, "invalid address")
                continue
            a, b, rest = rng
            if meta.maxrange4 is not None and b - a + 1 > meta.maxrange4:
                meta.warn(where, "too large range ignored")
                continue
            if excl:
                val = 0
            elif rest == last_rest:
                val = last_val
            else:
                rec = value_of(rest, default)
                if rec is None:
                    meta.warn(where, "invalid value")
                    continue
                val = recs.intern(rec)
                last_rest, last_val = rest, val
            _expand(levels, a, b, val)
        recs.freeze()
        return cls(meta, recs, [lv.build() for lv in levels], limits)

    def count(self) -> int:
        return sum(len(lv) for lv in self.levels)

    def lookup(self, ip: int) -> list[Rec]:
        """Values listed for ip (empty if not listed or excluded)."""
        for lv, mask in self._active:
            key = ip & mask
            i = lv.find(key)
            if i < 0:
                continue
            vals = lv.vals
            keys = lv.keys
            if vals[i] == 0:
                return []
            out: list[Rec] = []
            n = len(keys)
            while i < n and keys[i] == key:
                r = self.recs[vals[i]]
                if r is not None:
                    out.append(r)
                i += 1
            return out
        return []

    def query(self, q: Query, ans: Answer) -> bool:
        ip = q.ip4
        if ip is None:
            return False
        found = self.lookup(ip)
        if not found:
            return False
        value = ip4_text(ip)
        for rec in found:
            add_a_txt(ans, q.qtype, rec, value, self.meta, self.ttl)
        return True


class Ip4TSet:
    """ip4tset: single addresses sharing one value (the first `:` line); no exclusions, no ranges."""

    kind = "ip4tset"

    def __init__(self, meta: Meta, keys: array[int], rec: Rec, limits: Limits) -> None:
        self.meta = meta
        self.keys = keys
        self.rec = rec
        self.ttl = limits.ttl_of(meta)

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> Ip4TSet:
        meta = Meta()
        keys = array("I")
        rec: Rec | None = None
        for where, line in iter_entry_lines(paths, meta, default_ttl=limits.defttl):
            if line[0] == ":":
                if rec is None:
                    rec = parse_a_txt(line, NO_TXT_DEFAULT)
                    if rec is None:
                        meta.warn(where, "invalid default value")
                continue
            r = parse_ip4_prefix(line)
            if r is None or r[1] != 4 or not entry_rest_ok(r[2]):
                meta.warn(where, "invalid address")
                continue
            keys.append(r[0])
        arr = np.unique(np.frombuffer(keys, dtype=np.uint32)) if keys else np.zeros(0, np.uint32)
        return cls(meta, array("I", arr.astype(np.uint32).tobytes()), rec or NO_TXT_DEFAULT, limits)

    def count(self) -> int:
        return len(self.keys)

    def query(self, q: Query, ans: Answer) -> bool:
        ip = q.ip4
        if ip is None:
            return False
        keys = self.keys
        i = bisect_left(keys, ip)
        if i >= len(keys) or keys[i] != ip:
            return False
        add_a_txt(ans, q.qtype, self.rec, ip4_text(ip), self.meta, self.ttl)
        return True


def parse_ip4_cidr(key: str) -> tuple[int, int, str] | None:
    """ip4trie/acl keys: `a.b.c.d[/n]` or a prefix `a.b.c` (= /24); -> (network, bits, rest)."""
    r = parse_ip4_range(key, cidr_only=True)
    if r is None:
        return None
    a, b, rest = r
    size = b - a + 1
    bits = 32 - (size.bit_length() - 1)
    return a, bits, rest


class PrefixTable:
    """Longest-prefix match over (network, bits) -> value; first entry for a prefix wins (as in rbldnsd)."""

    __slots__ = ("lens", "tables", "width")

    def __init__(self, entries: dict[tuple[int, int], int], width: int) -> None:
        self.width = width
        by_len: dict[int, list[tuple[int, int]]] = {}
        for (net, bits), val in entries.items():
            by_len.setdefault(bits, []).append((net >> (width - bits) if bits else 0, val))
        self.lens = sorted(by_len, reverse=True)
        self.tables: list[tuple[int, list[int], list[int]]] = []
        for bits in self.lens:
            items = sorted(by_len[bits])
            self.tables.append((bits, [k for k, _ in items], [v for _, v in items]))

    def lookup(self, addr: int) -> int:
        """Value of the longest matching prefix; -1 if none."""
        w = self.width
        for bits, keys, vals in self.tables:
            k = addr >> (w - bits) if bits else 0
            i = bisect_left(keys, k)
            if i < len(keys) and keys[i] == k:
                return vals[i]
        return -1


class CompactPrefixTable:
    """PrefixTable for IPv4 with compact arrays per prefix length (one bisect per length present)."""

    __slots__ = ("tables",)

    def __init__(self, nets: array[int], bits: array[int], vals: array[int]) -> None:
        n = np.frombuffer(nets, dtype=np.uint32) if nets else np.zeros(0, np.uint32)
        b = np.frombuffer(bits, dtype=np.uint8) if bits else np.zeros(0, np.uint8)
        v = np.frombuffer(vals, dtype=np.uint32) if vals else np.zeros(0, np.uint32)
        self.tables: list[tuple[int, int, SortedKeys]] = []
        seq = np.arange(len(n), dtype=np.uint32)
        for length in sorted(set(b.tolist()), reverse=True):
            sel = b == length
            nn, vv, ss = n[sel], v[sel], seq[sel]
            # the first line for a prefix wins: keep the first occurrence of each network
            order = np.lexsort((ss, nn))
            nn, vv = nn[order], vv[order]
            if len(nn) > 1:
                keep = np.ones(len(nn), dtype=bool)
                keep[1:] = nn[1:] != nn[:-1]
                nn, vv = nn[keep], vv[keep]
            mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0
            self.tables.append((length, mask, SortedKeys(nn, vv)))

    def lookup(self, addr: int) -> int:
        for _length, mask, sk in self.tables:
            i = sk.find(addr & mask)
            if i >= 0:
                return sk.vals[i]
        return -1


class Ip4Trie:
    """ip4trie: CIDR ranges, one value each; the longest matching prefix decides; `!` excludes."""

    kind = "ip4trie"

    def __init__(self, meta: Meta, recs: RecTable, table: CompactPrefixTable, n: int, limits: Limits) -> None:
        self.meta = meta
        self.recs = recs.recs
        self.table = table
        self.n = n
        self.ttl = limits.ttl_of(meta)

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> Ip4Trie:
        meta = Meta()
        recs = RecTable()
        default = NO_TXT_DEFAULT
        nets = array("I")
        bits_a = array("B")
        vals = array("I")
        last_rest = ""
        last_val = recs.intern(default)
        for where, line in iter_entry_lines(paths, meta, default_ttl=limits.defttl):
            if line[0] == ":":
                r = parse_a_txt(line, NO_TXT_DEFAULT)
                if r is None:
                    meta.warn(where, "invalid default value")
                    continue
                default = r
                last_rest, last_val = "", recs.intern(default)
                continue
            excl = line[0] == "!"
            key = line[1:].lstrip(" \t") if excl else line
            c = parse_ip4_cidr(key)
            if c is None or not entry_rest_ok(c[2]):
                meta.warn(where, "invalid address")
                continue
            net, bits, rest = c
            if meta.maxrange4 is not None and (1 << (32 - bits)) > meta.maxrange4:
                meta.warn(where, "too large range ignored")
                continue
            if excl:
                val = 0
            elif rest == last_rest:
                val = last_val
            else:
                rec = value_of(rest, default)
                if rec is None:
                    meta.warn(where, "invalid value")
                    continue
                val = recs.intern(rec)
                last_rest, last_val = rest, val
            nets.append(net)
            bits_a.append(bits)
            vals.append(val)
        recs.freeze()
        return cls(meta, recs, CompactPrefixTable(nets, bits_a, vals), len(nets), limits)

    def count(self) -> int:
        return self.n

    def lookup(self, ip: int) -> Rec | None:
        v = self.table.lookup(ip)
        return self.recs[v] if v > 0 else None

    def query(self, q: Query, ans: Answer) -> bool:
        ip = q.ip4
        if ip is None:
            return False
        rec = self.lookup(ip)
        if rec is None:
            return False
        add_a_txt(ans, q.qtype, rec, ip4_text(ip), self.meta, self.ttl)
        return True
