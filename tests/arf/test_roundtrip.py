"""Reports relayguard writes parse back identically, with relayguard's parser and with an independent
one (tests/arf/reference.py, stdlib `email` only; no well-kept ARF library exists on PyPI)."""

from __future__ import annotations

import email.utils
import string
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arf import variants as v
from arf.helpers import REAL, RFC
from arf.reference import canon, read
from relayguard.arf.build import Redaction, build_report, feedback_fields
from relayguard.arf.model import AuthFailure, FeedbackReport
from relayguard.arf.parse import parse_report
from relayguard.arf.redact import redact_address

NO_REDACTION = Redaction(recipients=False)


def _roundtrip(report: FeedbackReport, original: bytes | None, headers_only: bool = False) -> None:
    out = build_report(
        report,
        from_addr="abuse@isp.example",
        to_addrs=["abuse@peer.example"],
        original=original,
        headers_only=headers_only,
        redaction=NO_REDACTION,
        date=1_791_194_400.0,
    )
    assert all(len(line) <= 998 for line in out.split(b"\r\n"))
    back = parse_report(out)
    assert all("empty or redacted" in w for w in back.warnings), back.warnings
    got = replace(back.report, original=None, human_text=None)
    assert got == replace(report, original=None, human_text=None)
    ref = read(out)
    assert ref["fields"] == feedback_fields(report)
    if original is not None:
        assert back.report.original is not None
        assert ref["original_kind"] == back.report.original.kind
        ref_orig = ref["original"]
        assert isinstance(ref_orig, bytes)
        assert canon(ref_orig) == canon(back.report.original.data)


def test_every_parsed_fixture_rebuilds_identically() -> None:
    n = 0
    for path in sorted([*RFC.glob("*.eml"), *REAL.glob("*.eml")]):
        if "not-a-report" in path.name:
            continue
        p = parse_report(path.read_bytes())
        r = p.report
        # Fields a writer supplies when the reader found none (required by RFC 5965) are set first.
        r = replace(r, user_agent=r.user_agent or "relayguard", version=r.version or "1")
        orig = r.original.data if r.original is not None else None
        _roundtrip(r, orig, headers_only=r.original is not None and r.original.kind == "headers")
        n += 1
    assert n == 26


def test_generated_report_for_outbound_spam() -> None:
    r = FeedbackReport(
        user_agent="relayguard/0.1",
        source_ip="198.51.100.7",
        original_mail_from="<sales@pills.example>",
        original_rcpt_to=("<victim@yahoo.example>", "<other@aol.example>"),
        arrival_date=email.utils.formatdate(1_791_194_400.0),
        arrival_time=1_791_194_400.0,
        reporting_mta="smtp1.isp.example",
        reported_domain=("pills.example",),
        reported_uri=("http://pills.example/buy",),
        incidents=3,
        original_envelope_id="4Xy7Zk1Qm2",
    )
    _roundtrip(r, v.ORIGINAL)
    _roundtrip(r, v.ORIGINAL, headers_only=True)


def test_auth_failure_report() -> None:
    r = FeedbackReport(
        feedback_type="auth-failure",
        user_agent="relayguard/0.1",
        source_ip="2001:db8::25",
        authentication_results=("mx.isp.example; dmarc=fail header.from=bank.example",),
        reported_domain=("bank.example",),
        auth=AuthFailure(
            auth_failure="dmarc",
            delivery_result="reject",
            identity_alignment="none",
            dkim_domain="bank.example",
            dkim_selector="s1",
            dkim_canonicalized_body="VGhpcyBpcyBhIG1lc3NhZ2UgYm9keSB0" * 5,
            spf_dns=("txt : bank.example : v=spf1 -all",),
        ),
    )
    _roundtrip(r, v.ORIGINAL)


