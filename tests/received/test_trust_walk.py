"""The trust walk: SpamAssassin's trusted / internal / MSA semantics on whole chains."""

from __future__ import annotations

from relayguard.message.received import build_chain
from relayguard.message.relay import Relay, RelayChain
from relayguard.message.trust import TrustConfig

from .sa_fixtures import header_values, load_blocks

BLOCKS = load_blocks()


def chain_of(name: str, trust: TrustConfig) -> RelayChain:
    return build_chain(header_values(BLOCKS[name]), trust)


def ips(relays: tuple[Relay, ...]) -> list[str | None]:
    return [r.ip for r in relays]


def test_infected_host_behind_trusted_isp_smarthost() -> None:
    # Our MX (203.0.113.0/24) and the ISP's smarthost are trusted; only trusted_networks is set, so it
    # also serves as internal_networks: the smarthost is ours, the infected PC handed the message to it.
    trust = TrustConfig.from_lists(["203.0.113.0/24", "192.0.2.25"])
    c = chain_of("modern/infected-host-via-isp-smarthost", trust)
    assert ips(c.trusted) == ["203.0.113.10", "192.0.2.25"]
    assert ips(c.untrusted) == ["198.51.100.77"]
    assert c.last_external is not None and c.last_external.ip == "198.51.100.77"
    assert c.origin_ip == "198.51.100.77"
    assert c.first_untrusted is c.untrusted[0]
    assert c.first_trusted is not None and c.first_trusted.ip == "192.0.2.25"
    assert not c.authenticated


def test_smarthost_trusted_but_not_internal() -> None:
    # With internal_networks narrower than trusted_networks, the smarthost's hop is trusted but
    # external: it is the last external hop (SpamAssassin: PBL/XBL go to the hop into *our* network).
    trust = TrustConfig.from_lists(["203.0.113.0/24", "192.0.2.25"], ["203.0.113.0/24"])
    c = chain_of("modern/infected-host-via-isp-smarthost", trust)
    assert ips(c.internal) == ["203.0.113.10"]
    assert ips(c.external) == ["192.0.2.25", "198.51.100.77"]
    assert [r.trusted for r in c.relays] == [True, True, False]
    assert [r.internal for r in c.relays] == [True, False, False]
    assert c.origin_ip == "192.0.2.25"


def test_authenticated_submission_is_trusted() -> None:
    trust = TrustConfig.from_lists(["203.0.113.0/24", "192.0.2.0/24"])
    c = chain_of("modern/postfix-authenticated-submission", trust)
    assert c.authenticated
    submit = c.relays[-1]
    assert (submit.ip, submit.auth, submit.trusted, submit.internal) == ("198.51.100.9", "ESMTPSA", True, True)
    assert c.untrusted == () and c.last_external is None


def test_authentication_counts_only_inside_trust() -> None:
    # The same authenticated hop, but the relay that wrote it is not trusted: a forged claim.
    trust = TrustConfig.from_lists(["203.0.113.0/24"])
    c = chain_of("modern/postfix-authenticated-submission", trust)
    assert ips(c.untrusted) == ["192.0.2.25", "198.51.100.9"]
    assert not c.authenticated


def test_msa_makes_the_submitting_hop_trusted() -> None:
    # The ISP's submission server only takes authenticated users; its own line has no token.
    trust = TrustConfig.from_lists(["203.0.113.0/24", "192.0.2.25"], msa=["192.0.2.25"])
    values = [
        "from smtp.isp.example (smtp.isp.example [192.0.2.25]) by mx1.example.org (Postfix) with ESMTPS id 4A;"
        " Tue, 12 Mar 2024 10:00:02 +0100",
        "from laptop (dsl-198-51-100-9.dyn.isp.example [198.51.100.9]) by smtp.isp.example (Postfix) with ESMTP"
        " id 4B; Tue, 12 Mar 2024 10:00:01 +0100",
        "from spoofed (evil.example [198.51.100.200]) by laptop (Postfix) with SMTP id 4C;"
        " Tue, 12 Mar 2024 10:00:00 +0100",
    ]
    c = build_chain(values, trust)
    assert [r.msa for r in c.relays] == [True, False, False]
    # SpamAssassin stops changing trust after an MSA hop: everything older is trusted.
    assert [r.trusted for r in c.relays] == [True, True, True]
    assert c.authenticated
    without = build_chain(values, TrustConfig.from_lists(["203.0.113.0/24", "192.0.2.25"]))
    assert ips(without.untrusted) == ["198.51.100.9", "198.51.100.200"]


