"""rbldnsd data-file syntax shared by every dataset type.

The rbldnsd(8) manual is the reference and the real rbldnsd is the oracle (tests/dnsbl/test_differential.py).
This module knows the line-level grammar: comments, `$` specials ($SOA, $NS, $TTL, $TIMESTAMP,
$MAXRANGE4, $0-$9 substitution variables, $= base template), `:A:TXT` values, and IPv4 prefixes and
ranges. Dataset modules only decide what an entry line means.
"""

from __future__ import annotations

import calendar
import gzip
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

DEFAULT_A = b"\x7f\x00\x00\x02"
MAX_TXT = 255


class DataFileError(ValueError):
    """A data file that cannot be served at all (rbldnsd refuses it too)."""


@dataclass(frozen=True, slots=True)
class Rec:
    """One A value and TXT template; `txt` is "" when the entry has no TXT record."""

    a: bytes
    txt: str


NO_TXT_DEFAULT = Rec(DEFAULT_A, "")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str) -> int:
    """rbldnsd time units: `30`, `35m`, `1w`; raises ValueError."""
    t = text.strip().lower()
    if not t:
        raise ValueError("empty time value")
    mult = 1
    if t[-1] in _UNITS:
        mult = _UNITS[t[-1]]
        t = t[:-1]
    if not t.isdigit():
        raise ValueError(f"bad time value {text!r}")
    v = int(t) * mult
    if v > 0xFFFFFFFF:
        raise ValueError(f"time value out of range {text!r}")
    return v


@dataclass(slots=True)
class Soa:
    ttl: int
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@dataclass(slots=True)
class Meta:
    """Dataset-wide specials. Only the first $SOA and $NS count (rbldnsd does the same)."""

    soa: Soa | None = None
    ns_ttl: int = 0
    ns: list[str] = field(default_factory=list)
    ns_seen: bool = False
    ttl: int | None = None
    subst: dict[str, str] = field(default_factory=dict)
    base_template: str | None = None
    timestamp: int | None = None
    expires: int | None = None
    maxrange4: int | None = None
    warnings: list[str] = field(default_factory=list)

    def warn(self, where: str, msg: str) -> None:
        if len(self.warnings) < 1000:  # a broken million-line file must not eat memory in warnings
            self.warnings.append(f"{where}: {msg}")


def _parse_timestamp(text: str) -> int | None:
    """`yyyy:mm:dd[:hh[:mi[:ss]]]` (':' or '-' separators optional); 0 or '-' means not given."""
    if text in ("0", "-"):
        return None
    digits = re.sub(r"[-:]", "", text)
    if not digits.isdigit() or len(digits) < 8:
        raise ValueError(f"bad timestamp {text!r}")
    y, mo, d = int(digits[0:4]), int(digits[4:6]), int(digits[6:8])
    hh = int(digits[8:10] or 0)
    mi = int(digits[10:12] or 0)
    ss = int(digits[12:14] or 0)
    return calendar.timegm((y, mo, d, hh, mi, ss, 0, 0, 0))


def _dn(text: str) -> str:
    """Values are absolute names; rbldnsd ignores trailing dots and folds case."""
    return text.rstrip(".").lower()


def apply_special(meta: Meta, body: str, where: str, *, default_ttl: int) -> None:
    """One `$...` line (without the `$`). Unknown or malformed specials are warned about and skipped."""
    parts = body.split()
    if not parts:
        meta.warn(where, "empty special entry")
        return
    key = parts[0]
    kl = key.lower()
    try:
        if kl == "soa":
            if meta.soa is not None:
                return
            if len(parts) != 9:
                raise ValueError("$SOA needs ttl origin person serial refresh retry expire minttl")
            ttl = parse_time(parts[1]) or (meta.ttl if meta.ttl is not None else default_ttl)
            nums = [int(p) if p.isdigit() else parse_time(p) for p in parts[4:9]]
            meta.soa = Soa(ttl, _dn(parts[2]), _dn(parts[3]), *nums)
        elif kl == "ns":
            if meta.ns_seen:
                return
            if len(parts) < 2:
                raise ValueError("$NS needs a ttl")
            meta.ns_ttl = parse_time(parts[1]) or (meta.ttl if meta.ttl is not None else default_ttl)
            meta.ns = [_dn(p) for p in parts[2:] if not p.startswith("-")][:32]
            meta.ns_seen = True
        elif kl == "ttl":
            if len(parts) != 2:
                raise ValueError("$TTL needs one value")
            meta.ttl = parse_time(parts[1]) or default_ttl
        elif kl == "timestamp":
            if len(parts) not in (2, 3):
                raise ValueError("$TIMESTAMP needs dstamp [expires]")
            meta.timestamp = _parse_timestamp(parts[1])
            if len(parts) == 3:
                exp = parts[2]
                if exp.startswith("+"):
                    base = meta.timestamp if meta.timestamp is not None else int(time.time())
                    meta.expires = base + parse_time(exp[1:])
                else:
                    meta.expires = _parse_timestamp(exp)
            if meta.timestamp is not None and meta.timestamp > time.time():
                raise DataFileError(f"{where}: $TIMESTAMP is in the future")
        elif kl == "maxrange4":
            if len(parts) != 2:
                raise ValueError("$MAXRANGE4 needs one value")
            v = parts[1]
            size = 1 << (32 - int(v[1:])) if v.startswith("/") else int(v)
            if size <= 0:
                raise ValueError("bad $MAXRANGE4")
            # a later $MAXRANGE4 may lower the limit, never raise it
            meta.maxrange4 = size if meta.maxrange4 is None else min(meta.maxrange4, size)
        elif len(key) == 1 and key.isdigit():
            rest = body[1:].strip()
            if not rest or not body[1:2].isspace():
                raise ValueError("bad substitution variable")
            meta.subst.setdefault(key, rest)
        elif key.startswith("="):
            rest = body[1:].strip()
            if meta.base_template is None and rest:
                meta.base_template = rest
        else:
            raise ValueError(f"unknown special ${key}")
    except DataFileError:
        raise
    except ValueError as e:
        meta.warn(where, f"invalid special entry: {e}")