def test_redaction_rfc6590() -> None:
    r = FeedbackReport(user_agent="relayguard/0.1", original_rcpt_to=("<victim@yahoo.example>",))
    out = build_report(
        r,
        from_addr="abuse@isp.example",
        to_addrs=["x@peer.example"],
        original=v.ORIGINAL,
        redaction=Redaction(key=b"k"),
    )
    assert b"victim@" not in out
    red = redact_address("victim@yahoo.example", b"k")
    assert red.endswith("@yahoo.example") and red.count(red.split("@")[0]) == 1
    back = parse_report(out).report
    assert back.original_rcpt_to == (f"<{red}>",)
    assert back.original is not None and red.encode() in back.original.data  # To:, Received for <...>
    headers_only = build_report(
        r,
        from_addr="a@isp.example",
        to_addrs=["x@peer.example"],
        original=v.ORIGINAL,
        headers_only=True,
        redaction=Redaction(key=b"k", body=True),
    )
    back2 = parse_report(headers_only).report
    assert back2.original is not None and back2.original.kind == "headers" and b"Buy now" not in headers_only
    body_gone = build_report(
        r, from_addr="a@isp.example", to_addrs=["x@p.example"], original=v.ORIGINAL, redaction=Redaction(body=True)
    )
    assert b"Buy now" not in body_gone and b"[body redacted" in body_gone


def test_values_cannot_inject_fields_or_parts() -> None:
    evil = "x\r\nSource-IP: 203.0.113.66\r\n--boundary"
    r = FeedbackReport(user_agent=evil, reported_domain=("a.example\nFeedback-Type: not-spam",))
    out = build_report(r, from_addr="a@isp.example", to_addrs=["b@peer.example"], redaction=NO_REDACTION)
    back = parse_report(out).report
    assert back.source_ip is None and back.feedback_type == "abuse"
    assert back.user_agent == "x Source-IP: 203.0.113.66 --boundary"


_token = st.text(alphabet=string.ascii_letters + string.digits + ".-_", min_size=1, max_size=30)
_value = st.text(alphabet=string.ascii_letters + string.digits + " .-_;=:/@()<>", min_size=1, max_size=300).map(
    lambda s: " ".join(s.split()) or "x"
)
_ip = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ftype=st.sampled_from(["abuse", "fraud", "virus", "other", "not-spam", "auth-failure"]),
    ua=_value,
    ip=st.one_of(st.none(), _ip),
    mail_from=st.one_of(st.none(), _token.map(lambda t: f"<{t}@example.net>")),
    rcpts=st.lists(_token.map(lambda t: f"{t}@example.org"), max_size=5),
    domains=st.lists(_token, max_size=4),
    uris=st.lists(_token.map(lambda t: f"http://{t}.example/"), max_size=4),
    ar=st.lists(_value, max_size=3),
    incidents=st.integers(min_value=1, max_value=10_000),
    t=st.one_of(st.none(), st.integers(min_value=0, max_value=4_000_000_000)),
    extra=st.lists(st.tuples(_token.map(lambda t: "X-" + t), _value), max_size=3),
    headers_only=st.booleans(),
)
def test_generated_reports_roundtrip(
    ftype: str,
    ua: str,
    ip: str | None,
    mail_from: str | None,
    rcpts: list[str],
    domains: list[str],
    uris: list[str],
    ar: list[str],
    incidents: int,
    t: int | None,
    extra: list[tuple[str, str]],
    headers_only: bool,
) -> None:
    r = FeedbackReport(
        feedback_type=ftype,
        user_agent=ua,
        source_ip=ip,
        original_mail_from=mail_from,
        original_rcpt_to=tuple(rcpts),
        arrival_date=email.utils.formatdate(t) if t is not None else None,
        arrival_time=float(t) if t is not None else None,
        reported_domain=tuple(domains),
        reported_uri=tuple(uris),
        authentication_results=tuple(ar),
        incidents=incidents,
        extra=tuple(extra),
    )
    _roundtrip(r, v.ORIGINAL, headers_only)
