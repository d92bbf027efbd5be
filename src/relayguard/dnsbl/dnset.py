"""dnset: domain names (relative to the zone), plain or wildcard, with A/TXT values; `!` excludes.

`example.com` lists the name only, `*.example.com` its subdomains only, `.example.com` both. An exact
entry wins over wildcards; the longest wildcard wins; an exclusion where the search stops hides it.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterable, Sequence

import numpy as np

from relayguard.dnsbl.answer import Answer, Limits, Query, add_a_txt, emit_a_txt
from relayguard.dnsbl.datafile import (
    NO_TXT_DEFAULT,
    LineSource,
    Meta,
    Rec,
    RecTable,
    Source,
    entry_line,
    iter_entry_lines,
    parse_a_txt,
    value_of,
)
from relayguard.dnsbl.fastscan import read_bytes

# A name maps to one value index (the common case, cheap in memory) or a sorted tuple of them.
Vals = int | tuple[int, ...]


def _add(d: dict[str, Vals], name: str, val: int) -> None:
    old = d.get(name)
    if old is None:
        d[name] = val
    elif isinstance(old, int):
        if old != val:
            d[name] = tuple(sorted((old, val)))
    elif val not in old:
        d[name] = tuple(sorted((*old, val)))


def valid_name(name: str) -> bool:
    if not name or len(name) > 253 or ".." in name or name[0] == ".":
        return False
    return len(name) <= 63 or all(len(lab) <= 63 for lab in name.split("."))


_SPECIAL_FIRST = frozenset("#;$:!.* \t\r")
_SLOW_FIRST = frozenset("#;$:! \t\r")


def _norm(names: list[str]) -> list[str]:
    return [n.rstrip("\r").rstrip(".").lower() for n in names]


def _merge(meta: Meta, where: str, target: dict[str, Vals], names: list[str], val: int) -> None:
    bad = [n for n in names if not n or n[0] == "." or ".." in n or (len(n) > 63 and not valid_name(n))]
    if bad:
        meta.warn(where, f"{len(bad)} invalid domain name(s), e.g. {bad[0]!r}")
        badset = set(bad)
        names = [n for n in names if n not in badset]
    new = dict.fromkeys(names, val)
    for k in new.keys() & target.keys():
        _add(target, k, val)
        del new[k]
    target.update(new)


def _bulk(lines: list[str], st: _Lines, exact: dict[str, Vals], wild: dict[str, Vals], where: str) -> None:
    """The bare names among lines, all with the default value in force."""
    val = st.dflt
    seg = [ln for ln in lines  # the bare names
           if ln and ln[0] not in _SLOW_FIRST and " " not in ln and "\t" not in ln and (ln[0] != "*" or ln[1:2] == ".")]
    _merge(st.meta, where, exact, _norm([ln for ln in seg if ln[0] != "." and ln[0] != "*"]), val)
    both = _norm([ln[1:] for ln in seg if ln[0] == "."])
    _merge(st.meta, where, wild, both + _norm([ln[2:] for ln in seg if ln[0] == "*"]), val)
    _merge(st.meta, where, exact, both, val)


class _Lines:
    """Line-by-line parsing state of one file."""

    def __init__(self, meta: Meta, recs: RecTable, exact: dict[str, Vals], wild: dict[str, Vals]) -> None:
        self.meta = meta
        self.recs = recs
        self.exact = exact
        self.wild = wild
        self.default = NO_TXT_DEFAULT
        self.dflt = recs.intern(self.default)
        self._cache: dict[tuple[str, int], int] = {}

    def line(self, where: str, line: str) -> None:
        c = line[0]
        if c == ":":
            r = parse_a_txt(line, NO_TXT_DEFAULT)
            if r is None:
                self.meta.warn(where, "invalid default value")
            else:
                self.default = r
                self.dflt = self.recs.intern(r)
            return
        excl = c == "!"
        s = line[1:].lstrip(" \t") if excl else line
        both = False
        is_wild = False
        if s.startswith("*."):
            is_wild, s = True, s[2:]
        elif s.startswith("."):
            both, s = True, s[1:]
        parts = s.split(None, 1)
        if not parts:
            self.meta.warn(where, "invalid domain name")
            return
        name = parts[0].rstrip(".").lower()
        rest = s[len(parts[0]) :]
        if not valid_name(name):
            self.meta.warn(where, "invalid domain name")
            return
        if excl:
            val = 0
        elif not rest.strip():
            val = self.dflt
        else:
            ck = (rest, self.dflt)
            cached = self._cache.get(ck)
            if cached is None:
                rec = value_of(rest, self.default)
                if rec is None:
                    self.meta.warn(where, "invalid value")
                    return
                cached = self._cache[ck] = self.recs.intern(rec)
            val = cached
        if both or is_wild:
            _add(self.wild, name, val)
        if both or not is_wild:
            _add(self.exact, name, val)


_MASK64 = (1 << 64) - 1
_HASH_PROBE = hash("relayguard.dnsbl.NameTable")


class NameTable:
    """A read-only str -> Vals map in a few compact arrays instead of a dict (a dict of 200,000 names
    costs about 20 MiB, this about 7): names sorted by their hash, found by bisect, checked against one
    joined string. Python's str hash is per process: a table is valid in the process that built it and in
    its fork parent (handover: a forked child shares the hash secret), nowhere else.
    """

    __slots__ = ("_blob", "_hashes", "_lens", "_multi", "_offs", "_vals")

    def __init__(self, d: dict[str, Vals]) -> None:
        names = list(d)
        n = len(names)
        # map() of builtins iterates in C: this runs once per name of a big list
        h = np.fromiter(map(hash, names), dtype=np.int64, count=n).view(np.uint64)
        order = np.argsort(h, kind="stable")
        names = [names[i] for i in order.tolist()]
        self._hashes: Sequence[int] = h[order].data
        lens = np.fromiter(map(len, names), dtype=np.uint32, count=n)
        self._offs: Sequence[int] = (np.cumsum(lens, dtype=np.uint64) - lens).astype(np.uint64).data
        self._lens: Sequence[int] = lens.data
        # names with several values (rare) keep them in a dict; the array holds a marker for them
        self._multi: dict[str, tuple[int, ...]] = {k: v for k, v in d.items() if type(v) is tuple}
        for k in self._multi:
            d[k] = 0xFFFFFFFF
        self._vals: Sequence[int] = np.fromiter(map(d.__getitem__, names), dtype=np.uint32, count=n).data
        self._blob = "".join(names)

    def __len__(self) -> int:
        return len(self._hashes)

    _ARRAYS = ("_hashes", "_offs", "_lens", "_vals")

    # the memoryviews pickle as their numpy arrays (see ip4.SortedKeys), the names as UTF-8 bytes in an
    # array too: a pickled str of megabytes is copied and decoded on the way in, several ms in one piece
    def __getstate__(self) -> tuple[int, tuple[np.ndarray, ...], np.ndarray, dict[str, tuple[int, ...]]]:
        blob = np.frombuffer(self._blob.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        return _HASH_PROBE, tuple(np.asarray(getattr(self, k)) for k in self._ARRAYS), blob, self._multi

    def __setstate__(self, state: tuple[int, tuple[np.ndarray, ...], np.ndarray, dict[str, tuple[int, ...]]]) -> None:
        probe, arrays, blob, self._multi = state
        if probe != _HASH_PROBE:  # the order is by str hash: only valid under the same hash secret
            raise ValueError("a NameTable from a process with another str hash secret")
        self._blob = str(blob.data, "utf-8", "surrogatepass")
        for k, arr in zip(self._ARRAYS, arrays, strict=True):
            setattr(self, k, arr.data)

    def columns(self) -> tuple[Sequence[int], Sequence[int], Sequence[int], Sequence[int], str]:
        """(hashes, offsets, lengths, values, joined names): what the compiled engine reads in place."""
        return self._hashes, self._offs, self._lens, self._vals, self._blob

    def get(self, name: str) -> Vals | None:
        hashes = self._hashes
        h = hash(name) & _MASK64
        i = bisect_left(hashes, h)
        n = len(hashes)
        while i < n and hashes[i] == h:
            o = self._offs[i]
            if self._lens[i] == len(name) and self._blob[o : o + len(name)] == name:
                v = self._vals[i]
                return self._multi[name] if v == 0xFFFFFFFF else v
            i += 1
        return None


class DnSet:
    kind = "dnset"

    def __init__(self, meta: Meta, recs: RecTable, exact: dict[str, Vals], wild: dict[str, Vals],
                 limits: Limits) -> None:
        self.meta = meta
        self.recs = recs.recs
        self.max_wild_labels = max((k.count(".") + 1 for k in wild), default=0)
        self.exact = NameTable(exact)
        exact.clear()
        self.wild = NameTable(wild)
        wild.clear()
        self.ttl = limits.ttl_of(meta)

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> DnSet:
        meta = Meta()
        recs = RecTable()
        exact: dict[str, Vals] = {}
        wild: dict[str, Vals] = {}
        for src in paths:
            st = _Lines(meta, recs, exact, wild)  # the default value resets with each file
            if isinstance(src, LineSource):
                for where, line in iter_entry_lines([src], meta, default_ttl=limits.defttl):
                    st.line(where, line)
                continue
            name = os.path.basename(src)
            lines = read_bytes(src).decode("latin-1").split("\n")
            # Bare names (and .x / *.x wildcards) with the default value are the bulk of real lists: they
            # are handled a run at a time with list comprehensions and dict operations; every other line
            # (specials, defaults, values, exclusions) goes through the line parser, in order.
            other = [i for i, ln in enumerate(lines)  # not a bare name (inlined: runs once per line)
                     if not ln or ln[0] in _SLOW_FIRST or " " in ln or "\t" in ln or (ln[0] == "*" and ln[1:2] != ".")]
            # only a default line (":A:TXT") changes what bare names mean: bulk runs end there, other
            # lines (values, exclusions, specials) go through the line parser as they come
            start = 0
            for i in other:
                raw = lines[i].lstrip(" \t")
                if raw[:1] == ":" and raw[1:2] != "$":
                    _bulk(lines[start:i], st, exact, wild, f"{name}:{start + 1}")
                    start = i + 1
                entry = entry_line(meta, lines[i], name, i + 1, limits.defttl)
                if entry is not None:
                    st.line(f"{name}:{i + 1}", entry)
            _bulk(lines[start:], st, exact, wild, f"{name}:{start + 1}")
        recs.freeze()
        return cls(meta, recs, exact, wild, limits)

    def count(self) -> int:
        return len(self.exact) + len(self.wild)

    def lookup(self, labels: tuple[str, ...]) -> tuple[str, list[Rec]] | None:
        """(matched entry name, values) or None; an exclusion yields an empty value list."""
        if not labels:
            return None
        return self.lookup_name(".".join(labels), labels)

    def lookup_name(self, name: str, labels: tuple[str, ...]) -> tuple[str, list[Rec]] | None:
        v = self.exact.get(name)
        if v is None and self.wild:
            n = len(labels)
            start = max(1, n - self.max_wild_labels)
            for i in range(start, n):
                suffix = ".".join(labels[i:])
                v = self.wild.get(suffix)
                if v is not None:
                    name = suffix
                    break
        if v is None:
            return None
        idxs = (v,) if isinstance(v, int) else v
        if idxs[0] == 0:
            return name, []
        return name, [r for r in (self.recs[i] for i in idxs) if r is not None]

    def fast(self, name: str, labels: tuple[str, ...], qtype: int, out: list[bytes]) -> bool:
        if not labels:
            return False
        hit = self.lookup_name(name, labels)
        if hit is None or not hit[1]:
            return False
        for rec in hit[1]:
            emit_a_txt(out, qtype, rec, hit[0], self.meta, self.ttl)
        return True

    def query(self, q: Query, ans: Answer) -> bool:
        hit = self.lookup(q.labels)
        if hit is None or not hit[1]:
            return False
        name, recs = hit
        for rec in recs:
            add_a_txt(ans, q.qtype, rec, name, self.meta, self.ttl)
        return True
