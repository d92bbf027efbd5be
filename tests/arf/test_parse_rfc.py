"""RFC 5965 Appendix B and RFC 6591 examples (stalwartlabs mail-auth resources) against their reference
parse (`.expected.json`)."""

from __future__ import annotations

import json
import re

import pytest

from arf.helpers import RFC, bare_cr, crlf
from relayguard.arf.parse import parse_report

CASES = sorted(p.stem for p in RFC.glob("*.eml"))

# The reference names enum values in CamelCase (Rust enums); ours are the RFC's tokens.
FEEDBACK = {"Abuse": "abuse", "AuthFailure": "auth-failure", "Fraud": "fraud", "Virus": "virus", "Other": "other"}
AUTH = {"BodyHash": "bodyhash", "Dmarc": "dmarc", "Signature": "signature", "Spf": "spf", "Adsp": "adsp"}


def unfold(v: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", v).strip()


def test_all_five_present() -> None:
    assert CASES == ["001", "002", "003", "004", "005"]


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("endings", ["lf", "crlf", "cr"])
def test_rfc_example_matches_reference(name: str, endings: str) -> None:
    raw = (RFC / f"{name}.eml").read_bytes()
    raw = {"lf": raw, "crlf": crlf(raw), "cr": bare_cr(raw)}[endings]
    exp = json.loads((RFC / f"{name}.expected.json").read_text())
    parsed = parse_report(raw)
    r = parsed.report
    assert parsed.has_feedback_part
    assert r.feedback_type == FEEDBACK[exp["feedback_type"]]
    assert r.user_agent == exp["user_agent"]
    assert int(float(r.version or "0")) == exp["version"]
    assert r.incidents == exp["incidents"]
    assert r.source_ip == exp["source_ip"]
    assert r.arrival_time == (float(exp["arrival_date"]) if exp["arrival_date"] is not None else None)
    assert r.original_mail_from == exp["original_mail_from"]
    assert (r.original_rcpt_to[0] if r.original_rcpt_to else None) == exp["original_rcpt_to"]
    assert r.original_envelope_id == exp["original_envelope_id"]
    assert r.reporting_mta == exp["reporting_mta"]
    assert list(r.reported_domain) == exp["reported_domain"]
    assert list(r.reported_uri) == exp["reported_uri"]
    # The reference keeps the first Authentication-Results value per report.
    assert [unfold(v) for v in exp["authentication_results"]] == list(r.authentication_results[:1])
    a = r.auth
    assert (a.auth_failure or None) == (AUTH[exp["auth_failure"]] if exp["auth_failure"] != "Unspecified" else None)
    for field in ("dkim_domain", "dkim_identity", "dkim_selector", "dkim_selector_dns"):
        assert getattr(a, field) == exp[field], field
    body = exp["dkim_canonicalized_body"]
    assert a.dkim_canonicalized_body == (unfold(body) if body else None)
    if exp["headers"] is not None:
        assert r.original is not None and r.original.kind == "headers"
        assert r.original.data.decode() == exp["headers"]
    else:
        assert r.original is not None and r.original.kind == "message"
