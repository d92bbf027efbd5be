"""SPF, DKIM and DMARC with every record served by real DNS servers on loopback (rbldnsd and
relayguard's own); messages signed by dkimpy."""

from __future__ import annotations

import dkim
import pytest
from dnsenv import FIXTURES
from helpers import Scanner, hop, message, options, settings

from conftest import INFECTED, SMARTHOST
from relayguard.inbound.auth import authentication_results, with_authentication_results
from relayguard.message.facts import Envelope

pytestmark = pytest.mark.peer

AUTH = """
[inbound]
spf = true
dkim = true
dmarc = true
authserv_id = "mx.isp.example"
"""
OUTSIDER = "203.0.113.9"  # in no SPF record


def signed(raw: bytes, domain: str) -> bytes:
    sig = dkim.sign(
        raw,
        b"sel",
        domain.encode(),
        (FIXTURES / "dkim-test-key.pem").read_bytes(),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    return sig + raw


def env(ip: str, mail_from: str = "alice@sender.example") -> Envelope:
    return Envelope(client_ip=ip, helo="client.example", mail_from=mail_from)


@pytest.fixture
def scanner(dns_server) -> Scanner:
    return Scanner(settings(dns_server.address, AUTH))


async def test_spf_pass_fail_softfail(scanner):
    v = await scanner.scan(message([]), env(INFECTED))
    assert options(v, "R_SPF_ALLOW") == ("smtp.mailfrom=alice@sender.example",)
    v = await scanner.scan(message([]), env(OUTSIDER))
    assert "R_SPF_FAIL" in v.symbols
    v = await scanner.scan(message([], sender="bob@soft.example"), env(OUTSIDER, "bob@soft.example"))
    assert "R_SPF_SOFTFAIL" in v.symbols
    assert "DMARC_POLICY_QUARANTINE" in v.symbols  # soft.example: p=quarantine, nothing aligned passed


async def test_spf_follows_include_and_a_through_our_resolver(scanner):
    # 203.0.113.5 is allowed only by include:_spf.sender.example -> a:out.sender.example: two dependent
    # lookups after the first, each fetched by the resolver between pyspf runs.
    v = await scanner.scan(message([]), env("203.0.113.5"))
    assert "R_SPF_ALLOW" in v.symbols
    assert scanner.resolver.cached("out.sender.example", "A") is not None


async def test_spf_from_the_chain_when_there_is_no_session(scanner):
    raw = message(
        [
            hop("smarthost.isp.example", "smarthost.isp.example", SMARTHOST, "mx.isp.example", "A1"),
            hop("pc", "dyn.cust.isp.example", INFECTED, "smarthost.isp.example", "B2"),
        ],
        headers=[("Return-Path", "<alice@sender.example>")],
    )
    v = await scanner.scan(raw)
    assert "R_SPF_ALLOW" in v.symbols


async def test_dkim_pass_aligns_dmarc_despite_spf_fail(scanner):
    v = await scanner.scan(signed(message([]), "sender.example"), env(OUTSIDER))
    assert options(v, "R_DKIM_ALLOW") == ("header.d=sender.example",)
    assert "R_SPF_FAIL" in v.symbols
    assert options(v, "DMARC_POLICY_ALLOW") == ("header.from=sender.example", "dkim")


async def test_dkim_fail_on_a_changed_body_and_dmarc_reject(scanner):
    raw = signed(message([]), "sender.example").replace(b"see you tomorrow", b"send money now!!")
    v = await scanner.scan(raw, env(OUTSIDER))
    assert options(v, "R_DKIM_REJECT") == ("header.d=sender.example",)
    assert "DMARC_POLICY_REJECT" in v.symbols


async def test_dmarc_needs_alignment_not_just_a_pass(scanner):
    # A valid signature, but by signer.example: not aligned with From: sender.example.
    v = await scanner.scan(signed(message([]), "signer.example"), env(OUTSIDER))
    assert options(v, "R_DKIM_ALLOW") == ("header.d=signer.example",)
    assert "DMARC_POLICY_REJECT" in v.symbols
    # SPF pass for the same domain aligns on its own.
    v = await scanner.scan(signed(message([]), "signer.example"), env(INFECTED))
    assert options(v, "DMARC_POLICY_ALLOW") == ("header.from=sender.example", "spf")


async def test_dmarc_falls_back_to_the_organizational_domain_and_relaxed_alignment(scanner):
    raw = signed(message([], sender="news@news.sender.example"), "sender.example")
    v = await scanner.scan(raw, env(OUTSIDER, "news@news.sender.example"))
    assert options(v, "DMARC_POLICY_ALLOW") == ("header.from=news.sender.example", "dkim")


async def test_no_dmarc_record_and_the_authentication_results_header(scanner):
    raw = signed(message([], sender="carol@signer.example"), "signer.example")
    v = await scanner.scan(raw, env(OUTSIDER, "carol@signer.example"))
    assert "DMARC_NA" in v.symbols
    ar = authentication_results(v, "mx.isp.example")
    assert ar == (
        "mx.isp.example; spf=fail smtp.mailfrom=carol@signer.example; "
        "dkim=pass header.d=signer.example; dmarc=none header.from=signer.example"
    )
    v2 = with_authentication_results(v, "mx.isp.example")
    assert ("Authentication-Results", ar) in v2.headers


async def test_unsigned_message_has_dkim_none(scanner):
    v = await scanner.scan(message([]), env(INFECTED))
    assert "R_DKIM_NA" in v.symbols
    assert "DMARC_POLICY_ALLOW" in v.symbols


async def test_front_ends_read_the_same_symbols(scanner):
    import relayguard.frontends.result_headers as result_headers
    v = await scanner.scan(signed(message([]), "sender.example"), env(OUTSIDER))
    ar = result_headers.authentication_results(v, "mx.isp.example", None)
    assert "spf=fail" in ar and "dkim=pass" in ar and "dmarc=pass" in ar
