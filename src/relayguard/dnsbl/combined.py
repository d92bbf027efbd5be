"""combined: several nested datasets in one file, each attached to sub-zones of the base zone.

`$DATASET type[:name] subzone...` opens a section; `@` is the base zone. $SOA and $NS anywhere in the file
belong to the base zone; the common section's $TTL and $n variables are inherited by every section.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from relayguard.dnsbl.answer import Answer, Dataset, Limits, Query
from relayguard.dnsbl.datafile import LineSource, Meta, Source, apply_special, open_text


@dataclass(slots=True)
class Section:
    dataset: Dataset
    subzones: list[tuple[str, ...]]


Loader = Callable[[str, list[Source], Limits], Dataset]


class Combined:
    kind = "combined"

    def __init__(self, meta: Meta, sections: list[Section]) -> None:
        self.meta = meta
        self.sections = sections

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits, loader: Loader) -> Combined:
        meta = Meta()
        common: list[str] = []
        heads: list[tuple[str, list[str], list[str]]] = []  # (type, subzones, lines)
        for path in paths:
            lines: Iterable[str] = path.lines if isinstance(path, LineSource) else open_text(path)
            for n, raw in enumerate(lines, 1):
                line = raw.strip(" \t\r\n")
                body = line[1:] if line.startswith("$") else line[2:] if line[:2] in ("#$", ":$") else None
                if body is not None:
                    word = body.split(None, 1)[0].lower() if body.split() else ""
                    if word == "dataset":
                        parts = body.split()
                        if len(parts) < 2:
                            meta.warn(f"{n}", "invalid $DATASET")
                            continue
                        dtype = parts[1].split(":", 1)[0].lower()
                        subs = ["" if z == "@" else z.rstrip(".").lower() for z in parts[2:]]
                        heads.append((dtype, subs, []))
                        continue
                    if word in ("soa", "ns"):
                        apply_special(meta, body, f"{n}", default_ttl=limits.defttl)
                        continue
                    if not heads:
                        apply_special(meta, body, f"{n}", default_ttl=limits.defttl)
                        common.append(line)
                        continue
                if heads:
                    heads[-1][2].append(line)
        sections: list[Section] = []
        for i, (dtype, subs, lines_) in enumerate(heads):
            if dtype in ("combined", "acl"):
                meta.warn(f"section {i + 1}", f"{dtype} cannot be nested")
                continue
            src = LineSource(f"section{i + 1}", tuple(common + lines_))
            ds = loader(dtype, [src], limits)
            sections.append(Section(ds, [tuple(s.split(".")) if s else () for s in subs]))
        return cls(meta, sections)

    def count(self) -> int:
        return sum(s.dataset.count() for s in self.sections)

    def query(self, q: Query, ans: Answer) -> bool:
        found = False
        labels = q.labels
        for sec in self.sections:
            for sz in sec.subzones:
                n = len(sz)
                if n > len(labels) or (n and labels[-n:] != sz):
                    continue
                if sec.dataset.query(q.sub(labels[: len(labels) - n]), ans):
                    found = True
        return found
