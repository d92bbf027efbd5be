"""Hostile input: huge lines, NUL bytes, random text and near-miss headers never crash or hang.

No timing assertions (the test machine is shared); pytest-timeout catches a hang, and the inputs are
the shapes that made SpamAssassin's own patterns backtrack when ported naively.
"""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayguard.message.received import build_chain, parse_received
from relayguard.message.received.parse import MAX_LINE
from relayguard.message.trust import TrustConfig

from .sa_fixtures import header_values, load_blocks

REAL = [v for b in load_blocks().values() for v in header_values(b)]

# Pieces of real syntax, so random strings get deep into the dialect rules.
FRAGMENTS = [
    "from ", "(from ", "FROM ", " by ", " with ", " id ", " for ", "(", ")", "[", "]", "<", ">", ";", " ",
    "1.2.3.4", "[192.0.2.1]", "::ffff:10.0.0.1", "IPv6:2001:db8::1", "(HELO x)", "(EHLO y)", "helo=", "ident=",
    "@", "(authenticated bits=0)", "(Authenticated sender: a)", "(AUTH: LOGIN u)", "ESMTPSA", "(Postfix)",
    "(Exim 4.96)", "Microsoft SMTPSVC", "with Microsoft SMTP Server", "(qmail-ldap-1.03)", "qmail-scanner",
    "(CommuniGate Pro SMTP 6)", " (account ", "via HTTP", "with IMAP", "(envelope-from <a@b>)",
    "Tue, 12 Mar 2024 10:00:00 +0100", "unknown", "localhost", "\x00", "\t", "\n ", "é", "\u2028",
]  # fmt: skip

fragment_text = st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join)
any_text = st.text(max_size=600)
mutated_real = st.tuples(st.sampled_from(REAL), st.integers(0, 400), st.text(max_size=20)).map(
    lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
)


def _check(value: str) -> None:
    p = parse_received(value)
    assert (p.relay is not None) + p.skip <= 1
    if p.relay is not None:
        r = p.relay
        assert r.ip or r.by  # a hop always says something
        for v in (r.ip, r.rdns, r.helo, r.by, r.ident, r.id, r.envfrom, r.auth, r.protocol):
            assert v is None or (isinstance(v, str) and v != "")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(fragment_text, any_text, mutated_real))
def test_parse_never_crashes(value: str) -> None:
    _check(value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(fragment_text, mutated_real), max_size=12))
def test_chain_never_crashes(values: list[str]) -> None:
    for trust in (TrustConfig(), TrustConfig.from_lists(["192.0.2.0/24", "!192.0.2.1"], msa=["10.0.0.1"])):
        c = build_chain(values, trust)
        assert len(c.relays) + c.unparsed + c.skipped <= len(values)
        assert c.trusted + c.untrusted == c.relays


def test_one_megabyte_line_is_truncated_and_reported() -> None:
    value = "from a (b [192.0.2.1]) by c (Postfix) with ESMTP id X; " + "x" * 1_000_000
    p = parse_received(value)
    assert "truncated" in p.defects
    assert p.relay is not None and p.relay.ip == "192.0.2.1"
    assert len(p.relay.raw) <= MAX_LINE
    c = build_chain([value], TrustConfig())
    assert "defect: truncated" in c.notes


def test_nul_bytes() -> None:
    p = parse_received(
        "from a\x00b (c [192.0.2.9]) by d\x00 (Postfix) with ESMTP id Q; Tue, 12 Mar 2024 10:00:00 +0100"
    )
    assert "nul" in p.defects
    assert p.relay is not None and p.relay.ip == "192.0.2.9"


def test_backtracking_shapes_finish() -> None:
    # Each of these made a regex (as written in SpamAssassin, ported literally) run for seconds.
    shapes = [
        "from a (b [1.2.3.4]) " + "(authenticated " * 400 + "by",
        "from a (1.2.3.4) by b (" + ") with x " * 500,
        "from a (HELO b) (1.2.3.4) by b" + " (x)" * 1000 + " with " + "SMTP id " * 300,
        "from x" + " 1 Jan 2002 10:10" * 250,
        "from a [" + "1:" * 2000,
        "from x]) (AUTH: LOGIN x, " + "y " * 2000,
        "from x by y" + ";" * 100_000,
        "from " + " ;" * 100_000,
        "from " + "(" * 500_000,
    ]
    for s in shapes:
        _check(s)


def test_random_bytes_decoded_as_latin1() -> None:
    import random

    rnd = random.Random(7)
    for _ in range(200):
        raw = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 3000)))
        _check(raw.decode("latin-1"))
        _check("from " + raw.decode("latin-1"))
    _check(string.printable * 100)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(REAL), st.sampled_from([" ", "  ", "\n ", "\r\n\t", " \t "]))
def test_folding_and_blanks_do_not_change_the_parse(value: str, blank: str) -> None:
    # Headers arrive folded in many ways; only the raw text and the time stamp may keep the blanks.
    a = parse_received(value)
    b = parse_received(value.replace(" ", blank))
    assert (a.relay is None, a.skip, a.fetch) == (b.relay is None, b.skip, b.fetch)
    if a.relay is not None and b.relay is not None:
        fields = ("ip", "rdns", "helo", "by", "ident", "id", "envfrom", "auth", "protocol", "dialect", "no_rdns")
        assert [getattr(a.relay, k) for k in fields] == [getattr(b.relay, k) for k in fields]
