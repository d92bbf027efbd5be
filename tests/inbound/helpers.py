"""Build test messages with real Received chains, settings that point at the loopback servers, and a
pipeline of the inbound checks."""

from __future__ import annotations

from collections.abc import Sequence

from relayguard.config import load_config_text
from relayguard.config.schema import Settings
from relayguard.inbound import inbound_checks
from relayguard.inbound.resolver import Resolver
from relayguard.message.facts import Envelope
from relayguard.message.parse import parse_message
from relayguard.pipeline import Pipeline
from relayguard.scoring.verdict import Verdict

DATE = "Fri, 27 Nov 2026 10:00:00 +0000"


def hop(helo: str, rdns: str, ip: str, by: str, qid: str, *, auth: str | None = None, proto: str = "ESMTP") -> str:
    """A Postfix Received line; with `auth`, Postfix's `(Authenticated sender: ...)` and ESMTPSA."""
    if auth:
        return (
            f"from {helo} ({rdns} [{ip}]) (Authenticated sender: {auth}) by {by} (Postfix) "
            f"with ESMTPSA id {qid}; {DATE}"
        )
    return f"from {helo} ({rdns} [{ip}]) by {by} (Postfix) with {proto} id {qid}; {DATE}"


def message(
    received: Sequence[str],
    *,
    sender: str = "alice@sender.example",
    body: str = "Hello,\nsee you tomorrow.\n",
    html: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    lines = [f"Received: {r}" for r in received]
    lines += [
        f"From: Alice <{sender}>",
        "To: bob@mx.isp.example",
        "Subject: hello",
        f"Date: {DATE}",
        "Message-ID: <1@sender.example>",
    ]
    lines += [f"{k}: {v}" for k, v in headers]
    if html is not None:
        lines += ["MIME-Version: 1.0", "Content-Type: text/html; charset=utf-8", "", html]
    else:
        lines += ["Content-Type: text/plain; charset=utf-8", "", body]
    return ("\r\n".join(lines) + "\r\n").encode()


BASE = """
[dns]
nameservers = ["{ns}"]
timeout = {timeout}
[trust]
trusted_networks = ["192.0.2.0/24"]
msa_networks = ["192.0.2.30"]
[pipeline]
budget = 30.0
check_timeout = 20.0
"""


def settings(ns: str, inbound: str, *, timeout: float = 2.0) -> Settings:
    return load_config_text(BASE.format(ns=ns, timeout=timeout) + inbound)


def zen_and_friends(extra: str = "") -> str:
    """The shipped zen, DBL and AuthBL blocks, pointed at the test zones; `extra`: more [inbound] keys."""
    return f"""
[inbound]
use = ["spamhaus_zen", "spamhaus_dbl", "spamhaus_authbl"]
{extra}
[inbound.override.spamhaus_zen]
zone = "zen.rbl.test"
[inbound.override.spamhaus_dbl]
zone = "dbl.rbl.test"
monitor_listed = "test"
[inbound.override.spamhaus_authbl]
zone = "authbl.rbl.test"
"""


class Scanner:
    def __init__(self, s: Settings, resolver: Resolver | None = None) -> None:
        self.settings = s
        self.resolver = resolver or Resolver(s.dns)
        self.pipeline = Pipeline(s, inbound_checks(s, self.resolver))

    async def scan(self, raw: bytes, envelope: Envelope | None = None) -> Verdict:
        facts = parse_message(raw, self.settings, envelope)
        return await self.pipeline.check(facts)


def options(v: Verdict, symbol: str) -> tuple[str, ...]:
    return v.symbols[symbol].options if symbol in v.symbols else ()


def all_options(v: Verdict) -> list[str]:
    return [o for s in v.symbols.values() for o in s.options]
