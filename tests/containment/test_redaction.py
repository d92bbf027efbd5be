from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayguard.containment.incidents import Redaction, complaint_data, complaint_key, parse_redaction


def test_parse_redaction() -> None:
    assert parse_redaction("") == Redaction()
    assert parse_redaction("recipients=hash, body=drop ,excerpt=50") == Redaction("hash", "drop", 50)
    assert parse_redaction("RCPT=Keep") == Redaction("keep", "excerpt", 400)
    for bad in (
        "recipients",
        "recipients=all",
        "body=some",
        "excerpt=-1",
        "excerpt=1e3",
        "colour=red",
        "body=drop,body=keep",
        "excerpt=100001",
        "x" * 300,
    ):
        with pytest.raises(ValueError):
            parse_redaction(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=250))
def test_parse_redaction_fuzz(spec: str) -> None:
    try:
        r = parse_redaction(spec)
    except ValueError:
        return
    assert r.recipients in ("keep", "domain", "hash", "drop")
    assert r.body in ("keep", "excerpt", "drop")
    assert 0 <= r.excerpt_chars <= 100_000


@given(st.text(max_size=100), st.sampled_from(["keep", "domain", "hash", "drop"]))
def test_address_redaction_never_leaks_local_part(addr: str, mode: str) -> None:
    out = Redaction(mode, "drop", 0).address(addr)  # type: ignore[arg-type]
    if mode == "drop":
        assert out is None
    elif mode == "domain":
        assert out is not None and out.startswith("*")  # nothing of the local part is kept
    elif mode == "hash":
        assert out is not None
        head = out.partition("@")[0]
        assert len(head) == 16 and all(c in "0123456789abcdef" for c in head)


def test_complaints_as_data() -> None:
    from dataclasses import dataclass
    from datetime import datetime

    @dataclass
    class Arf:
        feedback_type: str
        arrival: datetime

    d = complaint_data(Arf("abuse", datetime(2026, 1, 2)))
    assert d == {"feedback_type": "abuse", "arrival": "2026-01-02 00:00:00"}
    assert complaint_key({"id": "x1", "a": 1}) == "id:x1"
    assert complaint_key({"a": 1, "b": 2}) == complaint_key({"b": 2, "a": 1})
    assert complaint_data("plain text") == {"text": "plain text"}