def test_exclusion_breaks_trust_whatever_the_order() -> None:
    values = [
        "from relay.isp.example (relay.isp.example [192.0.2.66]) by mx1.example.org (Postfix) with ESMTP id 5A;"
        " Tue, 12 Mar 2024 10:00:01 +0100",
        "from pc (pc.example [198.51.100.5]) by relay.isp.example (Postfix) with SMTP id 5B;"
        " Tue, 12 Mar 2024 10:00:00 +0100",
    ]
    for nets in (["192.0.2.0/24", "!192.0.2.66"], ["!192.0.2.66", "192.0.2.0/24"]):
        c = build_chain(values, TrustConfig.from_lists(nets))
        assert c.trusted == (), nets
        assert c.origin_ip == "192.0.2.66"
    c = build_chain(values, TrustConfig.from_lists(["192.0.2.0/24"]))
    assert c.origin_ip == "198.51.100.5"


def test_loopback_is_always_trusted_when_configured() -> None:
    trust = TrustConfig.from_lists(["192.0.2.0/24"])
    c = chain_of("modern/inferred-private-then-public", trust)
    # 127.0.0.1 trusted although not listed; 10.1.2.3 is not (only inference trusts private space).
    assert ips(c.trusted) == ["127.0.0.1"]
    assert ips(c.untrusted) == ["10.1.2.3", "198.51.100.99"]


def test_inferred_trust() -> None:
    trust = TrustConfig()
    assert trust.inferred
    c = chain_of("modern/inferred-private-then-public", trust)
    assert ips(c.trusted) == ["127.0.0.1", "10.1.2.3"]
    assert ips(c.internal) == ["127.0.0.1", "10.1.2.3"]
    assert c.origin_ip == "198.51.100.99"
    # Inference also extends trust over an authenticated hop.
    auth = chain_of("modern/sendmail-authenticated-bits", trust)
    assert auth.relays[0].trusted and auth.authenticated


def test_fetchmail_restarts_the_chain() -> None:
    c = chain_of("modern/fetchmail-restart", TrustConfig())
    # The local delivery above the fetchmail line is dropped, as SpamAssassin does.
    assert ips(c.relays) == ["192.0.2.25"]
    assert c.skipped == 1
    assert any("fetchmail" in n for n in c.notes)


def test_unparsed_lines_are_counted_not_dropped_and_do_not_break_trust() -> None:
    values = [
        "from localhost (localhost [127.0.0.1]) by mx.example.org (Postfix) with ESMTP id 6A;"
        " Tue, 12 Mar 2024 10:00:01 +0100",
        "from SMTP agent by mail gateway Fri, 02 Aug 2002 09:50:49 -0000",
        "(qmail 12345 invoked by uid 89); 12 Mar 2024 10:00:01 -0000",
        "from gw (gw.example.org [10.0.0.1]) by mx.example.org (Postfix) with ESMTP id 6B;"
        " Tue, 12 Mar 2024 10:00:00 +0100",
    ]
    c = build_chain(values, TrustConfig())
    assert c.unparsed == 1 and c.unparsed_lines == (values[1],)
    assert c.skipped == 1
    assert ips(c.trusted) == ["127.0.0.1", "10.0.0.1"]


def test_qmail_scanner_envelope_sender_goes_to_the_next_hop() -> None:
    values = [
        "from 156.56.111.196 by blazing.arsecandle.org (envelope-from <list-owner@lists.example.org>, uid 502)"
        " with qmail-scanner-1.24 (clamdscan: 0.80/594. Processed in 0.288806 secs); 06 Feb 2005 21:11:38 -0000",
        "from lists.example.org (156.56.111.196) by blazing.arsecandle.org with SMTP; 6 Feb 2005 21:11:37 -0000",
    ]
    c = build_chain(values, TrustConfig())
    assert c.relays[0].envfrom == "list-owner@lists.example.org"


def test_partition_and_flags_are_consistent_on_every_fixture() -> None:
    for trust in (
        TrustConfig(),
        TrustConfig.from_lists(["10.0.0.0/8", "192.0.2.0/24", "64.161.22.236"]),
        TrustConfig.from_lists(["10.0.0.0/8", "194.125.145.45"], ["10.0.0.0/8"], ["194.125.145.45"]),
    ):
        for name, block in BLOCKS.items():
            c = build_chain(header_values(block), trust)
            assert c.trusted + c.untrusted == c.relays, name
            assert c.internal + c.external == c.relays, name
            assert all(r.trusted for r in c.internal), name  # internal is a subset of trusted
            assert all(r.trusted for r in c.relays if r.msa), name
