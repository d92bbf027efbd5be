"""Domain lists (DBL style) against real DNS servers (rbldnsd, relayguard's own): registrable domains,
sources, error codes, caps."""

from __future__ import annotations

import pytest
from helpers import Scanner, hop, message, options, settings, zen_and_friends

from conftest import INFECTED, SMARTHOST, SPAMMER
from relayguard.message.facts import Envelope

pytestmark = pytest.mark.peer

SMARTHOST_HOP = hop("smarthost.isp.example", "smarthost.isp.example", SMARTHOST, "mx.isp.example", "A1")


async def test_url_subdomain_is_asked_by_its_registrable_domain(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    html = (
        '<html><body><a href="http://promo.mail.evil-shop.com/win?x=1">win</a>'
        '<img src="https://cdn.shop.evil-store.co.uk/p.png"> <a href="https://www.fine.org/">ok</a></body></html>'
    )
    v = await s.scan(message([SMARTHOST_HOP], html=html))
    # Only evil-shop.com and evil-store.co.uk are in the zone (no wildcards): a hit proves the
    # registrable domain, not the host, was asked.
    assert set(options(v, "DBL_SPAM")) == {"evil-shop.com:url", "evil-store.co.uk:url"}
    assert "DBL_PHISH" not in v.symbols


async def test_obfuscated_url_sender_and_helo_domains(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    raw = message(
        [
            SMARTHOST_HOP,
            hop("mail.infected-helo.net", "host.infected-helo.net", INFECTED, "smarthost.isp.example", "B"),
        ],
        sender="promo@news.phish-sender.net",
        body="Cheap pills at hxxp://shop.bad-pharma[.]com/buy today\n",
    )
    v = await s.scan(raw)
    assert options(v, "DBL_PHISH") == ("bad-pharma.com:url",)
    assert options(v, "DBL_SPAM") == ("phish-sender.net:from",)
    assert set(options(v, "DBL_MALWARE")) == {"infected-helo.net:helo", "infected-helo.net:rdns"}


async def test_domain_list_error_code_is_blocked_not_listed(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    v = await s.scan(message([SMARTHOST_HOP], body="see http://www.refused-domain.com/\n"))
    assert options(v, "SPAMHAUS_DBL_BLOCKED") == ("127.0.1.255:refused-domain.com",)
    assert not [n for n in v.symbols if n.startswith("DBL_")]


async def test_cap_on_domains_per_message(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends("max_domains = 3")))
    urls = " ".join(f"http://www.site{i}.com/" for i in range(30)) + " http://evil-shop.com/"
    before = s.resolver.stats.questions
    v = await s.scan(message([SMARTHOST_HOP], body=urls + "\n"))
    # From + 2 URLs: evil-shop.com (the 31st URL) is beyond the cap.
    assert "DBL_SPAM" not in v.symbols
    dbl_questions = s.resolver.stats.questions - before
    assert dbl_questions <= 3 + 2 + 2 + 2  # 3 domains, monitor probes of 3 lists (DBL, zen, AuthBL)


async def test_url_ip_hosts_and_resolved_hosts_go_to_ip_lists(dns_server):
    inbound = """
[inbound]
resolve_url_hosts = true
[[inbound.lists]]
name = "URLHOST"
zone = "zen.rbl.test"
query = ["urlhost"]
rules = [{ symbol = "URLHOST_SBL", codes = ["127.0.0.2"] }]
"""
    s = Scanner(settings(dns_server.address, inbound))
    # out.sender.example resolves (A record in our zone) to 203.0.113.5, which is not listed; the IP
    # literal is SPAMMER, listed in SBL.
    v = await s.scan(message([SMARTHOST_HOP], body=f"http://{SPAMMER}/x http://out.sender.example/y\n"))
    assert options(v, "URLHOST_SBL") == (f"{SPAMMER}:urlhost",)


async def test_session_helo_without_headers(dns_server):
    s = Scanner(settings(dns_server.address, zen_and_friends()))
    env = Envelope(client_ip=INFECTED, helo="mx.infected-helo.net", mail_from="x@phish-sender.net")
    v = await s.scan(message([]), env)
    assert options(v, "DBL_MALWARE") == ("infected-helo.net:helo",)
    assert "phish-sender.net:mailfrom" in options(v, "DBL_SPAM")
