"""Compare relayguard's parse and trust walk with one SpamAssassin record (sa_received_dump.pl output)."""

from __future__ import annotations

from typing import Any

from relayguard.message.received import build_chain, parse_received
from relayguard.message.relay import Relay

from .sa_fixtures import CASES

FIELDS = ("ip", "rdns", "helo", "by", "ident", "auth", "id", "envfrom", "no_rdns")
_STRIP = str.maketrans({c: "!" for c in " \t\n\r\x00#[]()<>|"})


def sa_view(v: str | None) -> str:
    """SpamAssassin prints `[]()<>|#`, NUL and blanks as `!`; compare like with like."""
    return (v or "").translate(_STRIP)


# Where relayguard deliberately reads a header differently (docs/received.md, "Where we differ"):
# (fixture, header index) -> the fields that differ.
KNOWN_DIFFERENCES: dict[tuple[str, int], frozenset[str]] = {
    # Exchange 2013+ `with Microsoft SMTP Server (...) id 15.20...`: SpamAssassin misses its own
    # Exchange format and copies the HELO into rdns; the id is Exchange's version, not a queue id.
    ("modern/exchange-online", 0): frozenset({"rdns", "id"}),
    ("modern/microsoft-365-inbound", 1): frozenset({"rdns", "id"}),
    ("modern/microsoft-365-inbound", 2): frozenset({"rdns", "id"}),
}


def differences(values: list[str], rec: dict[str, Any], name: str = "") -> list[str]:
    """Every way our view of these headers differs from SpamAssassin's record; [] when they agree."""
    out: list[str] = []
    if len(values) != len(rec["parsed"]):
        return [f"header count: ours {len(values)}, SpamAssassin {len(rec['parsed'])}"]
    for i, (v, sa) in enumerate(zip(values, rec["parsed"], strict=True)):
        p = parse_received(v)
        ours = "hop" if p.relay else "skipped" if p.skip else "unparsed"
        theirs = "unparsed" if sa is None else "skipped" if sa == 0 else "hop"
        if ours != theirs:
            out.append(f"header {i}: ours {ours}, SpamAssassin {theirs}: {v}")
            continue
        if p.relay is None:
            continue
        known = KNOWN_DIFFERENCES.get((name, i), frozenset())
        for field in FIELDS:
            got = getattr(p.relay, field)
            if field == "no_rdns":
                got, want = bool(got), bool(sa.get("no_reverse_dns"))
            else:
                got = (got or "") if field in ("id", "auth") else sa_view(got)
                want = sa.get(field) or ""
            if (got != want) != (field in known):
                out.append(f"header {i} {field}: ours {got!r}, SpamAssassin {want!r}: {v}")
    for case in CASES:
        chain = build_chain(values, case.config())
        sp = rec["splits"][case.name]

        def ips(key: str, sp: dict[str, list[int]] = sp) -> list[str]:
            return [rec["parsed"][i]["ip"] for i in sp[key]]

        def ours_ips(relays: tuple[Relay, ...]) -> list[str]:
            return [sa_view(r.ip) for r in relays]

        for key, relays in (
            ("trusted", chain.trusted),
            ("untrusted", chain.untrusted),
            ("internal", chain.internal),
            ("external", chain.external),
            ("msa", tuple(r for r in chain.relays if r.msa)),
        ):
            if ours_ips(relays) != ips(key):
                out.append(f"{case.name} {key}: ours {ours_ips(relays)}, SpamAssassin {ips(key)}")
    return out
