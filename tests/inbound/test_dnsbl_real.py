"""DNS blocklists on the right hops, against real DNS servers on loopback (rbldnsd, relayguard's own)."""

from __future__ import annotations

import pytest
from helpers import Scanner, all_options, hop, message, options, settings, zen_and_friends

from conftest import (
    ALLREFUSED,
    AUTHBOT,
    INFECTED,
    INFECTED6,
    MSA,
    MX,
    REFUSED_FOR,
    REFUSING,
    RELAY2,
    SMARTHOST,
    SPAMMER,
    WRONG,
)
from relayguard.message.facts import Envelope

pytestmark = pytest.mark.peer

SMARTHOST_HOP = hop("smarthost.isp.example", "smarthost.isp.example", SMARTHOST, "mx.isp.example", "A1")


async def test_infected_origin_behind_trusted_smarthost_hits_xbl_not_the_smarthost(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    raw = message(
        [SMARTHOST_HOP, hop("infected-pc", "dyn-23.cust.isp.example", INFECTED, "smarthost.isp.example", "B2")]
    )
    v = await s.scan(raw)
    assert options(v, "RBL_SPAMHAUS_XBL") == (f"{INFECTED}:lastexternal",)
    # PBL too: the customer's dynamic address sent unauthenticated.
    assert options(v, "RBL_SPAMHAUS_PBL") == (f"{INFECTED}:lastexternal",)
    # The smarthost is in SBL in our zone, but trusted: never asked, never blamed.
    assert not any(SMARTHOST in o for o in all_options(v))
    assert "RBL_SPAMHAUS_SBL" not in v.symbols
    assert not [n for n in v.symbols if n.endswith(("_FAIL", "_BLOCKED", "_BROKEN"))]


async def test_authenticated_submission_from_the_same_origin_hits_no_pbl(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    raw = message(
        [
            hop("msa.isp.example", "msa.isp.example", MSA, "mx.isp.example", "A1"),
            hop("infected-pc", "dyn-23.cust.isp.example", INFECTED, "msa.isp.example", "C3", auth="alice@isp.example"),
        ]
    )
    v = await s.scan(raw)
    assert "RBL_SPAMHAUS_PBL" not in v.symbols
    # AuthBL applies precisely to the address that authenticated.
    assert options(v, "RBL_SPAMHAUS_AUTHBL") == (f"{INFECTED}:authenticated",)


async def test_authenticated_session_client_not_scored_by_pbl_but_by_authbl(dns_server):
    inbound = (
        zen_and_friends()
        + """
[[inbound.lists]]
name = "CLIENT_ZEN"
zone = "zen.rbl.test"
query = ["client"]
rules = [
  { symbol = "CLIENT_XBL", codes = ["127.0.0.4-127.0.0.7"] },
  { symbol = "CLIENT_PBL", codes = ["127.0.0.10-127.0.0.11"], skip_authenticated = true },
]
"""
    )
    s = Scanner(settings(dns_server.address, inbound))
    env = Envelope(client_ip=AUTHBOT, sasl_username="bob", helo="pc", mail_from="bob@isp.example")
    v = await s.scan(message([]), env)
    assert "CLIENT_PBL" not in v.symbols
    assert options(v, "RBL_SPAMHAUS_AUTHBL") == (f"{AUTHBOT}:authenticated",)
    # The same client without authentication is scored by PBL.
    v2 = await s.scan(message([]), Envelope(client_ip=AUTHBOT, helo="pc"))
    assert options(v2, "CLIENT_PBL") == (f"{AUTHBOT}:client",)
    assert "RBL_SPAMHAUS_AUTHBL" not in v2.symbols


async def test_untrusted_hop_deeper_in_the_chain_hits_sbl_only(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    raw = message(
        [
            SMARTHOST_HOP,
            hop("relay2.other.example", "relay2.other.example", RELAY2, "smarthost.isp.example", "B2"),
            hop("spamsource", "spam.host.example", SPAMMER, "relay2.other.example", "C3"),
        ]
    )
    v = await s.scan(raw)
    assert options(v, "RBL_SPAMHAUS_SBL") == (f"{SPAMMER}:untrusted",)
    # SPAMMER is in XBL too, but XBL counts only on the last external hop (RELAY2, unlisted).
    assert "RBL_SPAMHAUS_XBL" not in v.symbols
    assert "RBL_SPAMHAUS_PBL" not in v.symbols


LISTS_WITH_ERRORS = """
[inbound]
[[inbound.lists]]
name = "REFUSING"
zone = "{refusing}"
query = ["untrusted"]
rules = [{{ symbol = "RBL_REFUSING", codes = ["127.0.0.0/8"] }}]
[[inbound.lists]]
name = "ALLREFUSED"
zone = "{allrefused}"
query = ["untrusted"]
rules = [{{ symbol = "RBL_ALLREFUSED", codes = ["127.0.0.0/8"] }}]
[[inbound.lists]]
name = "WRONG"
zone = "{wrong}"
query = ["untrusted"]
rules = [{{ symbol = "RBL_WRONG", codes = ["127.0.0.2"] }}]
"""


async def test_blocked_answer_codes_list_nothing(dns_server):
    inbound = LISTS_WITH_ERRORS.format(refusing=REFUSING, allrefused=ALLREFUSED, wrong=WRONG)
    s = Scanner(settings(dns_server.address, inbound))
    raw = message([SMARTHOST_HOP, hop("h", "h.example", REFUSED_FOR, "smarthost.isp.example", "B2")])
    v = await s.scan(raw)
    # Even a rule matching all of 127/8 does not turn 127.255.255.254 into a listing.
    assert "RBL_REFUSING" not in v.symbols
    assert options(v, "REFUSING_BLOCKED") == (f"127.255.255.254:{REFUSED_FOR}",)
    # A list refusing everything fails its monitoring probe: skipped, with a symbol saying so.
    assert "RBL_ALLREFUSED" not in v.symbols
    assert "ALLREFUSED_BROKEN" in v.symbols
    # A list that lists 127.0.0.1 is answering wrongly: skipped, though it "lists" the origin.
    raw2 = message([SMARTHOST_HOP, hop("h", "h.example", INFECTED, "smarthost.isp.example", "B2")])
    v2 = await s.scan(raw2)
    assert "RBL_WRONG" not in v2.symbols
    assert "WRONG_BROKEN" in v2.symbols


async def test_a_list_that_never_answers_costs_its_timeout_and_the_scan_finishes(dns_server, blackhole):
    inbound = (
        zen_and_friends()
        + f"""
[[inbound.lists]]
name = "DEAD"
zone = "dead.rbl.test"
query = ["untrusted"]
timeout = 0.3
nameservers = ["{blackhole.address}"]
rules = [{{ symbol = "RBL_DEAD", codes = ["127.0.0.2"] }}]
"""
    )
    s = Scanner(settings(dns_server.address, inbound))
    raw = message(
        [SMARTHOST_HOP, hop("infected-pc", "dyn-23.cust.isp.example", INFECTED, "smarthost.isp.example", "B2")]
    )
    v = await s.scan(raw)
    assert "DEAD_FAIL" in v.symbols
    assert "RBL_SPAMHAUS_XBL" in v.symbols  # the other lists answered
    sent = s.resolver.stats.sent
    # Next message: the dead list is skipped without a packet (it did not answer its probes).
    v2 = await s.scan(raw)
    assert "unreachable" in options(v2, "DEAD_FAIL")
    assert "RBL_SPAMHAUS_XBL" in v2.symbols
    assert s.resolver.stats.sent == sent  # and zen came from the cache


async def test_cache_makes_a_repeated_origin_cost_no_packets(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    raw = message(
        [SMARTHOST_HOP, hop("infected-pc", "dyn-23.cust.isp.example", INFECTED, "smarthost.isp.example", "B2")]
    )
    await s.scan(raw)
    first = s.resolver.stats.sent
    assert first > 0
    v = await s.scan(raw)
    assert s.resolver.stats.sent == first
    assert "RBL_SPAMHAUS_XBL" in v.symbols


async def test_originating_header_and_notfirsthop_and_firsttrusted(dns_server):
    inbound = """
[inbound]
[[inbound.lists]]
name = "ORIG"
zone = "zen.rbl.test"
query = ["originating", "notfirsthop", "firsttrusted"]
rules = [{ symbol = "ORIG_LISTED", codes = ["127.0.0.0/24"] }]
"""
    s = Scanner(settings(dns_server.address, inbound))
    raw = message(
        [
            SMARTHOST_HOP,
            hop("relay2.other.example", "relay2.other.example", RELAY2, "smarthost.isp.example", "B2"),
            hop("spamsource", "spam.host.example", SPAMMER, "relay2.other.example", "C3"),
        ],
        headers=[("X-Originating-IP", f"[{INFECTED}]")],
    )
    v = await s.scan(raw)
    opts = set(options(v, "ORIG_LISTED"))
    assert f"{INFECTED}:originating" in opts
    # The oldest untrusted hop (SPAMMER) is the first hop: notfirsthop leaves it out.
    assert not any(o.startswith(SPAMMER) for o in opts)
    # firsttrusted is the client the oldest trusted hop received from: the smarthost, listed in SBL.
    assert f"{SMARTHOST}:firsttrusted" in opts
    assert MX not in " ".join(opts)


async def test_untrusted_hops_are_capped_at_nine(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    relays = [hop(f"r{i}.example", f"r{i}.example", f"198.51.100.{100 + i}", "x.example", f"Q{i}") for i in range(12)]
    deep = [*relays[:10], hop("spamsource", "spam.host.example", SPAMMER, "r10.example", "Z")]
    v = await s.scan(message([SMARTHOST_HOP, *deep]))
    assert "RBL_SPAMHAUS_SBL" not in v.symbols  # the 11th untrusted hop is beyond the cap of 9
    shallow = [*relays[:5], hop("spamsource", "spam.host.example", SPAMMER, "r5.example", "Z")]
    v = await s.scan(message([SMARTHOST_HOP, *shallow]))
    assert options(v, "RBL_SPAMHAUS_SBL") == (f"{SPAMMER}:untrusted",)


async def test_ipv6_origin_is_asked_by_nibbles(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    raw = message(
        [SMARTHOST_HOP, hop("pc6", "pc6.cust.isp.example", f"IPv6:{INFECTED6}", "smarthost.isp.example", "B")]
    )
    v = await s.scan(raw)
    assert options(v, "RBL_SPAMHAUS_XBL") == (f"{INFECTED6}:lastexternal",)


async def test_policy_style_session_without_headers_checks_the_client(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    v = await s.scan(message([]), Envelope(client_ip=INFECTED, helo="pc"))
    assert options(v, "RBL_SPAMHAUS_XBL") == (f"{INFECTED}:lastexternal",)
    # Our own smarthost connecting is trusted: nothing asked about it.
    v = await s.scan(message([]), Envelope(client_ip=SMARTHOST, helo="smarthost.isp.example"))
    assert not any(n.startswith("RBL_") for n in v.symbols)


async def test_one_argument_factory_uses_the_process_resolver(dns_server):
    from relayguard.inbound import inbound_checks, shared_resolver
    from relayguard.pipeline import Pipeline

    st = settings(dns_server.address, zen_and_friends())
    checks = inbound_checks(st)  # as a one-argument check factory would call it
    assert {c.name for c in checks} == {"SPAMHAUS_ZEN", "SPAMHAUS_DBL", "SPAMHAUS_AUTHBL"}
    assert all(getattr(c, "resolver", None) is shared_resolver(st) for c in checks)
    pipeline = Pipeline(st, checks)
    raw = message([SMARTHOST_HOP, hop("pc", "dyn.cust.isp.example", INFECTED, "smarthost.isp.example", "B2")])
    from relayguard.message.parse import parse_message

    v = await pipeline.check(parse_message(raw, st))
    assert "RBL_SPAMHAUS_XBL" in v.symbols
