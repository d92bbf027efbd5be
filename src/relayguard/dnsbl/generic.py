"""generic: simplified BIND-style records, one per line: `name [ttl] A|TXT|MX value`.

Names are relative to the zone (`@` is the zone itself); values are absolute. A name that only exists
as the parent of other names is NXDOMAIN, as in rbldnsd.
"""

from __future__ import annotations

from collections.abc import Iterable

from relayguard.dnsbl.answer import T_A, T_ANY, T_MX, T_TXT, Answer, Limits, Query, encode_name
from relayguard.dnsbl.datafile import Meta, Source, iter_entry_lines, parse_ip4_prefix, parse_time


class Generic:
    kind = "generic"

    def __init__(self, meta: Meta, records: dict[str, list[tuple[int, int, bytes]]]) -> None:
        self.meta = meta
        self.records = records

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> Generic:
        meta = Meta()
        recs: dict[str, list[tuple[int, int, bytes]]] = {}
        for where, line in iter_entry_lines(paths, meta, default_ttl=limits.defttl):
            ttl = limits.ttl_of(meta)
            parts = line.split(None, 1)
            if len(parts) < 2:
                meta.warn(where, "invalid entry")
                continue
            name = parts[0].rstrip(".").lower()
            if name == "@":
                name = ""
            rest = parts[1]
            tp = rest.split(None, 1)
            if tp and tp[0][0].isdigit():
                try:
                    t = parse_time(tp[0])
                except ValueError:
                    meta.warn(where, "invalid ttl")
                    continue
                ttl = limits.clamp(t) if t else ttl
                rest = tp[1] if len(tp) > 1 else ""
            tv = rest.split(None, 1)
            if len(tv) < 2:
                meta.warn(where, "invalid entry")
                continue
            rtype, value = tv[0].lower(), tv[1].strip()
            rr: tuple[int, int, bytes]
            if rtype == "a":
                p = parse_ip4_prefix(value)
                if p is None or p[2].strip():
                    meta.warn(where, "invalid A")
                    continue
                rr = (T_A, ttl, p[0].to_bytes(4, "big"))
            elif rtype == "txt":
                if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                    value = value[1:-1]
                b = value.encode("latin-1", "replace")[:255]
                rr = (T_TXT, ttl, bytes((len(b),)) + b)
            elif rtype == "mx":
                pv = value.split()
                if len(pv) != 2 or not pv[0].isdigit() or int(pv[0]) > 65535:
                    meta.warn(where, "invalid MX")
                    continue
                rr = (T_MX, ttl, int(pv[0]).to_bytes(2, "big") + encode_name(pv[1].rstrip(".").lower()))
            else:
                meta.warn(where, f"unsupported record type {tv[0]}")
                continue
            recs.setdefault(name, []).append(rr)
        return cls(meta, recs)

    def count(self) -> int:
        return sum(len(v) for v in self.records.values())

    def query(self, q: Query, ans: Answer) -> bool:
        name = ".".join(q.labels)
        rrs = self.records.get(name)
        if rrs is None:
            # rbldnsd answers NXDOMAIN for names that only exist as parents of listed names
            return False
        qt = q.qtype
        for rtype, ttl, rdata in rrs:
            if qt in (rtype, T_ANY):
                ans.add(rtype, ttl, rdata)
        return True
