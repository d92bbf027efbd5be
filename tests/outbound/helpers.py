"""Small builders for outbound tests: facts without parsing, so tests state exactly what they feed."""

from __future__ import annotations

from relayguard.message.facts import Envelope, Header, MessageFacts, Url
from relayguard.message.relay import RelayChain


def facts(
    body: str = "hello there, this is a perfectly ordinary message about lunch on friday at noon",
    *,
    sasl: str | None = None,
    ip: str | None = "192.0.2.10",
    rcpt: tuple[str, ...] = ("bob@example.org",),
    mail_from: str = "alice@example.net",
    from_hdr: str = "Alice <alice@example.net>",
    helo: str = "pc.example.net",
    subject: str = "lunch",
    urls: tuple[str, ...] = (),
) -> MessageFacts:
    headers = (Header("From", from_hdr, from_hdr), Header("Subject", subject, subject))
    us = tuple(Url(f"http://{d}/x", d, d, "text") for d in urls)
    raw = f"From: {from_hdr}\nSubject: {subject}\n\n{body}\n".encode()
    return MessageFacts(
        raw=raw,
        size=len(raw),
        headers=headers,
        text=body,
        html="",
        html_text="",
        urls=us,
        attachments=(),
        chain=RelayChain(),
        envelope=Envelope(mail_from=mail_from, rcpt_to=rcpt, helo=helo, client_ip=ip, sasl_username=sasl),
    )


from pathlib import Path  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "outbound"
