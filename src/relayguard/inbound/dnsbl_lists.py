"""DNS blocklists as data: one block per list says where to ask, what to ask about, and what answers mean.

A block names a zone, the addresses or domains to look up (`query`: selectors such as `lastexternal`
or `url`), and rules mapping answers (codes, ranges or bitmasks) to symbols, each rule limited to the
selectors it is valid for. That last part is what lets one zone serve several policies: Spamhaus zen
is queried for every untrusted hop, yet an XBL or PBL code only counts on the last external hop.

Answers in `errors` (Spamhaus' 127.255.255.x "your query was refused", DBL's 127.0.1.255 "you asked a
domain list about an IP", URIBL's 127.0.0.1) give `<NAME>_BLOCKED` and never a listing; so does any
answer outside 127.0.0.0/8 (a hijacking resolver's wildcard is not a listing).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IpSelector = Literal[
    "lastexternal",  # the hop that handed the message into our networks
    "untrusted",  # every untrusted hop, newest first, up to max_untrusted
    "firsttrusted",  # the client the oldest trusted hop received from (SpamAssassin's -firsttrusted)
    "notfirsthop",  # untrusted hops except the oldest (the first hop may be a legitimate dial-up)
    "client",  # the connecting client the front end reports
    "originating",  # X-Originating-IP-style headers ([inbound] originating_headers)
    "authenticated",  # the address that authenticated (SASL client, or the hop recorded as ESMTPA)
    "urlhost",  # URL hosts that are IP literals, plus resolved URL hosts when enabled
]
DomainSelector = Literal[
    "url",  # registrable domains of URLs in text and HTML
    "from",
    "replyto",
    "returnpath",
    "mailfrom",  # envelope sender (front end)
    "helo",  # the last external hop's HELO
    "rdns",  # the last external hop's reverse DNS name
    "email",  # domains of e-mail addresses in the body
]
IP_SELECTORS: tuple[str, ...] = IpSelector.__args__  # type: ignore[attr-defined]
DOMAIN_SELECTORS: tuple[str, ...] = DomainSelector.__args__  # type: ignore[attr-defined]

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9_]{1,62}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def _check_symbol(v: str) -> str:
    if not _SYMBOL.match(v):
        raise ValueError(f"{v!r}: symbols are upper-case letters, digits and _ (2-63 characters)")
    return v


def _check_zone(v: str) -> str:
    z = v.strip().lower().rstrip(".")
    labels = z.split(".")
    if len(z) > 200 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{v!r} is not a DNS zone name")
    return z


def parse_code_range(text: str) -> tuple[int, int]:
    """`127.0.0.2`, `127.0.0.4-127.0.0.7`, `127.255.255.0/24` -> inclusive integer range."""
    t = text.strip()
    try:
        if "/" in t:
            net = ipaddress.IPv4Network(t, strict=False)
            return int(net.network_address), int(net.broadcast_address)
        if "-" in t:
            lo_t, _, hi_t = t.partition("-")
            lo, hi = int(ipaddress.IPv4Address(lo_t.strip())), int(ipaddress.IPv4Address(hi_t.strip()))
            if lo > hi:
                raise ValueError(f"{text!r}: range runs backwards")
            return lo, hi
        a = int(ipaddress.IPv4Address(t))
        return a, a
    except ipaddress.AddressValueError as exc:
        raise ValueError(f"{text!r} is not an IPv4 address, range or CIDR ({exc})") from None
    except ipaddress.NetmaskValueError as exc:
        raise ValueError(f"{text!r}: bad prefix ({exc})") from None


class ListRule(BaseModel):
    """Answer codes (or a bitmask over the last octet) that mean one symbol, on some selectors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str
    codes: list[str] = Field(default_factory=list)
    bitmask: Annotated[int, Field(ge=1, le=255)] | None = None
    on: list[str] = Field(default_factory=list)  # empty: every selector the list queries
    # Never fire for a message our own authenticated customer submitted (Spamhaus: PBL).
    skip_authenticated: bool = False
    description: str = ""

    _sym = field_validator("symbol")(classmethod(lambda cls, v: _check_symbol(v)))

    @field_validator("codes")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        for c in v:
            parse_code_range(c)
        return v

    @model_validator(mode="after")
    def _some_match(self) -> ListRule:
        if not self.codes and self.bitmask is None:
            raise ValueError(f"rule {self.symbol}: give codes, a bitmask, or both")
        return self


