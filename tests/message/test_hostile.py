"""Hostile input: every case still yields facts, with a symbol saying what was wrong."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from relayguard.app.build import build_pipeline
from relayguard.config import Settings, load_config
from relayguard.message.parse import parse_message

SETTINGS = load_config()
PIPELINE = build_pipeline(SETTINGS)


def verdict_for(raw: bytes) -> tuple[set[str], str]:
    facts = parse_message(raw, SETTINGS)
    verdict = asyncio.run(PIPELINE.check(facts))
    return set(verdict.symbols), str(verdict.action)


def test_nul_bytes() -> None:
    syms, _ = verdict_for(b"Subject: a\x00b\n\nbody \x00 with nul\n")
    assert "NUL_BYTES" in syms


def test_one_megabyte_header_line() -> None:
    raw = b"Subject: " + b"A" * 1_048_576 + b"\nFrom: a@example.com\n\nbody\n"
    facts = parse_message(raw, SETTINGS)
    assert len(facts.subject) <= SETTINGS.limits.max_header_bytes
    assert facts.header("From") == "a@example.com"
    assert any(name == "LONG_HEADER" for name, _ in facts.defects)


def test_one_megabyte_folded_header() -> None:
    raw = b"X-Long: start\n" + b" continued\n" * 100_000 + b"\nbody\n"
    facts = parse_message(raw, SETTINGS)
    assert any(name == "LONG_HEADER" for name, _ in facts.defects)


def test_ten_thousand_headers() -> None:
    raw = b"".join(b"X-H%d: v\n" % i for i in range(10_000)) + b"Subject: late\n\nbody\n"
    syms, _ = verdict_for(raw)
    assert "MANY_HEADERS" in syms


def test_truncated_file(settings: Settings) -> None:
    raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=zz\nSubj"
    syms, _ = verdict_for(raw)
    assert "MSG_NO_BODY" in syms


def test_truncated_multipart() -> None:
    raw = (
        b"From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=zz\n\n"
        b"--zz\nContent-Type: text/plain\n\nhalf a mess"
    )
    syms, _ = verdict_for(raw)
    assert "MIME_BOUNDARY_MISSING" in syms


def test_boundary_never_declared() -> None:
    syms, _ = verdict_for(b"Content-Type: multipart/mixed\n\n--x\n\nhi\n--x--\n")
    assert "MIME_BOUNDARY_MISSING" in syms or "MIME_MALFORMED" in syms


def test_deep_nesting_is_bounded() -> None:
    depth = 200
    head = b"From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b0\n\n"
    body = b""
    for i in range(depth):
        body += b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (i, i + 1)
    body += b"--b%d\nContent-Type: text/plain\n\ndeep\n" % depth
    syms, _ = verdict_for(head + body)
    assert "MIME_TOO_DEEP" in syms


def test_oversized_message_is_truncated_not_refused() -> None:
    settings = load_config_text_limit(max_message_bytes=4096)
    facts = parse_message(b"Subject: big\n\n" + b"x" * 10_000, settings)
    assert facts.size > 4096
    assert any(name == "MSG_TRUNCATED" for name, _ in facts.defects)


def load_config_text_limit(**kw: int) -> Settings:
    from relayguard.config import load_config_text

    return load_config_text("[limits]\n" + "".join(f"{k} = {v}\n" for k, v in kw.items()))


def test_invalid_bytes_in_declared_charset() -> None:
    raw = b"Content-Type: text/plain; charset=utf-8\n\n\xff\xfe caf\xe9\n"
    facts = parse_message(raw, SETTINGS)
    assert "caf" in facts.text
    assert any(name == "CHARSET_INVALID" for name, _ in facts.defects)


def test_undecodable_encoded_word() -> None:
    facts = parse_message(b"Subject: =?x-bogus?q?abc?=\n\nbody\n", SETTINGS)
    assert facts.subject
    assert any(name == "HEADER_NOT_DECODABLE" for name, _ in facts.defects)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_fuzz_random_bytes_always_get_a_verdict(raw: bytes) -> None:
    _syms, action = verdict_for(raw)
    assert action


_LINE = st.one_of(
    st.sampled_from(
        [
            b"Content-Type: multipart/mixed; boundary=q",
            b"Content-Type: text/html; charset=bogus",
            b"Content-Transfer-Encoding: base64",
            b"Content-Transfer-Encoding: quoted-printable",
            b"--q",
            b"--q--",
            b"Received: from x ([10.0.0.1]) by y; Mon, 1 Jan 2001 00:00:00 +0000",
            b"Subject: =?utf-8?b?////?=",
            b"",
            b" folded",
            b"<a href='http://[::1/x'>",
            b"=?=?=?",
        ]
    ),
    st.binary(max_size=80),
)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_LINE, max_size=60))
def test_fuzz_structured_mime(lines: list[bytes]) -> None:
    _syms, action = verdict_for(b"\n".join(lines))
    assert action
