from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outbound.helpers import FIXTURES
from relayguard.core.errors import ParseError
from relayguard.core.netset import parse_ip
from relayguard.message.facts import Envelope
from relayguard.outbound.identity import (
    IdentityResolver,
    LeaseHistory,
    LoginNetworks,
    StaticAssignments,
    parse_cidr_line,
    parse_lease_line,
)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    a = parse_ip(text)
    assert a is not None
    return a


def test_sasl_login_wins_over_address() -> None:
    r = IdentityResolver(StaticAssignments.parse("192.0.2.0/24 SUB-1\n"))
    i = r.resolve(Envelope(client_ip="192.0.2.7", sasl_username="Alice"), 0)
    assert (i.customer, i.source, i.network) == ("login:alice", "sasl", "192.0.2.0/24")


def test_static_longest_prefix_and_comments() -> None:
    s = StaticAssignments.parse("# office\n192.0.2.0/24 SUB-1\n192.0.2.128/25 SUB-2  # shop\n\n2001:db8::/48 SUB-6\n")
    assert len(s) == 3
    assert s.lookup(ip("192.0.2.7")) == "SUB-1"
    assert s.lookup(ip("192.0.2.200")) == "SUB-2"
    assert s.lookup(ip("2001:db8:0:5::1")) == "SUB-6"
    assert s.lookup(ip("198.51.100.1")) is None


def test_static_file_fixture() -> None:
    s = StaticAssignments.load(FIXTURES / "static.cidr")
    assert s.lookup(ip("198.51.100.77")) == "biz-0042"


def test_cidr_errors_name_the_line() -> None:
    with pytest.raises(ParseError, match="<cidr>:2"):
        StaticAssignments.parse("192.0.2.0/24 A\nnot-a-net B\n")
    with pytest.raises(ParseError):
        parse_cidr_line("192.0.2.0/24")


def test_radius_start_stop_and_reassignment() -> None:
    h = LeaseHistory()
    h.load_lines(
        [
            "Acct-Status-Type=Start User-Name=cust1 Framed-IP-Address=203.0.113.5 Event-Timestamp=1000",
            'Acct-Status-Type=Stop User-Name="cust1" Framed-IP-Address=203.0.113.5 Event-Timestamp=2000',
            "Acct-Status-Type=Start User-Name=cust2 Framed-IP-Address=203.0.113.5 Event-Timestamp=2500",
            "Acct-Status-Type=Start User-Name=cust1 Framed-IP-Address=203.0.113.9 Event-Timestamp=2600",
        ]
    )
    r = IdentityResolver(leases=h)
    at = lambda t, a: r.resolve(Envelope(client_ip=a), t).customer  # noqa: E731
    assert at(1500, "203.0.113.5") == "sub:cust1"
    assert at(2200, "203.0.113.5") == "ip:203.0.113.5"  # between leases nobody held it
    assert at(3000, "203.0.113.5") == "sub:cust2"  # the next holder does not inherit cust1
    assert at(3000, "203.0.113.9") == "sub:cust1"  # cust1 stays one customer on a new address


def test_start_without_stop_is_cut_by_next_holder() -> None:
    h = LeaseHistory()
    for line in (
        "Acct-Status-Type=Start User-Name=a Framed-IP-Address=203.0.113.5 Event-Timestamp=100",
        "Acct-Status-Type=Interim-Update User-Name=a Framed-IP-Address=203.0.113.5 Event-Timestamp=150",
        "Acct-Status-Type=Start User-Name=b Framed-IP-Address=203.0.113.5 Event-Timestamp=200",
    ):
        rec = parse_lease_line(line)
        assert rec is not None
        h.add(rec)
    assert h.lookup(ip("203.0.113.5"), 120) == ("a", ipaddress.ip_network("203.0.113.5/32"))
    assert h.lookup(ip("203.0.113.5"), 250) == ("b", ipaddress.ip_network("203.0.113.5/32"))


def test_ipv6_delegated_prefix_keys_the_customer() -> None:
    h = LeaseHistory()
    h.load_lines(
        ["Acct-Status-Type=Start User-Name=v6cust Delegated-IPv6-Prefix=2001:db8:1200::/56 Event-Timestamp=10"]
    )
    r = IdentityResolver(leases=h, ipv6_prefix=56)
    a = r.resolve(Envelope(client_ip="2001:db8:1200:ff::1"), 20)
    b = r.resolve(Envelope(client_ip="2001:db8:1200:3::abcd"), 20)
    assert a.customer == b.customer == "sub:v6cust"
    # Without a lease, the customer is its /56 (not each rotating address).
    r2 = IdentityResolver(ipv6_prefix=56)
    c = r2.resolve(Envelope(client_ip="2001:db8:77:1::1"), 0)
    d = r2.resolve(Envelope(client_ip="2001:db8:77:2::2"), 0)
    assert c.customer == d.customer == "net6:2001:db8:77::/56"