class ListSpec(BaseModel):
    """One DNS list (`[[inbound.lists]]`). `name` prefixes its own symbols: NAME_BLOCKED (the list
    refused our query), NAME_BROKEN (monitoring says its answers are wrong; skipped), NAME_FAIL
    (timeouts and SERVFAIL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    zone: str
    kind: Literal["ip", "domain"] = "ip"
    enabled: bool = True
    query: list[str]
    rules: Annotated[list[ListRule], Field(min_length=1)]
    errors: list[str] = Field(default_factory=lambda: ["127.255.255.0/24"])
    ipv6: bool = True
    max_untrusted: Annotated[int, Field(ge=1, le=50)] = 9
    timeout: Annotated[float, Field(gt=0, le=60)] | None = None  # default: [dns] timeout
    # Upstreams for this zone only, e.g. a local rbldnsd mirror ("127.0.0.1:5300").
    nameservers: list[str] = Field(default_factory=list)
    monitor: bool = True
    # RFC 5782 §5: 127.0.0.2 / "test" must be listed, 127.0.0.1 / "invalid" must not.
    monitor_listed: str | None = None
    monitor_unlisted: str | None = None
    description: str = ""

    _sym = field_validator("name")(classmethod(lambda cls, v: _check_symbol(v)))
    _zone = field_validator("zone")(classmethod(lambda cls, v: _check_zone(v)))

    @field_validator("errors")
    @classmethod
    def _errors(cls, v: list[str]) -> list[str]:
        for c in v:
            parse_code_range(c)
        return v

    @field_validator("nameservers")
    @classmethod
    def _ns(cls, v: list[str]) -> list[str]:
        from relayguard.config.schema import parse_hostport

        for e in v:
            parse_hostport(e, 53)
        return v

    @model_validator(mode="after")
    def _selectors(self) -> ListSpec:
        allowed = IP_SELECTORS if self.kind == "ip" else DOMAIN_SELECTORS
        if not self.query:
            raise ValueError(f"list {self.name}: `query` needs at least one selector")
        for s in self.query:
            if s not in allowed:
                raise ValueError(f"list {self.name}: {s!r} is not a {self.kind} selector ({', '.join(allowed)})")
        for r in self.rules:
            for s in r.on:
                if s not in self.query:
                    raise ValueError(f"list {self.name}, rule {r.symbol}: {s!r} is not in `query`")
        return self

    @property
    def listed_probe(self) -> str:
        return self.monitor_listed or ("127.0.0.2" if self.kind == "ip" else "test")

    @property
    def unlisted_probe(self) -> str:
        return self.monitor_unlisted or ("127.0.0.1" if self.kind == "ip" else "invalid")

    @property
    def blocked_symbol(self) -> str:
        return f"{self.name}_BLOCKED"

    @property
    def broken_symbol(self) -> str:
        return f"{self.name}_BROKEN"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    symbol: str
    ranges: tuple[tuple[int, int], ...]
    bitmask: int | None
    on: frozenset[str]
    skip_authenticated: bool

    def matches(self, code: int) -> bool:
        if any(lo <= code <= hi for lo, hi in self.ranges):
            return True
        return self.bitmask is not None and bool(code & 0xFF & self.bitmask)


@dataclass(frozen=True, slots=True)
class Meaning:
    """What one A record in a list's answer means."""

    kind: Literal["listed", "error", "unknown"]
    code: str
    rules: tuple[CompiledRule, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledList:
    spec: ListSpec
    rules: tuple[CompiledRule, ...]
    errors: tuple[tuple[int, int], ...]

    @classmethod
    def build(cls, spec: ListSpec) -> CompiledList:
        every = frozenset(spec.query)
        rules = tuple(
            CompiledRule(
                r.symbol,
                tuple(parse_code_range(c) for c in r.codes),
                r.bitmask,
                frozenset(r.on) or every,
                r.skip_authenticated,
            )
            for r in spec.rules
        )
        return cls(spec, rules, tuple(parse_code_range(c) for c in spec.errors))

    def interpret(self, answer: str) -> Meaning:
        """Classify one A record. Errors are checked first: an error code is never a listing."""
        try:
            addr = ipaddress.IPv4Address(answer)
        except ValueError:
            return Meaning("error", answer)
        code = int(addr)
        if addr not in _LOOPBACK or any(lo <= code <= hi for lo, hi in self.errors):
            return Meaning("error", answer)
        matched = tuple(r for r in self.rules if r.matches(code))
        return Meaning("listed", answer, matched) if matched else Meaning("unknown", answer)


def ip_query_name(ip: str, zone: str) -> str | None:
    """4.3.2.1.zone for 1.2.3.4; the 32 reversed nibbles for IPv6 (RFC 5782 §2.4); None if not an IP."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv4Address):
        return ".".join(reversed(str(addr).split("."))) + "." + zone
    nibbles = addr.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + "." + zone


def domain_query_name(domain: str, zone: str) -> str | None:
    d = domain.strip().lower().rstrip(".")
    labels = d.split(".")
    if not d or len(d) + len(zone) > 250 or not all(_LABEL.match(label) for label in labels):
        return None
    return d + "." + zone


# -- shipped blocks: off until named in [inbound] use (they need the Internet and, for some, a key) -----

_SPAMHAUS_ERRORS = ["127.255.255.0/24"]

SHIPPED: dict[str, dict[str, Any]] = {
    "spamhaus_zen": {
        "name": "SPAMHAUS_ZEN",
        "zone": "zen.spamhaus.org",
        "query": ["untrusted", "lastexternal"],
        "errors": _SPAMHAUS_ERRORS,
        "description": "Spamhaus SBL+CSS+XBL+PBL+DROP: SBL/CSS/DROP on every untrusted hop, XBL/PBL "
        "on the last external one",
        "rules": [
            {
                "symbol": "RBL_SPAMHAUS_SBL",
                "codes": ["127.0.0.2"],
                "on": ["untrusted"],
                "description": "Spamhaus SBL: a spam source or spam operation",
            },
            {
                "symbol": "RBL_SPAMHAUS_CSS",
                "codes": ["127.0.0.3"],
                "on": ["untrusted"],
                "description": "Spamhaus CSS: a low-reputation sending address (snowshoe)",
            },
            {
                "symbol": "RBL_SPAMHAUS_XBL",
                "codes": ["127.0.0.4-127.0.0.7"],
                "on": ["lastexternal"],
                "description": "Spamhaus XBL: the origin is an infected host or open proxy",
            },
            {
                "symbol": "RBL_SPAMHAUS_DROP",
                "codes": ["127.0.0.9"],
                "on": ["untrusted"],
                "description": "Spamhaus DROP: a hijacked or criminal network",
            },
            {
                "symbol": "RBL_SPAMHAUS_PBL",
                "codes": ["127.0.0.10-127.0.0.11"],
                "on": ["lastexternal"],
                "skip_authenticated": True,
                "description": "Spamhaus PBL: end-user space that should not send directly",
            },
        ],
    },
    "spamhaus_authbl": {
        # AuthBL is served through Spamhaus DQS only: set the zone to <key>.authbl.dq.spamhaus.net.
        "name": "SPAMHAUS_AUTHBL",
        "zone": "authbl.dq.spamhaus.net",
        "query": ["authenticated"],
        "errors": _SPAMHAUS_ERRORS,
        "description": "Spamhaus AuthBL: bots logging in with stolen credentials (the address that authenticated)",
        "rules": [
            {
                "symbol": "RBL_SPAMHAUS_AUTHBL",
                "codes": ["127.0.0.20"],
                "description": "Spamhaus AuthBL: the authenticating client is a known credential-stuffing bot",
            },
        ],
    },
    "spamhaus_dbl": {
        "name": "SPAMHAUS_DBL",
        "zone": "dbl.spamhaus.org",
        "kind": "domain",
        "query": ["url", "from", "replyto", "returnpath", "mailfrom", "helo", "rdns", "email"],
        "errors": ["127.0.1.255", *_SPAMHAUS_ERRORS],
        "ipv6": False,
        "monitor_listed": "dbltest.com",
        "description": "Spamhaus DBL: domains in URLs, senders, HELO and reverse DNS",
        "rules": [
            {"symbol": "DBL_SPAM", "codes": ["127.0.1.2"], "description": "DBL: spam domain"},
            {"symbol": "DBL_PHISH", "codes": ["127.0.1.4"], "description": "DBL: phishing domain"},
            {"symbol": "DBL_MALWARE", "codes": ["127.0.1.5"], "description": "DBL: malware domain"},
            {"symbol": "DBL_BOTNET_CC", "codes": ["127.0.1.6"], "description": "DBL: botnet C&C domain"},
            {
                "symbol": "DBL_ABUSED",
                "codes": ["127.0.1.102-127.0.1.106"],
                "description": "DBL: abused legitimate domain (spam, redirector, phish, malware, C&C)",
            },
        ],
    },
    "surbl_multi": {
        "name": "SURBL_MULTI",
        "zone": "multi.surbl.org",
        "kind": "domain",
        "query": ["url", "email"],
        "errors": ["127.0.0.1", *_SPAMHAUS_ERRORS],  # SURBL answers 127.0.0.1 when it refuses you
        "ipv6": False,
        "monitor_listed": "test.surbl.org",
        "description": "SURBL multi: bitmask over the last octet",
        "rules": [
            {"symbol": "SURBL_PH", "bitmask": 8, "description": "SURBL: phishing"},
            {"symbol": "SURBL_MW", "bitmask": 16, "description": "SURBL: malware"},
            {"symbol": "SURBL_ABUSE", "bitmask": 64, "description": "SURBL: spam and abuse"},
            {"symbol": "SURBL_CR", "bitmask": 128, "description": "SURBL: cracked sites"},
        ],
    },
    "uribl_multi": {
        "name": "URIBL_MULTI",
        "zone": "multi.uribl.com",
        "kind": "domain",
        "query": ["url", "email"],
        "errors": ["127.0.0.1", *_SPAMHAUS_ERRORS],  # URIBL answers 127.0.0.1 when it refuses you
        "ipv6": False,
        "monitor_listed": "test.uribl.com",
        "description": "URIBL multi: bitmask over the last octet",
        "rules": [
            {"symbol": "URIBL_BLACK", "bitmask": 2, "description": "URIBL black"},
            {"symbol": "URIBL_GREY", "bitmask": 4, "description": "URIBL grey"},
            {"symbol": "URIBL_RED", "bitmask": 8, "description": "URIBL red"},
        ],
    },
    "spamcop": {
        "name": "SPAMCOP",
        "zone": "bl.spamcop.net",
        "query": ["untrusted"],
        "ipv6": False,
        "description": "SpamCop: addresses reported sending spam",
        "rules": [{"symbol": "RBL_SPAMCOP", "codes": ["127.0.0.2"], "description": "listed by SpamCop"}],
    },
    "mailspike_bl": {
        "name": "MAILSPIKE_BL",
        "zone": "bl.mailspike.net",
        "query": ["lastexternal"],
        "ipv6": False,
        "description": "Mailspike blacklist, on the last external hop",
        "rules": [{"symbol": "RBL_MAILSPIKE_BL", "codes": ["127.0.0.2"], "description": "listed by Mailspike"}],
    },
    "barracuda": {
        "name": "BARRACUDA",
        "zone": "b.barracudacentral.org",
        "query": ["lastexternal"],
        "ipv6": False,
        "description": "Barracuda reputation (registration required), on the last external hop",
        "rules": [{"symbol": "RBL_BARRACUDA", "codes": ["127.0.0.2"], "description": "listed by Barracuda"}],
    },
    "psbl": {
        "name": "PSBL",
        "zone": "psbl.surriel.com",
        "query": ["untrusted"],
        "ipv6": False,
        "description": "Passive Spam Block List, on every untrusted hop",
        "rules": [{"symbol": "RBL_PSBL", "codes": ["127.0.0.2"], "description": "listed by PSBL"}],
    },
}


def shipped(name: str, overrides: Mapping[str, Any] | None = None) -> ListSpec:
    """A shipped block, validated, with optional overrides (zone for a DQS key, nameservers, ...)."""
    if name not in SHIPPED:
        raise ValueError(f"no shipped list {name!r} (have: {', '.join(sorted(SHIPPED))})")
    data = dict(SHIPPED[name])
    data.update(overrides or {})
    return ListSpec.model_validate(data)
