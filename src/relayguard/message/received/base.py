"""Shared pieces of the Received parsers: the address pattern, the scratch record, the rule type.

Every dialect module declares `Rule`s; `parse.py` tries them in one fixed order. The order is
SpamAssassin's (Message/Metadata/Received.pm), because the formats overlap and the first match wins:
agreeing with SpamAssassin on which rule claims a line is what makes the fields agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

# SpamAssassin's IP_ADDRESS (Constants.pm): dotted quad, or IPv6 with an optional `IPv6:` prefix and
# an optional embedded IPv4 tail. Ported as is so both sides cut the same string out of a line.
_OCTET = r"(?:1\d\d|2[0-4]\d|25[0-5]|[1-9]\d|\d)"
_H = r"[a-f0-9]{1,4}"
IP_ADDRESS = (
    r"(?i:"
    rf"\b(?<!:){_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\b"
    r"|"
    r"(?:IPv6:|(?<![a-f0-9:]))"
    r"(?:"
    r"(?:"
    rf"(?:{_H}:){{6}}"
    rf"|::(?:{_H}:){{0,5}}"
    rf"|(?:{_H}:){{1,5}}:"
    rf"|{_H}::(?:{_H}:){{1,4}}"
    rf"|(?:{_H}:){{2}}:(?:{_H}:){{1,3}}"
    rf"|(?:{_H}:){{3}}:(?:{_H}:){{1,2}}"
    rf"|(?:{_H}:){{4}}:{_H}:"
    r")"
    rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
    rf"|(?:{_H}:){{7}}{_H}"
    rf"|:(?::{_H}){{1,7}}"
    rf"|(?:{_H}:){{1,7}}:"
    rf"|{_H}:(?::{_H}){{1,6}}"
    rf"|(?:{_H}:){{2}}(?::{_H}){{1,5}}"
    rf"|(?:{_H}:){{3}}(?::{_H}){{1,4}}"
    rf"|(?:{_H}:){{4}}(?::{_H}){{1,3}}"
    rf"|(?:{_H}:){{5}}(?::{_H}){{1,2}}"
    rf"|(?:{_H}:){{6}}:{_H}"
    r"|::"
    r")"
    r"(?![a-f0-9:])"
    r")"
)

# SpamAssassin's LOCALHOST, reduced to the forms that occur in Received lines.
LOCALHOST = (
    r"(?i:localhost(?:\.localdomain)?|\b(?<!:)127\.0\.0\.1\b"
    r"|(?:IPv6:)?(?:0{1,4}:){5}ffff:127\.0\.0\.1|::(?:0{1,4}:){0,4}ffff:127\.0\.0\.1|::1(?![a-f0-9:]))"
)


def rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile once at import. `{IP}` and `{LH}` stand for the address and localhost patterns."""
    return re.compile(pattern.replace("{IP}", IP_ADDRESS).replace("{LH}", LOCALHOST), flags | re.ASCII)


class Outcome(Enum):
    HOP = "hop"  # enough was found: the line describes a handover
    SKIP = "skip"  # a known line that is not a network hop (local pickup, fetchmail, qmail uid, ...)
    FETCH = "fetch"  # a mail fetcher (fetchmail/getmail) marker: skip it, and tell the trust walk


@dataclass(slots=True)
class Fields:
    """Scratch record one line is parsed into; '' means absent, as in SpamAssassin."""

    ip: str = ""
    rdns: str = ""
    helo: str = ""
    by: str = ""
    ident: str = ""
    id: str = ""
    envfrom: str | None = None
    auth: str = ""
    dialect: str = "unknown"
    looked_up_dns: bool = False  # the MTA that wrote the line resolves client names itself

    def set(self, **values: str) -> None:
        for k, v in values.items():
            setattr(self, k, v)


_FIELD_NAMES = frozenset(("ip", "rdns", "helo", "by", "ident", "id", "envfrom"))

Post = Callable[[re.Match[str], Fields], "Outcome | None"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One known format: a cheap marker test, then one precompiled regex.

    Named groups (`ip`, `rdns`, `helo`, `by`, `ident`, `id`, `envfrom`) are copied into the fields on a
    match; `post` may adjust them (or return None to say "not this format after all"). `outcome` says
    what a match means.
    """

    dialect: str
    regex: re.Pattern[str]
    marker: str | None = None
    post: Post | None = None
    outcome: Outcome = Outcome.HOP
    guard: re.Pattern[str] | None = None  # a second condition SpamAssassin tests first
    looked_up_dns: bool = False  # SpamAssassin's $mta_looked_up_dns for this format
    # The first character a line must start with, read off a pattern anchored on `^\[` or `^\(`:
    # a string comparison that spares most lines a regex call.
    first: str = field(default="", init=False)

    def __post_init__(self) -> None:
        p = self.regex.pattern
        if p.startswith(("^\\[", "^\\(")) and p[3:4] not in ("?", "*"):
            object.__setattr__(self, "first", p[2])

    def apply(self, s: str, f: Fields) -> Outcome | None:
        if self.first and not s.startswith(self.first):
            return None
        if self.marker is not None and self.marker not in s:
            return None
        if self.guard is not None and self.guard.search(s) is None:
            return None
        m = self.regex.search(s)
        if m is None:
            return None
        if self.outcome is not Outcome.HOP:
            return self.outcome
        for k, v in m.groupdict().items():
            if v is not None and k in _FIELD_NAMES:
                setattr(f, k, v)
        f.dialect = self.dialect
        f.looked_up_dns = self.looked_up_dns
        if self.post is not None:
            return self.post(m, f)
        return Outcome.HOP


def run_rules(rules: tuple[Rule, ...], s: str, f: Fields) -> Outcome | None:
    for rule in rules:
        out = rule.apply(s, f)
        if out is not None:
            return out
    return None


def sub_helo_ident(sub: str, f: Fields) -> None:
    """Exim's `(helo=X ident=Y)` comment, SpamAssassin's way: first `helo=\\S+`, then `ident=\\S*`."""
    m = _HELO_EQ.search(sub)
    if m:
        f.helo = m.group(1)
        sub = sub[: m.start()] + sub[m.end() :]
    m = _IDENT_EQ.search(sub)
    if m:
        f.ident = m.group(1)


_HELO_EQ = rx(r"helo=(\S+)")
_IDENT_EQ = rx(r"ident=(\S*)")