def test_kea_rows() -> None:
    h = LeaseHistory()
    n = h.load_lines((FIXTURES / "kea-leases.csv").read_text().splitlines())
    assert n == 3
    assert h.lookup(ip("198.51.100.20"), 1_700_000_100) == (
        "aa:bb:cc:00:00:01",
        ipaddress.ip_network("198.51.100.20/32"),
    )
    assert h.lookup(ip("198.51.100.20"), 1_700_010_000) is None  # expired
    held = h.lookup(ip("2001:db8:abcd:1234::5"), 1_700_000_100)
    assert held is not None and held[0] == "00:01:00:01:aa:bb"


def test_malformed_lease_lines_are_counted_not_fatal() -> None:
    h = LeaseHistory()
    n = h.load_lines(["garbage", "Acct-Status-Type=Start User-Name=x Event-Timestamp=1", ""])
    assert n == 0 and h.errors == 2


def test_prune_forgets_old_leases() -> None:
    h = LeaseHistory(history=100)
    h.load_lines(
        [
            "Acct-Status-Type=Start User-Name=a Framed-IP-Address=203.0.113.5 Event-Timestamp=0",
            "Acct-Status-Type=Stop User-Name=a Framed-IP-Address=203.0.113.5 Event-Timestamp=10",
        ]
    )
    h.prune(50)
    assert len(h) == 1
    h.prune(500)
    assert len(h) == 0


def test_login_networks_counts_distinct_networks_in_window() -> None:
    ln = LoginNetworks(window=3600)
    assert ln.observe("login:a", "192.0.2.0/24", 0) == 1
    assert ln.observe("login:a", "192.0.2.0/24", 10) == 1
    assert ln.observe("login:a", "198.51.100.0/24", 20) == 2
    assert ln.observe("login:a", "203.0.113.0/24", 30) == 3
    assert ln.observe("login:a", "203.0.113.0/24", 5000) == 1  # the others fell out of the window


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_lease_parser_only_raises_parse_error(line: str) -> None:
    with contextlib.suppress(ParseError):
        parse_lease_line(line)


_attr = st.sampled_from(
    ["Acct-Status-Type", "User-Name", "Framed-IP-Address", "Event-Timestamp", "Delegated-IPv6-Prefix", "Class"]
)
_val = st.one_of(
    st.sampled_from(["Start", "Stop", "Interim-Update", "203.0.113.5", "2001:db8::/56", "12", "-1", '"q"', "1e30"]),
    st.text(max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_attr, _val), max_size=6))
def test_fuzz_radius_records(pairs: list[tuple[str, str]]) -> None:
    line = "Acct-Status-Type=Start " + " ".join(f"{a}={v}" for a, v in pairs)
    h = LeaseHistory()
    try:
        rec = parse_lease_line(line)
    except ParseError:
        return
    if rec is not None:
        h.add(rec)
        h.lookup(ip("203.0.113.5"), 12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789abcdef:.,/x ", max_size=30), min_size=1, max_size=12))
def test_fuzz_kea_rows(fields: list[str]) -> None:
    with contextlib.suppress(ParseError):
        parse_lease_line(",".join(fields))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_cidr_parser(text: str) -> None:
    try:
        s = StaticAssignments.parse(text)
    except ParseError:
        return
    s.lookup(ip("192.0.2.1"))
    s.lookup(ip("2001:db8::1"))


def test_customer_fast_path_answers_as_resolve() -> None:
    """`customer()` (the policy hot path, with memos) gives resolve()'s customer, leases still by time."""
    h = LeaseHistory()
    r = IdentityResolver(StaticAssignments.parse("192.0.2.0/24 SUB-1\n"), h, ipv6_prefix=56)
    cases = [
        ("Alice ", "192.0.2.7"), ("", "192.0.2.7"), ("", "203.0.113.5"), ("", "[203.0.113.5]"),
        ("", "2001:db8:77:1::1"), ("", "::ffff:198.51.100.1"), ("", "not-an-address"), ("bob", ""),
    ]  # fmt: skip
    for _ in range(2):  # the second round answers from the memos
        for login, addr in cases:
            want = r.resolve(Envelope(client_ip=addr or None, sasl_username=login or None), 50).customer
            assert r.customer(login, addr, 50) == want
    # a lease that starts later wins over the memoized address, and only while it lasts
    h.load_lines(["Acct-Status-Type=Start User-Name=cust1 Framed-IP-Address=203.0.113.5 Event-Timestamp=100"])
    assert r.customer("", "203.0.113.5", 50) == "ip:203.0.113.5"
    assert r.customer("", "203.0.113.5", 150) == "sub:cust1"
    # new static assignments are seen at once
    r.static = StaticAssignments.parse("203.0.113.0/24 SUB-9\n")
    assert r.customer("", "203.0.113.77", 150) == "sub:SUB-9"
