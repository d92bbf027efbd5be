"""One rbldnsd for the inbound tests, serving blocklist zones and the SPF/DKIM/DMARC records of the
test domains. Addresses are documentation prefixes (RFC 5737), never private (private addresses are
never looked up) and never real listings."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dnsenv import SOA, Blackhole, Rbldnsd, RelayguardDnsbl, dkim_public_key, rbldnsd_available

# The cast: our ISP's smarthost and MSA are trusted; the customer PC is infected.
MX = "192.0.2.10"
SMARTHOST = "192.0.2.25"  # listed in SBL on purpose: being trusted, it must never be asked about
MSA = "192.0.2.30"
INFECTED = "198.51.100.23"  # XBL (infected) and PBL (dynamic customer space)
RELAY2 = "198.51.100.99"  # an honest untrusted relay, unlisted
SPAMMER = "203.0.113.77"  # SBL; also in XBL, which must not count (not the last external hop)
REFUSED_FOR = "198.51.100.50"  # the blocked-codes list answers 127.255.255.254 for it
AUTHBOT = "198.51.100.66"  # AuthBL: logs in with stolen credentials
INFECTED6 = "2001:db8:23::7"  # an infected host on IPv6 (XBL, via the 32-nibble query name)

ZEN = "zen.rbl.test"
DBL = "dbl.rbl.test"
AUTHBL = "authbl.rbl.test"
REFUSING = "refusing.rbl.test"  # answers "refused" for one address
ALLREFUSED = "allrefused.rbl.test"  # Spamhaus' answer to an open resolver: 127.255.255.254 for all
WRONG = "wrong.rbl.test"  # lists 127.0.0.1: fails RFC 5782 monitoring

ZONES: list[tuple[str, str, str]] = [
    (ZEN, "ip4set", f"{SOA}\n:127.0.0.2:SBL $\n127.0.0.2\n{SMARTHOST}\n{SPAMMER}\n"),
    (ZEN, "ip4set", f"{SOA}\n:127.0.0.4:XBL $\n{INFECTED}\n{SPAMMER}\n"),
    (ZEN, "ip4set", f"{SOA}\n:127.0.0.10:PBL $\n{INFECTED}\n{AUTHBOT}\n"),
    (ZEN, "ip6trie", f"{SOA}\n:127.0.0.4:XBL $\n{INFECTED6}/128\n"),
    (AUTHBL, "ip4set", f"{SOA}\n:127.0.0.20:AuthBL $\n127.0.0.2\n{AUTHBOT}\n{INFECTED}\n"),
    (REFUSING, "ip4set", f"{SOA}\n127.0.0.2 :127.0.0.2:test\n{REFUSED_FOR} :127.255.255.254:refused\n"),
    (ALLREFUSED, "ip4set", f"{SOA}\n0.0.0.0/0 :127.255.255.254:refused\n"),
    (WRONG, "ip4set", f"{SOA}\n127.0.0.2 :127.0.0.2:\n127.0.0.1 :127.0.0.2:\n{INFECTED} :127.0.0.2:\n"),
    (
        DBL,
        "dnset",
        f"{SOA}\ntest :127.0.1.2:\nevil-shop.com :127.0.1.2:\nevil-store.co.uk :127.0.1.2:\n"
        "bad-pharma.com :127.0.1.4:\nphish-sender.net :127.0.1.2:\ninfected-helo.net :127.0.1.5:\n"
        "refused-domain.com :127.0.1.255:\n",
    ),
    (
        "sender.example",
        "generic",
        f"{SOA}\n"
        '@ TXT "v=spf1 ip4:198.51.100.0/25 include:_spf.sender.example -all"\n'
        '_spf TXT "v=spf1 a:out.sender.example -all"\n'
        "out A 203.0.113.5\n"
        f'sel._domainkey TXT "v=DKIM1; k=rsa; p={dkim_public_key()}"\n'
        '_dmarc TXT "v=DMARC1; p=reject; adkim=r; aspf=r"\n',
    ),
    (
        "soft.example",
        "generic",
        f'{SOA}\n@ TXT "v=spf1 ip4:192.0.2.0/24 ~all"\n_dmarc TXT "v=DMARC1; p=quarantine"\n',
    ),
    (
        "signer.example",
        "generic",
        f'{SOA}\n@ TXT "v=spf1 -all"\nsel._domainkey TXT "v=DKIM1; k=rsa; p={dkim_public_key()}"\n',
    ),
]


@pytest.fixture(scope="session", params=["rbldnsd", "relayguard-dnsbl"])
def dns_server(request: pytest.FixtureRequest) -> Iterator[Rbldnsd | RelayguardDnsbl]:
    """Every real-server case runs against rbldnsd and against relayguard's own blocklist server."""
    server: Rbldnsd | RelayguardDnsbl
    if request.param == "rbldnsd":
        if not rbldnsd_available():
            pytest.fail("rbldnsd is not installed (Debian package rbldnsd; scripts/apt-packages.txt)")
        server = Rbldnsd(ZONES)
    else:
        server = RelayguardDnsbl(ZONES)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    b = Blackhole()
    try:
        yield b
    finally:
        b.close()
