"""The shared resolver against real DNS servers (rbldnsd, relayguard's own): TTLs, negative TTLs,
merged questions, the in-flight cap, deadlines, and host:port nameservers.
Time is an injected clock: no sleeping, no timing assertions."""

from __future__ import annotations

import asyncio

import pytest

from conftest import INFECTED
from relayguard.config.schema import DnsSettings
from relayguard.inbound.dnsbl_lists import ip_query_name
from relayguard.inbound.resolver import Resolver

pytestmark = pytest.mark.peer

LISTED = ip_query_name(INFECTED, "zen.rbl.test")
UNLISTED = ip_query_name("198.51.100.200", "zen.rbl.test")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def resolver(ns: str, clock: Clock | None = None, **kw: object) -> Resolver:
    return Resolver(DnsSettings(nameservers=[ns], **kw), clock=clock or Clock())  # type: ignore[arg-type]


async def test_positive_answers_are_cached_for_their_ttl(dns_server):
    clock = Clock()
    r = resolver(dns_server.address, clock)
    a = await r.query(LISTED)
    assert a.ok and sorted(a.addresses()) == ["127.0.0.10", "127.0.0.4"]
    assert a.ttl > 0
    b = await r.query(LISTED)
    assert b.cached and r.stats.sent == 1
    clock.t += a.ttl  # expired exactly at its TTL
    c = await r.query(LISTED)
    assert not c.cached and r.stats.sent == 2


async def test_negative_answers_are_cached_for_the_soa_negative_ttl(dns_server):
    clock = Clock()
    r = resolver(dns_server.address, clock)
    a = await r.query(UNLISTED)
    assert a.ok and a.nxdomain and not a.addresses()
    assert a.ttl == 60  # min(SOA TTL 60, SOA MINIMUM 60) written by conftest
    assert (await r.query(UNLISTED)).cached
    clock.t += 61
    assert not (await r.query(UNLISTED)).cached


async def test_identical_questions_in_flight_share_one_packet(dns_server):
    r = resolver(dns_server.address)
    answers = await asyncio.gather(*(r.query(LISTED) for _ in range(20)))
    assert all(a.addresses() == answers[0].addresses() for a in answers)
    assert r.stats.sent == 1
    assert r.stats.merged == 19


async def test_in_flight_cap_of_one_still_answers_everything(dns_server):
    r = resolver(dns_server.address, max_inflight=1)
    names = [ip_query_name(f"198.51.100.{i}", "zen.rbl.test") for i in range(1, 30)]
    answers = await asyncio.gather(*(r.query(n) for n in names))
    assert all(a.ok for a in answers)
    assert r.stats.sent == len(names)


async def test_a_passed_deadline_sends_nothing(dns_server):
    clock = Clock()
    r = resolver(dns_server.address, clock)
    a = await r.query(LISTED, deadline=clock.t - 1)
    assert a.error == "timeout" and r.stats.sent == 0


async def test_dead_server_times_out_and_the_next_one_answers(dns_server, blackhole):
    r = Resolver(DnsSettings(nameservers=[blackhole.address, dns_server.address], timeout=1.0))
    a = await r.query(LISTED)
    # The dead server got its share of the timeout, the live one answered within the rest.
    assert a.ok and a.addresses()
    assert r.stats.sent == 2


async def test_refused_zone_is_an_error_not_a_miss(dns_server):
    r = resolver(dns_server.address)
    a = await r.query("1.0.0.127.not-served.test")
    assert a.error == "refused"


async def test_txt_and_other_types(dns_server):
    r = resolver(dns_server.address)
    t = await r.query("sender.example", "TXT")
    assert t.texts() == [b"v=spf1 ip4:198.51.100.0/25 include:_spf.sender.example -all"]
    mx = await r.query("sender.example", "MX")  # no MX there: NOERROR, no data, via dnspython's decoder
    assert mx.ok and not mx.records
