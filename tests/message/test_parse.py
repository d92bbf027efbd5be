"""Message facts from real mail (the shipped SpamAssassin corpus sample) and from crafted edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayguard.config import Settings
from relayguard.message.facts import Envelope
from relayguard.message.parse import parse_message, strip_mbox_from


def test_every_sample_parses(settings: Settings, samples: Path) -> None:
    files = sorted(samples.glob("*/*"))
    assert len(files) > 200
    with_text = 0
    for f in files:
        facts = parse_message(f.read_bytes(), settings)
        assert facts.headers, f
        with_text += bool(facts.body_text.strip())
    assert with_text > 0.95 * len(files)


def test_mbox_from_line_is_not_a_header(settings: Settings, samples: Path) -> None:
    raw = (samples / "ham" / "easy_ham.00001.7c53336b37003a9286aba55d2945844c").read_bytes()
    assert raw.startswith(b"From ")
    facts = parse_message(raw, settings)
    assert facts.headers[0].name != "From " and not facts.headers[0].name.startswith("From ")
    assert facts.header("Subject") == "Re: New Sequences Window"
    assert facts.size == len(strip_mbox_from(raw))


def test_html_reduced_to_text_and_urls_with_registrable_domains(settings: Settings) -> None:
    raw = (
        b"From: a@example.com\nTo: b@example.org\nSubject: hi\nMIME-Version: 1.0\n"
        b'Content-Type: text/html; charset="utf-8"\n\n'
        b"<html><head><style>p{}</style><script>var x='hidden';</script></head><body>"
        b'<p>Buy <b>now</b> &amp; save</p><a href="http://www.shop.example.co.uk/x?y=1">here</a>'
        b'<img src="https://img.cdn.example.net/a.png"><form action="http://198.51.100.7/login"></form>'
        b"</body></html>\n"
    )
    facts = parse_message(raw, settings)
    assert "Buy now & save" in facts.html_text
    assert "hidden" not in facts.html_text
    by_host = {u.host: u for u in facts.urls}
    assert by_host["www.shop.example.co.uk"].domain == "example.co.uk"
    assert by_host["www.shop.example.co.uk"].source == "html:href"
    assert by_host["img.cdn.example.net"].domain == "example.net"
    assert by_host["198.51.100.7"].domain is None
    assert by_host["198.51.100.7"].source == "html:form"


def test_charsets_and_encoded_words(settings: Settings) -> None:
    raw = (
        (
            b"From: =?iso-8859-1?q?J=F6rg?= <j@example.de>\nSubject: =?utf-8?b?w6TDtsO8?= ok\n"
            b"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=XX\n\n--XX\n"
            b"Content-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: base64\n\n"
        )
        + __import__("base64").b64encode("Привет".encode("koi8-r"))
        + (b"\n--XX\nContent-Type: text/plain; charset=x-no-such-charset\n\nhello\n--XX--\n")
    )
    facts = parse_message(raw, settings)
    assert facts.header("From") == "Jörg <j@example.de>"
    assert facts.subject == "äöü ok"
    assert "Привет" in facts.text
    assert ("CHARSET_UNKNOWN", "x-no-such-charset") in facts.defects


def test_attachments_listed_with_name_type_size(settings: Settings) -> None:
    raw = (
        b"From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
        b"Content-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/octet-stream\n"
        b'Content-Disposition: attachment; filename="invoice.pdf.exe"\nContent-Transfer-Encoding: base64\n\n'
        b"TVqQAAMAAAAEAAAA\n--b--\n"
    )
    facts = parse_message(raw, settings)
    assert len(facts.attachments) == 1
    att = facts.attachments[0]
    assert (att.filename, att.content_type, att.size) == ("invoice.pdf.exe", "application/octet-stream", 12)
    assert facts.text.strip() == "see attached"


def test_envelope_is_kept(settings: Settings) -> None:
    env = Envelope(mail_from="a@example.com", rcpt_to=("b@example.org",), client_ip="192.0.2.1", sasl_username="u1")
    facts = parse_message(b"Subject: x\n\nbody\n", settings, env)
    assert facts.envelope.sasl_username == "u1"


def test_facts_are_immutable(settings: Settings) -> None:
    facts = parse_message(b"Subject: x\n\nbody\n", settings)
    with pytest.raises(AttributeError):
        facts.text = "changed"  # type: ignore[misc]