def open_text(path: str) -> Iterator[str]:
    """Lines of a data file; gzip files are read transparently, as rbldnsd built with zlib does."""
    with open(path, "rb") as fb:
        magic = fb.read(2)
    if magic == b"\x1f\x8b":
        with gzip.open(path, "rt", encoding="latin-1", newline="") as fz:
            yield from fz
    else:
        # latin-1: data files are bytes; any byte must round-trip into a TXT record unchanged
        with open(path, encoding="latin-1", newline="") as ft:
            yield from ft


@dataclass(frozen=True, slots=True)
class LineSource:
    """In-memory lines standing in for a file (the sections of a combined dataset)."""

    name: str
    lines: tuple[str, ...]


Source = str | LineSource


def iter_entry_lines(paths: Iterable[Source], meta: Meta, *, default_ttl: int) -> Iterator[tuple[str, str]]:
    """(where, line) for every entry line of the files, handling comments and specials on the way.

    Lines are stripped of surrounding blanks; `$x`, `#$x` and `:$x` are specials (the latter two so that
    files shared with djb's rbldns work); other lines starting with `#` or `;` and empty lines are skipped.
    """
    for path in paths:
        if isinstance(path, LineSource):
            name = path.name
            lines: Iterable[str] = path.lines
        else:
            name = os.path.basename(path)
            lines = open_text(path)
        for n, raw in enumerate(lines, 1):
            line = entry_line(meta, raw, name, n, default_ttl)
            if line is not None:
                yield f"{name}:{n}", line


def entry_line(meta: Meta, raw: str, name: str, n: int, default_ttl: int) -> str | None:
    """The stripped entry text of one raw line, or None for blanks, comments and specials (applied to
    meta on the way). `$x`, `#$x` and `:$x` are specials (the latter two so that files shared with djb's
    rbldns work); other lines starting with `#` or `;` are comments."""
    line = raw.strip(" \t\r\n")
    if not line:
        return None
    c = line[0]
    if c == "$":
        apply_special(meta, line[1:], f"{name}:{n}", default_ttl=default_ttl)
        return None
    if (c == "#" or c == ":") and line[1:2] == "$":
        apply_special(meta, line[2:], f"{name}:{n}", default_ttl=default_ttl)
        return None
    if c == "#" or c == ";":
        return None
    return line


def parse_a_value(text: str) -> bytes | None:
    """`127.0.0.2`, or `2` for 127.0.0.2; None if invalid (zero is invalid too)."""
    r = parse_ip4_prefix(text)
    if r is None:
        return None
    a, octets, rest = r
    if rest or a == 0:
        return None
    # short forms read like inet_aton: `2` is 127.0.0.2 (rbldnsd's loopback shortcut), `1.2` is 1.0.0.2
    if octets == 1:
        a = 0x7F000000 | (a >> 24)
    elif octets == 2:
        a = (a & 0xFF000000) | ((a >> 16) & 0xFF)
    elif octets == 3:
        a = (a & 0xFFFF0000) | ((a >> 8) & 0xFF)
    return a.to_bytes(4, "big")


