"""The evaluation corpus: load, strip verdict headers (for every contestant alike), order, split."""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from relayguard.classifier.api import strip_verdict_headers

_DATE = re.compile(rb"^Date:[ \t]*(.*)$", re.M | re.I)


@dataclass(frozen=True)
class Msg:
    name: str  # e.g. "hard_ham.00012.abcd..." (as in the corpus)
    label: bool  # True = spam
    raw: bytes  # verdict headers stripped
    path: Path  # the stripped copy on disk, for contestants that read files
    when: float  # Date header as a timestamp (0 when missing or unreadable)

    @property
    def category(self) -> str:
        return self.name.split(".", 1)[0]


def _date(raw: bytes) -> float:
    head = raw.split(b"\n\n", 1)[0]
    m = _DATE.search(head)
    if not m:
        return 0.0
    try:
        dt = email.utils.parsedate_to_datetime(m.group(1).decode("latin-1").strip())
        return dt.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0


def load(root: Path, workdir: Path, limit: int | None = None) -> list[Msg]:
    """Messages in delivery order (Date header, then name), with stripped copies under workdir."""
    out: list[Msg] = []
    for sub, label in (("ham", False), ("spam", True)):
        d = workdir / "stripped" / sub
        d.mkdir(parents=True, exist_ok=True)
        for f in sorted((root / sub).iterdir()):
            if not f.is_file():
                continue
            raw = strip_verdict_headers(f.read_bytes())
            if raw.startswith(b"From "):
                raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
            p = d / f.name
            p.write_bytes(raw)
            out.append(Msg(f.name, label, raw, p, _date(raw)))
    if limit is not None and limit < len(out):
        # A deterministic subsample that keeps the ham/spam mix.
        out.sort(key=lambda m: hashlib.sha256(b"sample:" + m.name.encode()).digest())
        out = out[:limit]
    out.sort(key=lambda m: (m.when, m.name))
    return out


def split(msgs: list[Msg], train_share: float = 0.5) -> tuple[list[Msg], list[Msg]]:
    """Fixed split by a hash of the file name (the same for every run and every contestant); the train
    part keeps delivery order."""
    cut = int(train_share * 256)
    train = [m for m in msgs if hashlib.sha256(m.name.encode()).digest()[0] < cut]
    test = [m for m in msgs if hashlib.sha256(m.name.encode()).digest()[0] >= cut]
    return train, test
