"""CommuniGate Pro: `from [IP] (account user HELO x) by HOST (CommuniGate Pro SMTP 5.1)`."""

from __future__ import annotations

import re

from relayguard.message.received.base import Fields, Outcome, Rule, rx

# from [192.168.1.104] (account nazgul HELO [192.168.1.104]) by somewhere.com (CommuniGate Pro SMTP 3.5.7)
ACCOUNT = Rule(
    "communigate",
    rx(r"^\[(?P<ip>{IP})\] \((?:account \S+ )?(?:HELO|EHLO) (?P<helo>\S*)\) by (?P<by>\S+) \("),
    marker="LO ",
)


def _helo_is_rdns(m: re.Match[str], f: Fields) -> Outcome:
    f.helo = f.rdns
    return Outcome.HOP


# from host.example.com ([192.0.2.1] verified) by mail.example.net (CommuniGate Pro SMTP 5.1.13)
VERIFIED = Rule(
    "communigate",
    rx(r"^(?P<rdns>\S+) \(\[(?P<ip>{IP})\] verified\) by (?P<by>\S+) \("),
    marker=" (CommuniGate Pro",
    post=_helo_is_rdns,
    looked_up_dns=True,
)

# `(account user)` with CommuniGate's own protocols means an authenticated client (bug 6495, 7277).
_AUTH = rx(r"CommuniGate Pro (HTTP|SMTP|XIMSS|IMAP)")


def auth(s: str) -> str | None:
    if " (account " not in s or "CommuniGate Pro" not in s:
        return None
    return "Communigate" if _AUTH.search(s) else None