def parse_a_txt(text: str, default: Rec) -> Rec | None:
    """The value part of an entry or default line: `:A:TXT`, `:A`, `:A:`, or `TXT` alone.

    `:A` keeps the default TXT; `:A:` means no TXT; plain text keeps the default A. TXT is cut to 255
    bytes. None if the A part is invalid.
    """
    s = text.lstrip(" \t")
    if s.startswith(":"):
        body = s[1:]
        m = re.match(r"[0-9.]*", body)
        a = parse_a_value(m.group(0)) if m else None
        if a is None:
            return None
        rest = body[m.end() :].lstrip(" \t") if m else ""
        if rest.startswith(":"):
            txt = rest[1:].lstrip(" \t")
        elif rest == "" or rest.startswith("#"):
            return Rec(a, default.txt)
        else:
            return None
        return Rec(a, txt[:MAX_TXT])
    if s.startswith("#") or not s:
        return default
    return Rec(default.a, s[:MAX_TXT])


# ---------------------------------------------------------------------------------------------------
# IPv4 prefixes and ranges, the way rbldnsd writes them
# ---------------------------------------------------------------------------------------------------

_IP4_PREFIX = re.compile(r"(\d{1,3})(?:\.(\d{1,3}))?(?:\.(\d{1,3}))?(?:\.(\d{1,3}))?")


def parse_ip4_prefix(text: str) -> tuple[int, int, str] | None:
    """`a[.b[.c[.d]]]` -> (address with missing octets zero, number of octets given, rest)."""
    m = _IP4_PREFIX.match(text)
    if not m:
        return None
    a = 0
    n = 0
    for g in m.groups():
        if g is None:
            break
        v = int(g)
        if v > 255:
            return None
        a = (a << 8) | v
        n += 1
    rest = text[m.end() :]
    if rest[:1].isdigit():
        return None
    return a << (8 * (4 - n)), n, rest


def parse_ip4_range(text: str, *, cidr_only: bool = False) -> tuple[int, int, str] | None:
    """An rbldnsd IPv4 entry key -> (first, last, rest of line), or None if malformed.

    Forms: `a.b.c.d`, prefix `a.b.c` (= /24), CIDR `a.b/16` (the prefix must be a network address),
    and ranges `a.b.c.d-e.f.g.h`, `a.b-c` (a short last boundary replaces the trailing octets of the
    first). With cidr_only, ranges are refused (ip4trie, acl).
    """
    r = parse_ip4_prefix(text)
    if r is None:
        return None
    a, n, rest = r
    if rest.startswith("/"):
        m = re.match(r"/(\d{1,2})", rest)
        if not m:
            return None
        bits = int(m.group(1))
        if bits > 32:
            return None
        rest = rest[m.end() :]
        if rest[:1].isdigit():
            return None
        host = (1 << (32 - bits)) - 1
        if a & host:
            return None  # rbldnsd rejects 127.2.3.4/24 (without -e) to catch typos
        return a, a | host, rest
    if rest.startswith("-") and not cidr_only:
        r2 = parse_ip4_prefix(rest[1:])
        if r2 is None:
            return None
        b, n2, rest2 = r2
        if n2 < n:
            # 127.16-31: the short boundary replaces the last octets of the first one
            keep = n - n2
            head = a >> (8 * (4 - keep))
            b = (head << (8 * (4 - keep))) | (b >> (8 * keep))
            n2 = n
        b |= (1 << (8 * (4 - n2))) - 1
        if b < a:
            return None
        return a, b, rest2
    return a, a | ((1 << (8 * (4 - n))) - 1), rest


def entry_rest_ok(rest: str) -> bool:
    """After a key, rbldnsd accepts end of line, blanks, a comment or a value (`:`)."""
    return not rest or rest[0] in " \t#;:"


def value_of(rest: str, default: Rec) -> Rec | None:
    """The Rec of an entry from what follows its key (default when empty or a comment)."""
    s = rest.lstrip(" \t")
    if not s or s[0] in "#;":
        return default
    return parse_a_txt(s, default)


class RecTable:
    """Interned Recs: a million entries usually share a handful of values, so entries store an index.

    Index 0 is reserved for exclusions (`!entry`).
    """

    __slots__ = ("_index", "recs")

    def __init__(self) -> None:
        self.recs: list[Rec | None] = [None]
        self._index: dict[Rec, int] = {}

    def intern(self, rec: Rec) -> int:
        i = self._index.get(rec)
        if i is None:
            i = len(self.recs)
            self.recs.append(rec)
            self._index[rec] = i
        return i

    def freeze(self) -> None:
        self._index = {}


def mtime_serial(paths: Iterable[str]) -> int:
    """rbldnsd's SOA serial 0 means: the newest modification time among the files."""
    return max((int(os.stat(p).st_mtime) for p in paths), default=0)
