"""Courier: `from HELO (RDNS [IP]) (AUTH: LOGIN user) by HOST with ESMTPA; ...`."""

from __future__ import annotations

from relayguard.message.received.base import Outcome, Rule, rx

# Courier 0.47 and others put the SASL mechanism in an `(AUTH: ...)` comment.
_AUTH = rx(r"^from .*?(?:\]\)|\)\]) \(AUTH: (LOGIN|PLAIN|DIGEST-MD5|CRAM-MD5) \S+(?:, .*?)?\) by ")


def auth(s: str) -> str | None:
    if "(AUTH: " not in s:
        return None
    m = _AUTH.search(s)
    return m.group(1) if m else None


# from (AUTH: e40a9cea) by vqx.net with esmtp (courier-0.40): an authenticated local submission
# with no network address: nothing to use.
AUTH_ONLY = Rule("courier", rx(r"^\(AUTH: \S+\) by \S+ with "), marker="(AUTH: ", outcome=Outcome.SKIP)
