"""dnset: domain names (relative to the zone), plain or wildcard, with A/TXT values; `!` excludes.

`example.com` lists the name only, `*.example.com` its subdomains only, `.example.com` both. An exact
entry wins over wildcards; the longest wildcard wins; an exclusion where the search stops hides it.
"""

from __future__ import annotations

from collections.abc import Iterable

from relayguard.dnsbl.answer import Answer, Limits, Query, add_a_txt
from relayguard.dnsbl.datafile import (
    NO_TXT_DEFAULT,
    Meta,
    Rec,
    RecTable,
    Source,
    iter_entry_lines,
    parse_a_txt,
    value_of,
)

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
    if not name or len(name) > 253:
        return False
    return all(0 < len(lab) <= 63 for lab in name.split("."))


class DnSet:
    kind = "dnset"

    def __init__(self, meta: Meta, recs: RecTable, exact: dict[str, Vals], wild: dict[str, Vals],
                 limits: Limits) -> None:
        self.meta = meta
        self.recs = recs.recs
        self.exact = exact
        self.wild = wild
        self.ttl = limits.ttl_of(meta)
        self.max_wild_labels = max((k.count(".") + 1 for k in wild), default=0)

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> DnSet:
        meta = Meta()
        recs = RecTable()
        default = NO_TXT_DEFAULT
        dflt = recs.intern(default)
        exact: dict[str, Vals] = {}
        wild: dict[str, Vals] = {}
        for where, line in iter_entry_lines(paths, meta, default_ttl=limits.defttl):
            c = line[0]
            if c == ":":
                r = parse_a_txt(line, NO_TXT_DEFAULT)
                if r is None:
                    meta.warn(where, "invalid default value")
                else:
                    default = r
                    dflt = recs.intern(default)
                continue
            excl = c == "!"
            s = line[1:].lstrip(" \t") if excl else line
            both = False
            is_wild = False
            if s.startswith("*."):
                is_wild, s = True, s[2:]
            elif s.startswith("."):
                both, s = True, s[1:]
            sp = len(s)
            for i, ch in enumerate(s):
                if ch in " \t":
                    sp = i
                    break
            name = s[:sp].rstrip(".").lower()
            rest = s[sp:]
            if not valid_name(name):
                meta.warn(where, "invalid domain name")
                continue
            if excl:
                val = 0
            elif not rest:
                val = dflt
            else:
                rec = value_of(rest, default)
                if rec is None:
                    meta.warn(where, "invalid value")
                    continue
                val = recs.intern(rec)
            if both or is_wild:
                _add(wild, name, val)
            if both or not is_wild:
                _add(exact, name, val)
        recs.freeze()
        return cls(meta, recs, exact, wild, limits)

    def count(self) -> int:
        return len(self.exact) + len(self.wild)

    def lookup(self, labels: tuple[str, ...]) -> tuple[str, list[Rec]] | None:
        """(matched entry name, values) or None; an exclusion yields an empty value list."""
        if not labels:
            return None
        name = ".".join(labels)
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

    def query(self, q: Query, ans: Answer) -> bool:
        hit = self.lookup(q.labels)
        if hit is None or not hit[1]:
            return False
        name, recs = hit
        for rec in recs:
            add_a_txt(ans, q.qtype, rec, name, self.meta, self.ttl)
        return True
