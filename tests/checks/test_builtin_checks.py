"""The built-in structure checks on real corpus mail and on crafted variants of it."""

from __future__ import annotations

from pathlib import Path

from relayguard.checks.headers import HeaderCheck
from relayguard.checks.mime import MimeCheck
from relayguard.checks.received import ReceivedCheck
from relayguard.config import Settings, load_config_text
from relayguard.message.parse import parse_message

REAL_HAM = "ham/easy_ham.00001.7c53336b37003a9286aba55d2945844c"


def names(hits: object) -> set[str]:
    return {h.symbol for h in hits}  # type: ignore[attr-defined]


def test_real_ham_has_clean_headers(settings: Settings, samples: Path) -> None:
    facts = parse_message((samples / REAL_HAM).read_bytes(), settings)
    assert names(HeaderCheck().evaluate(facts)) == set()


def _without(raw: bytes, header: bytes) -> bytes:
    head, sep, body = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    out: list[bytes] = []
    skipping = False
    for line in lines:
        if line.lower().startswith(header.lower() + b":"):
            skipping = True
            continue
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        skipping = False
        out.append(line)
    return b"\n".join(out) + sep + body


def test_missing_date_and_message_id_on_real_mail(settings: Settings, samples: Path) -> None:
    raw = (samples / REAL_HAM).read_bytes()
    raw = _without(_without(raw, b"Date"), b"Message-Id")
    hits = names(HeaderCheck().evaluate(parse_message(raw, settings)))
    assert {"DATE_MISSING", "MID_MISSING"} <= hits


def test_malformed_date_and_message_id(settings: Settings, samples: Path) -> None:
    raw = (samples / REAL_HAM).read_bytes()
    raw = _without(_without(raw, b"Date"), b"Message-Id")
    raw = raw.replace(b"\n\n", b"\nDate: yesterday-ish\nMessage-ID: no-angle-brackets\n\n", 1)
    hits = HeaderCheck().evaluate(parse_message(raw, settings))
    by = {h.symbol: h for h in hits}
    assert "DATE_INVALID" in by and by["DATE_INVALID"].options == ("yesterday-ish",)
    assert "MID_INVALID" in by


def test_date_far_in_future_of_delivery(settings: Settings) -> None:
    raw = (
        b"Received: from a.example.net (a.example.net [198.51.100.2]) by mx.example.org (Postfix) with ESMTP id 1;"
        b" Mon, 5 Aug 2002 10:00:00 +0000\nDate: Mon, 5 Aug 2003 10:00:00 +0000\nSubject: x\n\nbody\n"
    )
    assert "DATE_IN_FUTURE" in names(HeaderCheck().evaluate(parse_message(raw, settings)))


def _relayed(helo: str, ip: str = "198.51.100.23", rdns: str = "unknown") -> bytes:
    return (
        f"Received: from {helo} ({rdns} [{ip}]) by mx.example.org (Postfix) with ESMTP id 4AB12;"
        " Mon, 5 Aug 2002 10:00:00 +0000\nFrom: a@example.net\nSubject: x\n\nbody\n"
    ).encode()


def test_helo_ip_literal_on_last_external(settings: Settings) -> None:
    hits = ReceivedCheck().evaluate(parse_message(_relayed("[198.51.100.23]"), settings))
    assert "HELO_IP_LITERAL" in names(hits)
    assert "HELO_MISMATCH_IP" not in names(hits)
    opts = next(h.options for h in hits if h.symbol == "HELO_IP_LITERAL")
    assert "198.51.100.23:lastexternal" in opts


def test_helo_literal_of_another_address(settings: Settings) -> None:
    hits = names(ReceivedCheck().evaluate(parse_message(_relayed("[10.9.8.7]"), settings)))
    assert {"HELO_IP_LITERAL", "HELO_MISMATCH_IP"} <= hits


def test_helo_not_fqdn_and_no_rdns(settings: Settings) -> None:
    hits = names(ReceivedCheck().evaluate(parse_message(_relayed("bobs-pc"), settings)))
    assert {"HELO_NOT_FQDN", "RDNS_NONE"} <= hits


def test_good_helo_with_rdns_is_clean(settings: Settings) -> None:
    raw = _relayed("mail.example.net", rdns="mail.example.net")
    hits = names(ReceivedCheck().evaluate(parse_message(raw, settings)))
    assert not hits & {"HELO_NOT_FQDN", "HELO_IP_LITERAL", "RDNS_NONE"}


def test_no_received_at_all(settings: Settings) -> None:
    assert names(ReceivedCheck().evaluate(parse_message(b"Subject: x\n\nhi\n", settings))) == {"RCVD_NONE"}


def test_forged_trusted_receiver_below_untrusted_hop() -> None:
    """Spamware pastes a fake line claiming our own MX received the message further down the chain."""
    settings = load_config_text('[trust]\ntrusted_networks = ["192.0.2.0/24"]\n')
    raw = (
        b"Received: from out.example.org (out.example.org [192.0.2.5]) by mx.example.org (Postfix)"
        b" with ESMTP id A1; Mon, 5 Aug 2002 10:00:00 +0000\n"
        b"Received: from helo.example (unknown [203.0.113.5]) by out.example.org (Postfix) with ESMTP id A0;"
        b" Mon, 5 Aug 2002 09:59:00 +0000\n"
        b"Received: from fake (fake.example.net [198.51.100.77]) by mx.example.org (Postfix) with ESMTP id Z9;"
        b" Mon, 5 Aug 2002 09:59:30 +0000\nFrom: a@example.net\n\nbody\n"
    )
    facts = parse_message(raw, settings)
    assert facts.chain.origin_ip == "203.0.113.5"
    hits = ReceivedCheck().evaluate(facts)
    forged = [h for h in hits if h.symbol == "RCVD_FORGED"]
    assert forged and "mx.example.org" in forged[0].options[0]
    # The same chain without the pasted line is not forged.
    clean = raw.replace(raw[raw.index(b"Received: from fake") : raw.index(b"From: a@")], b"")
    assert "RCVD_FORGED" not in names(ReceivedCheck().evaluate(parse_message(clean, settings)))


def test_html_only_and_executables_on_real_spam(settings: Settings, samples: Path) -> None:
    html_only = 0
    for f in sorted((samples / "spam").iterdir()):
        if "HTML_ONLY" in names(MimeCheck().evaluate(parse_message(f.read_bytes(), settings))):
            html_only += 1
    assert html_only >= 20  # 2002 spam is mostly HTML-only


def test_executable_with_double_extension(settings: Settings) -> None:
    raw = (
        b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\n"
        b'Content-Type: application/octet-stream; name="scan.pdf.scr"\n\nxx\n--b\n'
        b'Content-Type: application/zip; name="a.zip"\n\nPK\n--b--\n'
    )
    hits = names(MimeCheck().evaluate(parse_message(raw, settings)))
    assert {"EXECUTABLE_ATTACHMENT", "DOUBLE_EXTENSION", "ARCHIVE_IN_MESSAGE"} <= hits
