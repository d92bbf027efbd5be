"""Postfix: `from HELO (RDNS [IP]) by HOST (Postfix) with PROTO id QUEUEID`."""

from __future__ import annotations

import re

from relayguard.message.received.base import Fields, Outcome, Rule, rx


def _unknown_rdns(m: re.Match[str], f: Fields) -> Outcome:
    # Postfix writes `unknown` when the client has no (or no confirmed) reverse DNS name.
    if f.rdns == "unknown":
        f.rdns = ""
    return Outcome.HOP


MARKER = " (Postfix) with"
# from localhost (unknown [127.0.0.1]) by cabbage.jmason.org (Postfix) with ESMTP id A96E18BD97
STANDARD = Rule(
    "postfix",
    rx(r"^(?P<helo>\S+) \((?P<rdns>\S+) \[(?P<ip>{IP})\]\) by (?P<by>\S+) "),
    post=_unknown_rdns,
    looked_up_dns=True,
)
# from 207.8.214.3 (unknown[211.94.164.65]) by puzzle.pobox.com (Postfix) with SMTP id 9029AFB732
NO_SPACE = Rule(
    "postfix",
    rx(r"^(?P<helo>\S+) \((?P<rdns>\S+)\[(?P<ip>{IP})\]\) by (?P<by>\S+) "),
    post=_unknown_rdns,
    looked_up_dns=True,
)
RULES = (STANDARD, NO_SPACE)

# Postfix 2.3+ with smtpd_sasl_authenticated_header: `(Authenticated sender: user) by host (Postfix)`.
# The word in parentheses is mail_name, Postfix unless renamed (SpamAssassin bug 5646).
AUTH_SENDER = rx(r"\) \(Authenticated sender: \S+\) by \S+ \(([^\)]+)\) with ")


def auth(s: str) -> str | None:
    if "(Authenticated sender: " not in s:
        return None
    m = AUTH_SENDER.search(s)
    if m is None:
        return None
    name = m.group(1)
    return name if name == "Postfix" else f"Postfix ({name})"
