"""IPv4 datasets: ip4set, ip4tset and ip4trie, stored as compact sorted arrays searched with bisect.

A million entries must load in well under 3 s and take tens of MiB, so entries are 32-bit keys in
`array('I')` with a parallel array of indexes into an interned table of values (datafile.RecTable),
sorted once with numpy, plus a 64k-bucket index on the top 16 bits that narrows each bisect to a few
comparisons.
"""

from __future__ import annotations

import os
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from relayguard.dnsbl.answer import T_TXT, Answer, Limits, Query, add_a_txt, emit_a_txt, ip4_text
from relayguard.dnsbl.datafile import (
    NO_TXT_DEFAULT,
    LineSource,
    Meta,
    Rec,
    RecTable,
    Source,
    entry_line,
    entry_rest_ok,
    iter_entry_lines,
    parse_a_txt,
    parse_ip4_prefix,
    parse_ip4_range,
    value_of,
)
from relayguard.dnsbl.fastscan import Scan, expand_cidrs, read_padded, scan_ip4


class SortedKeys:
    """Sorted uint32 keys with a parallel uint32 payload and a top-16-bit bucket index."""

    __slots__ = ("buckets", "keys", "vals")

    def __init__(self, keys: np.ndarray, vals: np.ndarray) -> None:
        self._build(SortedKeys.combine([(keys, vals)]))

    @staticmethod
    def combine(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Pieces of (keys, values) -> one uint64 array (key high, value low), emptying parts as it goes
        so that the pieces are freed while the combined array fills (a load's peak memory is here)."""
        total = sum(len(k) for k, _ in parts)
        comb = np.empty(total, dtype=np.uint64)
        pos = 0
        while parts:
            k, v = parts.pop(0)
            n = len(k)
            seg = comb[pos : pos + n]
            seg[:] = k
            seg <<= np.uint64(32)
            seg |= v
            pos += n
            del k, v
        return comb

    @classmethod
    def from_parts(cls, parts: list[tuple[np.ndarray, np.ndarray]]) -> SortedKeys:
        self = cls.__new__(cls)
        self._build(cls.combine(parts))
        return self

    def _build(self, comb: np.ndarray) -> None:
        # one uint64 sort (key high, value low: an exclusion, value 0, sorts first) costs less memory
        # than lexsort's index arrays
        comb.sort()
        if len(comb) > 1:
            dup = comb[1:] == comb[:-1]
            if dup.any():
                comb = comb[np.concatenate(([True], ~dup))]  # rbldnsd's REMOVE_DUPS
            del dup
        halves = comb.view(np.uint32).reshape(-1, 2)  # little-endian: [value, key]
        if halves.dtype.byteorder == ">" or np.little_endian is False:
            halves = halves[:, ::-1]
        k = halves[:, 1]
        v = halves[:, 0]
        edges = np.searchsorted(k, np.arange(65537, dtype=np.uint64) << np.uint64(16)).astype(np.uint32)
        # the bucket gives the top 16 bits of a key: only the low 16 bits are kept (2 bytes a key), and
        # values in the narrowest type that holds them (usually 1 byte)
        low = (k & 0xFFFF).astype(np.uint16)
        vmax = int(v.max()) if len(v) else 0
        vt = np.uint8 if vmax < 256 else np.uint16 if vmax < 65536 else np.uint32
        vals = v.astype(vt)
        del comb, halves, k, v
        # memoryviews over the numpy buffers: no copy, and indexing yields plain ints for bisect
        self.keys: Sequence[int] = low.data
        self.vals: Sequence[int] = vals.data
        self.buckets: Sequence[int] = edges.data

    def __len__(self) -> int:
        return len(self.keys)

    # pickled as the numpy arrays under the memoryviews (which do not pickle): a reload built in a child
    # process hands them over without a copy (see handover)
    def __getstate__(self) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(getattr(self, k)) for k in self.__slots__)

    def __setstate__(self, state: tuple[np.ndarray, ...]) -> None:
        for k, arr in zip(self.__slots__, state, strict=True):
            setattr(self, k, arr.data)

    def find(self, key: int) -> int:
        """Index of the first entry equal to key, or -1."""
        b = key >> 16
        lo = self.buckets[b]
        hi = self.buckets[b + 1]
        if lo == hi:
            return -1
        low = key & 0xFFFF
        i = bisect_left(self.keys, low, lo, hi)
        if i < hi and self.keys[i] == low:
            return i
        return -1

    def span(self, key: int) -> tuple[int, int]:
        """[i, j): the entries equal to key (empty if none)."""
        b = key >> 16
        lo = self.buckets[b]
        hi = self.buckets[b + 1]
        if lo == hi:
            return 0, 0
        low = key & 0xFFFF
        keys = self.keys
        i = bisect_left(keys, low, lo, hi)
        j = i
        while j < hi and keys[j] == low:
            j += 1
        return i, j


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

    def build(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> SortedKeys:
        if self.keys:
            parts.append((np.frombuffer(self.keys, dtype=np.uint32), np.frombuffer(self.vals, dtype=np.uint32)))
        return SortedKeys.from_parts(parts)


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


def source_name(src: Source) -> str:
    return src.name if isinstance(src, LineSource) else os.path.basename(src)


def scan_source(src: Source) -> Scan | None:
    """The vectorised scan of a file, or None when the line-by-line parser must read it ($MAXRANGE4
    depends on line order in ways the scan does not track; in-memory sources are small)."""
    if isinstance(src, LineSource):
        return None
    data = read_padded(src)
    # a cheap substring test first: the anchored regex alone costs a third of a second on 20 MB
    if (data.find(b"axrange4") >= 0 or data.find(b"AXRANGE4") >= 0) and _MAXRANGE.search(data):
        return None
    return scan_ip4(data, padded=True)


_MAXRANGE = re.compile(rb"(?im)^[ \t]*[#:]?\$maxrange4")


def _within_maxrange(sc: Scan, meta: Meta) -> np.ndarray:
    """A $MAXRANGE4 from an earlier file of the dataset still applies to a scanned file."""
    if meta.maxrange4 is None:
        return np.ones(len(sc.addr), dtype=bool)
    size = np.int64(1) << (32 - sc.bits.astype(np.int64))
    return np.asarray(size <= meta.maxrange4)


class _ScanLines:
    """Shared by the IPv4 loaders: walk the lines the scan left (specials, defaults, odd entries) in file
    order, and give each fast entry the value in force on its line."""

    def __init__(self, meta: Meta, recs: RecTable, limits: Limits) -> None:
        self.meta = meta
        self.recs = recs
        self.limits = limits
        self.default = NO_TXT_DEFAULT
        self.dflt = recs.intern(self.default)
        self.last_rest = ""
        self.last_val = self.dflt
        self.seq_now = 0  # line index of the entry being parsed (ip4trie: the first line for a prefix wins)

    def set_default(self, where: str, line: str) -> None:
        r = parse_a_txt(line, NO_TXT_DEFAULT)
        if r is None:
            self.meta.warn(where, "invalid default value")
            return
        self.default = r
        self.dflt = self.recs.intern(r)
        self.last_rest, self.last_val = "", self.dflt

    def value(self, where: str, rest: str) -> int | None:
        if rest == self.last_rest:
            return self.last_val
        rec = value_of(rest, self.default)
        if rec is None:
            self.meta.warn(where, "invalid value")
            return None
        val = self.recs.intern(rec)
        self.last_rest, self.last_val = rest, val
        return val

    cidr_only = False  # ip4trie takes CIDRs (and prefixes) only, ip4set ranges too

    def line(self, where: str, line: str) -> None:
        """One entry line the scan left (or every line, without a scan): a default, or an address,
        prefix, CIDR or range with its value; `!` excludes."""
        if line[0] == ":":
            self.set_default(where, line)
            return
        excl = line[0] == "!"
        key = line[1:].lstrip(" \t") if excl else line
        rng = parse_ip4_range(key, cidr_only=self.cidr_only)
        if rng is None or not entry_rest_ok(rng[2]):
            self.meta.warn(where, "invalid address")
            return
        a, b, rest = rng
        mr = self.meta.maxrange4
        if mr is not None and b - a + 1 > mr:
            self.meta.warn(where, "too large range ignored")
            return
        val = 0 if excl else self.value(where, rest)
        if val is not None:
            self.add(a, b, val)

    def add(self, a: int, b: int, val: int) -> None:
        """Record the entry a..b (inclusive) with value index val (0: an exclusion)."""
        raise NotImplementedError

    def run_scan(self, sc: Scan, name: str) -> np.ndarray:
        """Process the slow lines in order; return the value index of every fast entry."""
        data = sc.text
        change_lines: list[int] = []
        change_vals: list[int] = []
        for li in sc.slow_lines.tolist():
            raw = bytes(data[sc.starts[li] : sc.ends[li]]).decode("latin-1")
            line = entry_line(self.meta, raw, name, li + 1, self.limits.defttl)
            if line is None:
                continue
            where = f"{name}:{li + 1}"
            if line[0] == ":":
                self.set_default(where, line)
                change_lines.append(li)
                change_vals.append(self.dflt)
                continue
            self.seq_now = li
            self.line(where, line)
        # value in force on each fast line: the default of the last ':' line before it
        first = self.recs.intern(NO_TXT_DEFAULT)
        dvals = np.array([first, *change_vals], dtype=np.uint32)
        pos = np.searchsorted(np.array(change_lines, dtype=np.int64), sc.fast_line, side="right")
        vals = dvals[pos]
        withv = np.flatnonzero(sc.has_value)
        if len(withv):
            _scan_values(self, sc, name, vals, withv)
        keep = vals != 0xFFFFFFFF
        if not keep.all():
            sc.addr, sc.bits, sc.fast_line = sc.addr[keep], sc.bits[keep], sc.fast_line[keep]
            vals = vals[keep]
        return vals


VALUE_WIDTH = 60  # values up to this many bytes are grouped with numpy; longer ones one by one


def _scan_values(self: _ScanLines, sc: Scan, name: str, vals: np.ndarray, withv: np.ndarray) -> None:
    """Set vals[withv] from the text after each key. Real lists repeat a handful of values over many
    lines, so the (value text, default in force) pairs are made unique with numpy and each distinct one
    is parsed once; the rare longer values go one by one."""
    data = sc.text
    arr = np.frombuffer(data, dtype=np.uint8)
    lines = sc.fast_line[withv]
    ke = sc.keyend[withv].astype(np.int64)
    en = sc.ends[lines].astype(np.int64)
    ln = en - ke
    short = ln <= VALUE_WIDTH
    recs_list = self.recs.recs

    def parse(raw: bytes, d: int, li: int) -> int:
        dflt = recs_list[d]
        rec = value_of(raw.decode("latin-1").rstrip("\r"), dflt if dflt is not None else NO_TXT_DEFAULT)
        if rec is None:
            self.meta.warn(f"{name}:{li + 1}", "invalid value")
            return 0xFFFFFFFF
        return self.recs.intern(rec)

    cache: dict[bytes, int] = {}
    sidx_all = np.flatnonzero(short)
    for c0 in range(0, len(sidx_all), 32768):  # in chunks: the rows below stay a couple of MiB
        sidx = sidx_all[c0 : c0 + 32768]
        # one row per line: the value bytes (zero padded), its length and the default in force
        rows = np.zeros((len(sidx), VALUE_WIDTH + 8), dtype=np.uint8)
        kk, ll = ke[sidx], ln[sidx]
        for j in range(VALUE_WIDTH):
            live = ll > j
            rows[live, j] = arr[kk[live] + j]
        rows[:, VALUE_WIDTH : VALUE_WIDTH + 4] = ll.astype(np.uint32).view(np.uint8).reshape(-1, 4)
        rows[:, VALUE_WIDTH + 4 :] = vals[withv[sidx]].astype(np.uint32).view(np.uint8).reshape(-1, 4)
        keyed = rows.view(np.dtype((np.void, VALUE_WIDTH + 8))).ravel()
        uniq, first, inverse = np.unique(keyed, return_index=True, return_inverse=True)
        got = np.empty(len(uniq), dtype=np.uint32)
        for u, fi in enumerate(first.tolist()):
            kb = uniq[u].tobytes()
            v = cache.get(kb)
            if v is None:
                i = int(sidx[fi])
                v = cache[kb] = parse(bytes(data[int(ke[i]) : int(en[i])]), int(vals[withv[i]]), int(lines[i]))
            got[u] = v
        vals[withv[sidx]] = got[inverse.ravel()]
    for i in np.flatnonzero(~short).tolist():
        vals[withv[i]] = parse(bytes(data[int(ke[i]) : int(en[i])]), int(vals[withv[i]]), int(lines[i]))


class _Ip4SetLines(_ScanLines):
    def __init__(self, meta: Meta, recs: RecTable, levels: list[_Builder], limits: Limits) -> None:
        super().__init__(meta, recs, limits)
        self.levels = levels

    def add(self, a: int, b: int, val: int) -> None:
        _expand(self.levels, a, b, val)


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
        # (keys, values, bucket edges, mask) per level, most specific first: fast() and the compiled engine
        self.flat = [(lv.keys, lv.vals, lv.buckets, m) for lv, m in self._active]

    # flat holds the levels' memoryviews (which do not pickle): it is taken again from the unpickled levels
    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "flat"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.flat = [(lv.keys, lv.vals, lv.buckets, m) for lv, m in self._active]

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> Ip4Set:
        meta = Meta()
        recs = RecTable()
        levels = [_Builder() for _ in range(4)]
        parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[], [], [], []]
        for src in paths:
            st = _Ip4SetLines(meta, recs, levels, limits)  # the default value resets with each file
            sc = scan_source(src)
            if sc is None:
                for where, line in iter_entry_lines([src], meta, default_ttl=limits.defttl):
                    st.line(where, line)
                continue
            vals = st.run_scan(sc, source_name(src))
            ok = _within_maxrange(sc, meta)
            addr, bits = sc.addr[ok], sc.bits[ok]
            del sc  # the file's text and line tables are not needed any more
            for lvl, pieces in enumerate(expand_cidrs(addr, bits, vals[ok])):
                parts[lvl] += pieces
            del addr, bits, vals
        recs.freeze()
        built = []
        for lv, p in zip(levels, parts, strict=True):
            built.append(lv.build(p))  # empties p: each level's pieces are freed as it is sorted
        return cls(meta, recs, built, limits)

    def count(self) -> int:
        return sum(len(lv) for lv in self.levels)

    def lookup(self, ip: int) -> list[Rec]:
        """Values listed for ip (empty if not listed or excluded)."""
        for lv, mask in self._active:
            i, j = lv.span(ip & mask)
            if i == j:
                continue
            vals = lv.vals
            if vals[i] == 0:
                return []
            recs = self.recs
            return [r for r in (recs[vals[x]] for x in range(i, j)) if r is not None]
        return []

    def fast(self, ip: int | None, qtype: int, out: list[bytes]) -> bool:
        """lookup() and the records, inlined: this runs for every IPv4 question of the zone."""
        if ip is None:
            return False
        for keys, vals, buckets, mask in self.flat:
            k = ip & mask
            b = k >> 16
            lo = buckets[b]
            hi = buckets[b + 1]
            if lo == hi:
                continue
            low = k & 0xFFFF
            i = bisect_left(keys, low, lo, hi)
            if i == hi or keys[i] != low:
                continue
            v = vals[i]
            if v == 0:
                return False  # excluded at the level that decides
            recs = self.recs
            value = ip4_text(ip) if qtype == T_TXT else ""
            found = False
            while True:
                rec = recs[v]
                if rec is not None:
                    emit_a_txt(out, qtype, rec, value, self.meta, self.ttl)
                    found = True
                i += 1
                if i == hi or keys[i] != low:
                    return found
                v = vals[i]
        return False

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

    def fast(self, ip: int | None, qtype: int, out: list[bytes]) -> bool:
        if ip is None:
            return False
        keys = self.keys
        i = bisect_left(keys, ip)
        if i >= len(keys) or keys[i] != ip:
            return False
        emit_a_txt(out, qtype, self.rec, ip4_text(ip) if qtype == T_TXT else "", self.meta, self.ttl)
        return True

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

    def __init__(self, n: np.ndarray, b: np.ndarray, v: np.ndarray, seq: np.ndarray) -> None:
        self.tables: list[tuple[int, int, SortedKeys]] = []
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


class _Ip4TrieLines(_ScanLines):
    def __init__(self, meta: Meta, recs: RecTable, limits: Limits) -> None:
        super().__init__(meta, recs, limits)
        self.nets = array("I")
        self.bits = array("B")
        self.vals = array("I")
        self.seq = array("q")

    cidr_only = True

    def add(self, a: int, b: int, val: int) -> None:
        self.nets.append(a)
        self.bits.append(32 - ((b - a + 1).bit_length() - 1))
        self.vals.append(val)
        self.seq.append(self.seq_now)


class PrefixLookup(Protocol):
    def lookup(self, addr: int) -> int: ...


class PrefixDataset:
    """What ip4trie and ip6trie share: a longest-prefix table of value indexes, one record per address.

    Subclasses say how a question reads as an address (address) and how an address is written in TXT
    templates (text).
    """

    kind: str

    def __init__(self, meta: Meta, recs: RecTable, table: PrefixLookup, n: int, limits: Limits) -> None:
        self.meta = meta
        self.recs = recs.recs
        self.table = table
        self.n = n
        self.ttl = limits.ttl_of(meta)

    @staticmethod
    def address(q: Query) -> int | None:
        raise NotImplementedError

    @staticmethod
    def text(ip: int) -> str:
        raise NotImplementedError

    def count(self) -> int:
        return self.n

    def lookup(self, ip: int) -> Rec | None:
        v = self.table.lookup(ip)
        return self.recs[v] if v > 0 else None

    def query(self, q: Query, ans: Answer) -> bool:
        ip = self.address(q)
        if ip is None:
            return False
        rec = self.lookup(ip)
        if rec is None:
            return False
        add_a_txt(ans, q.qtype, rec, self.text(ip), self.meta, self.ttl)
        return True


class Ip4Trie(PrefixDataset):
    """ip4trie: CIDR ranges, one value each; the longest matching prefix decides; `!` excludes."""

    kind = "ip4trie"

    @staticmethod
    def address(q: Query) -> int | None:
        return q.ip4

    @staticmethod
    def text(ip: int) -> str:
        return ip4_text(ip)

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> Ip4Trie:
        meta = Meta()
        recs = RecTable()
        slow = _Ip4TrieLines(meta, recs, limits)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        base = 0  # line numbers of successive files follow each other: the first line for a prefix wins
        for src in paths:
            st = _Ip4TrieLines(meta, recs, limits)
            sc = scan_source(src)
            if sc is None:
                for n, (where, line) in enumerate(iter_entry_lines([src], meta, default_ttl=limits.defttl)):
                    st.seq_now = n
                    st.line(where, line)
            else:
                vals = st.run_scan(sc, source_name(src))
                ok = _within_maxrange(sc, meta)
                parts.append((sc.addr[ok], sc.bits[ok], vals[ok], sc.fast_line[ok] + base))
            slow.nets.extend(st.nets)
            slow.bits.extend(st.bits)
            slow.vals.extend(st.vals)
            slow.seq.extend(x + base for x in st.seq)
            base += 1 << 32
        parts.append((np.frombuffer(slow.nets, np.uint32) if slow.nets else np.zeros(0, np.uint32),
                      np.frombuffer(slow.bits, np.uint8) if slow.bits else np.zeros(0, np.uint8),
                      np.frombuffer(slow.vals, np.uint32) if slow.vals else np.zeros(0, np.uint32),
                      np.frombuffer(slow.seq, np.int64) if slow.seq else np.zeros(0, np.int64)))
        nets, bits, vals, seq = (np.concatenate(x) for x in zip(*parts, strict=True))
        recs.freeze()
        return cls(meta, recs, CompactPrefixTable(nets, bits, vals, seq), len(nets), limits)

    def fast(self, ip: int | None, qtype: int, out: list[bytes]) -> bool:
        if ip is None:
            return False
        rec = self.lookup(ip)
        if rec is None:
            return False
        emit_a_txt(out, qtype, rec, ip4_text(ip) if qtype == T_TXT else "", self.meta, self.ttl)
        return True
