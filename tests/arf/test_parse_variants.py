"""Variants written for relayguard in the shapes of Yahoo, AOL and Hotmail loops, and edge cases."""

from __future__ import annotations

import pytest

from arf import variants as v
from arf.helpers import bare_cr, crlf
from relayguard.arf.parse import ArfParseError, parse_report


@pytest.mark.parametrize("endings", [lambda b: b, crlf, bare_cr])
def test_yahoo_style(endings) -> None:  # type: ignore[no-untyped-def]
    r = parse_report(endings(v.yahoo())).report
    assert r.user_agent == "Yahoo!-Mail-Feedback/2.0"
    assert r.arrival_time == 1791194402.0  # legacy Received-Date
    assert r.authentication_results == (
        "mta1.yahoo.example  from=pills.example;    domainkeys=neutral (no sig);  from=pills.example; dkim=none",
    )
    assert r.source_ip == "192.0.2.25"
    assert r.original is not None and b"Message-ID: <spam-1@pc7>" in r.original.data


def test_aol_style_redacted() -> None:
    r = parse_report(v.aol()).report
    assert r.user_agent == "AOL SComp" and r.original_rcpt_to == ()
    assert r.arrival_time == 1791194402.0  # -0400 (EDT) read with its offset


def test_hotmail_style_inferred() -> None:
    p = parse_report(v.hotmail())
    assert not p.has_feedback_part
    assert p.report.source_ip == "192.0.2.25"
    assert p.report.original_rcpt_to == ("victim@hotmail.example",)
    assert p.report.arrival_time == 1791194401.0


def test_base64_feedback_part() -> None:
    r = parse_report(v.base64_feedback()).report
    assert r.user_agent == "Yahoo!-Mail-Feedback/2.0" and r.source_ip == "192.0.2.25"


def test_forwarded_report_is_found_inside() -> None:
    p = parse_report(v.forwarded(v.yahoo()))
    assert p.has_feedback_part and p.report.user_agent == "Yahoo!-Mail-Feedback/2.0"


def test_missing_close_boundary_is_a_warning() -> None:
    p = parse_report(v.multipart(v.YAHOO_FIELDS, close=False))
    assert p.report.source_ip == "192.0.2.25"
    assert any("closing boundary" in w for w in p.warnings)


def test_junk_lines_duplicates_and_odd_values() -> None:
    fields = (
        b"Feedback-Type: abuse\nFeedback-Type: virus\nthis line is junk\nUser-Agent: X/1\nVersion: 1\n"
        b"Source-IP: [IPv6:2001:db8::7]\nIncidents: lots\nSource-Port: 99999\n\nReported-Domain: a.example\n"
        b"Reported-Domain: b.example\nArrival-Date: not a date\n"
    )
    p = parse_report(v.multipart(fields))
    r = p.report
    assert r.feedback_type == "abuse"
    assert r.source_ip == "2001:db8::7"
    assert r.incidents == 1 and r.source_port is None
    assert r.reported_domain == ("a.example", "b.example")
    assert r.arrival_time is None
    text = " ".join(p.warnings)
    for what in ("more than once", "not 'Name: value'", "not a count", "not a port", "unparseable date"):
        assert what in text


def test_missing_feedback_type_reads_as_abuse() -> None:
    p = parse_report(v.multipart(b"User-Agent: X/1\nVersion: 1\n"))
    assert p.report.feedback_type == "abuse" and any("Feedback-Type" in w for w in p.warnings)


def test_bare_feedback_part_and_mbox_line() -> None:
    raw = b"From MAILER-DAEMON Mon Oct  5 10:00:00 2026\nContent-Type: message/feedback-report\n\n" + v.YAHOO_FIELDS
    assert parse_report(raw).report.source_ip == "192.0.2.25"


@pytest.mark.parametrize(
    "raw",
    [b"", b"\n\n", b"Subject: hi\n\nhello", b"Content-Type: multipart/report\n\n--x\n", b"\xff\xfe\x00" * 50],
)
def test_no_report_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(ArfParseError):
        parse_report(raw)


def test_oversize_input_is_cut_not_crashed() -> None:
    big = v.multipart(v.YAHOO_FIELDS, v.ORIGINAL + b"x" * 200_000 + b"\n")
    p = parse_report(big, max_bytes=50_000)
    assert p.report.source_ip == "192.0.2.25"
    assert any("larger than" in w for w in p.warnings)
