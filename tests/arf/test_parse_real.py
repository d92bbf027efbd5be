"""Real feedback-loop reports from public test suites (see tests/fixtures/arf/README.md): each parses,
with the fields that matter for tracing a complaint, in LF, CRLF and bare-CR form alike."""

from __future__ import annotations

from typing import Any

import pytest

from arf.helpers import REAL, bare_cr, crlf
from relayguard.arf.parse import ArfParseError, parse_report

# file -> (has feedback part, feedback type, user agent, Source-IP, rcpt count, original kind, reported Message-ID)
EXPECTED: dict[str, tuple[Any, ...]] = {
    "mailio-aol-scomp": (
        True,
        "abuse",
        "AOL SComp",
        "74.63.231.149",
        0,
        "message",
        "1283450583.6569568232097351@mf12.sendgrid.net",
    ),
    "sisimai-amazonses": (True, "abuse", "Yahoo!-Mail-Feedback/2.0", None, 1, "message", None),
    "sisimai-arf-01": (True, "abuse", "SMP-FBL", "192.0.2.89", 0, "message", None),
    "sisimai-arf-03": (
        True,
        "abuse",
        "ReturnPathFBL/1.0",
        "192.0.2.8",
        0,
        "message",
        "f6fbba8a761ce682e1b00a323a21b372@example.net",
    ),
    "sisimai-arf-04": (True, "abuse", "ReturnPathFBL/1.0", "192.0.1.99", 20, "message", None),
    "sisimai-arf-05": (True, "abuse", "abusix-py/0.1", "192.0.2.45", 2, "message", None),
    "sisimai-arf-07": (
        True,
        "auth-failure",
        "Lua/1.0",
        "192.0.2.45",
        1,
        "message",
        "105855309.1523556.1415796020873@example.net",
    ),
    "sisimai-arf-09": (
        True,
        "auth-failure",
        "OpenDMARC-Filter/1.3.0",
        "192.168.0.255",
        0,
        "headers",
        "asdjhi9ldn14@example.net",
    ),
    "sisimai-arf-11": (True, "abuse", "ARF-Agent/1.0", None, 0, "message", None),
    "sisimai-arf-13": (
        False,
        "abuse",
        None,
        "123.123.123.123",
        1,
        "message",
        "d4cb0d6593464552a34f4429b3e7f92f@example.com",
    ),
    "sisimai-arf-15": (True, "abuse", "ReturnPathFBL/1.0", "192.0.2.222", 0, "message", None),
    "sisimai-arf-17": (True, "abuse", "abusix-py/0.1", "192.0.2.3", 2, "message", None),
    "sisimai-arf-19": (True, "auth-failure", "NtesDmarcReporter/1.0", "203.0.113.2", 0, "headers", None),
    "sisimai-arf-20": (
        True,
        "auth-failure",
        "OpenDMARC-Filter/1.3.0",
        "203.0.113.2",
        0,
        "headers",
        "000000000eee@example.net",
    ),
    "sisimai-arf-21": (True, "abuse", "ReturnPathFBL/1.0", "198.51.100.224", 0, "message", None),
    "sisimai-arf-22": (False, "abuse", None, "203.0.113.245", 1, "message", None),
    "sisimai-arf-23": (False, "abuse", None, "203.0.113.245", 1, "message", None),
    "sisimai-arf-24": (False, "abuse", None, "203.0.113.245", 1, "message", None),
    "sisimai-arf-25": (True, "abuse", "ReturnPathFBL/2.0", "10.0.0.1", 1, "message", None),
    "sisimai-optout": (True, "opt-out", "ARF-Agent/1.0", None, 0, "headers", None),
    "sisimai-yahoo": (
        True,
        "abuse",
        "Yahoo!-Mail-Feedback/1.0",
        None,
        1,
        "message",
        "000000000000000000000000.smtp@example.com",
    ),
}


def test_every_real_fixture_has_an_expectation() -> None:
    files = {p.stem for p in REAL.glob("*.eml")} - {"sisimai-arf-26-not-a-report"}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("endings", ["lf", "crlf", "cr"])
def test_real_report_parses(name: str, endings: str) -> None:
    raw = (REAL / f"{name}.eml").read_bytes()
    raw = {"lf": raw, "crlf": crlf(raw), "cr": bare_cr(raw)}[endings]
    has, ftype, ua, ip, nrcpt, kind, mid = EXPECTED[name]
    p = parse_report(raw)
    r = p.report
    assert p.has_feedback_part is has
    assert r.feedback_type == ftype
    assert r.user_agent == ua
    assert r.source_ip == ip
    assert len(r.original_rcpt_to) == nrcpt
    assert r.original is not None and r.original.kind == kind
    if mid is not None:
        assert f"<{mid}>".encode() in r.original.data or mid.encode() in r.original.data
    if has and ftype != "opt-out":
        # Arrival-Date or the legacy Received-Date, where the reporter gave one
        assert r.arrival_time is not None or name in ("sisimai-arf-09", "sisimai-arf-11", "sisimai-arf-20")
    # The same report in any line-ending style reads the same.
    lf = parse_report((REAL / f"{name}.eml").read_bytes()).report
    assert r == lf


def test_details_of_some_loops() -> None:
    yahoo = parse_report((REAL / "sisimai-yahoo.eml").read_bytes()).report
    assert yahoo.original_mail_from == "<shironeko@example.com>"
    assert yahoo.reported_domain == ("example.com",)
    assert yahoo.authentication_results == ()  # an empty field is no value
    assert yahoo.version == "0.1"
    bluetie = parse_report((REAL / "sisimai-arf-04.eml").read_bytes()).report
    assert len(bluetie.reported_domain) == 9
    assert ("Abuse-Type", "complaint") in bluetie.extra
    aol = parse_report((REAL / "mailio-aol-scomp.eml").read_bytes()).report
    assert [v for k, v in aol.extra if k == "Redacted-Address"] == ["redacted", "redacted@"]
    assert aol.reported_domain == ("o7463231149.static.reverse.sendgrid.net",)
    hotmail = parse_report((REAL / "sisimai-arf-13.eml").read_bytes())
    assert hotmail.report.original_rcpt_to == ("recipient@hotmail.com",)
    assert hotmail.envelope.reporter == "staff@hotmail.com"
    assert any("inferred" in w for w in hotmail.warnings)
    netease = parse_report((REAL / "sisimai-arf-19.eml").read_bytes()).report
    assert netease.auth.dkim_domain == "ietf.org; example.net"
    assert netease.auth.delivery_result == "delivered"
    optout = parse_report((REAL / "sisimai-optout.eml").read_bytes()).report
    assert optout.removal_recipient == ("user@example.com",)
    opendmarc = parse_report((REAL / "sisimai-arf-09.eml").read_bytes()).report
    assert opendmarc.auth.auth_failure == "dmarc"
    assert opendmarc.original_envelope_id == "435FE40094"


def test_not_a_report_is_refused_clearly() -> None:
    with pytest.raises(ArfParseError, match="not a feedback report"):
        parse_report((REAL / "sisimai-arf-26-not-a-report.eml").read_bytes())
