"""Fuzzing the packet parser and both answer paths: no exception, no oversized answer, no disagreement."""

from __future__ import annotations

import contextlib
from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayguard.dnsbl import native
from relayguard.dnsbl.answer import Limits, ZoneSet
from relayguard.dnsbl.wire import answer_fast, answer_packet, parse_question
from relayguard.dnsbl.zonespec import ZoneSpec, build_zoneset

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dnsbl"
SPECS = ["bl.test:ip4set:ip4set.zone", "dbl.test:dnset:dnset.zone", "gen.test:generic:generic.zone",
         "comb.test:combined:combined.zone", "six.test:ip6trie:ip6trie.zone"]
ZS: ZoneSet = build_zoneset([ZoneSpec.parse(s) for s in SPECS], Limits(), workdir=str(FIXTURES)).zoneset
ENGINE = native.engine_for(ZS)

label = st.one_of(st.sampled_from(["1", "2", "10", "65", "0", "spam", "example", "bl", "test", "dbl", "www",
                                   "BL", "Test", "255", "256", "010"]),
                  st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12))
zone = st.sampled_from(["bl.test", "dbl.test", "gen.test", "comb.test", "six.test", "other.test", ""])


def _check(pkt: bytes) -> None:
    fast = answer_fast(ZS, pkt, "127.0.0.1")
    slow = answer_packet(ZS, pkt, "127.0.0.1")
    assert fast == slow
    compiled = ENGINE.answer(pkt)  # None: the compiled path leaves the packet to Python
    assert compiled is None or compiled == fast
    if fast is not None:
        assert len(fast) <= 1232
        limit = 512
        with contextlib.suppress(Exception):
            limit = max(512, dns.message.from_wire(pkt).payload)
        assert len(fast) <= min(limit, 1232)
        assert fast[2] & 0x80  # always a response
        assert not fast[3] & 0x80  # never recursion available


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    _check(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labels=st.lists(label, max_size=6), z=zone,
       rtype=st.sampled_from(["A", "TXT", "ANY", "AAAA", "NS", "SOA", "MX", "AXFR", "CNAME"]),
       edns=st.sampled_from([None, 0, 1]), payload=st.integers(0, 65535), flips=st.lists(
           st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3))
def test_mutated_queries_agree_and_stay_small(labels: list[str], z: str, rtype: str, edns: int | None,
                                              payload: int, flips: list[tuple[int, int]]) -> None:
    name = ".".join([*labels, z]) or "."
    try:
        q = dns.message.make_query(name, rtype, use_edns=edns, payload=max(payload, 512))
    except (dns.name.LabelTooLong, dns.name.NameTooLong):
        return
    pkt = bytearray(q.to_wire())
    _check(bytes(pkt))
    for pos, val in flips:
        if pos < len(pkt):
            pkt[pos] = val
    _check(bytes(pkt))


@settings(max_examples=200, deadline=None)
@given(labels=st.lists(label, min_size=1, max_size=8), rtype=st.sampled_from(["A", "TXT", "MX"]))
def test_parser_reads_what_dnspython_writes(labels: list[str], rtype: str) -> None:
    name = ".".join(labels)
    try:
        wire = dns.message.make_query(name, rtype).to_wire()
    except (dns.name.LabelTooLong, dns.name.NameTooLong):
        return
    q = parse_question(wire)
    assert q.labels == tuple(x.lower() for x in labels)
    assert q.qtype == dns.rdatatype.from_text(rtype)
