"""Hostile input: the parser answers a ParsedReport or an ArfParseError, never anything else, and
stays bounded (input cut at max_bytes, parts and fields capped, nesting refused past a depth)."""

from __future__ import annotations

import contextlib
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arf import variants as v
from relayguard.arf.parse import MAX_PARTS, ArfParseError, parse_report

PIECES = [
    b"\n",
    b"\r\n",
    b"\r",
    b"--",
    b"yahoo_arf_boundary_1",
    b"Content-Type: message/feedback-report\n",
    b"Content-Type: multipart/report; boundary=yahoo_arf_boundary_1\n",
    b"Content-Type: message/rfc822\n",
    b"Content-Transfer-Encoding: base64\n",
    b"Feedback-Type: abuse\n",
    b"Source-IP: ",
    b"Arrival-Date: ",
    b"\t",
    b" ",
    b":",
    b"\x00",
    b"\xff",
]


def _check(raw: bytes) -> None:
    with contextlib.suppress(ArfParseError):
        parse_report(raw, max_bytes=200_000)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_random_bytes(raw: bytes) -> None:
    _check(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=20)), max_size=200))
def test_report_shaped_noise(pieces: list[bytes]) -> None:
    _check(b"".join(pieces))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10_000), st.binary(max_size=50), st.integers(min_value=0, max_value=3))
def test_mutated_real_report(pos: int, junk: bytes, op: int) -> None:
    base = v.yahoo()
    i = pos % (len(base) + 1)
    raw = [base[:i] + junk + base[i:], base[:i], base[:i] + base[i + len(junk) :], base.replace(b"\n", junk or b"\n")][
        op
    ]
    _check(raw)


def test_deep_nesting_is_refused_or_read_without_recursion_error() -> None:
    raw = v.yahoo()
    for _ in range(2000):
        raw = v.forwarded(raw)
    _check(raw)


def test_many_parts_are_capped() -> None:
    b = b"x"
    parts = b"".join(b"--x\nContent-Type: text/plain\n\nhi\n" for _ in range(5 * MAX_PARTS))
    raw = b'Content-Type: multipart/report; boundary="' + b + b'"\n\n' + parts
    raw += b"--x\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n--x--\n"
    try:
        p = parse_report(raw)
        assert any("parts" in w for w in p.warnings)
    except ArfParseError:
        pass


def test_memory_stays_bounded_on_huge_input() -> None:
    huge = v.multipart(v.YAHOO_FIELDS + b"X-Junk: " + b"a" * 5_000_000 + b"\n")
    tracemalloc.start()
    try:
        p = parse_report(huge, max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert any("larger than" in w for w in p.warnings)
    assert peak < 40_000_000  # a few copies of the 1 MB that was read, not of the 5 MB sent


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=20)), max_size=100))
def test_ingest_keeps_everything_and_never_raises(pieces: list[bytes]) -> None:
    from relayguard.arf.ingest import Ingestor
    from relayguard.arf.settings import ArfSettings
    from relayguard.arf.store import ComplaintStore

    ing = Ingestor(ArfSettings(relay_hostnames=["smtp1.isp.example"]), ComplaintStore(":memory:"))
    raw = b"".join(pieces)
    res = ing.ingest(raw, "fuzz")
    assert res.new and res.complaint.status in ("matched", "unmatched", "unparseable")
    assert ing.store.counts()["total"] == 1
