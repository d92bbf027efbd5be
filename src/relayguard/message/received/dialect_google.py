"""Google: Gmail's submission hops say ESMTPS, not ESMTPSA; SpamAssassin recognises them by the id."""

from __future__ import annotations

from relayguard.message.received.base import rx

# by mx.google.com with ESMTPS id 6sm1234567qwe.12.2011.01.02.03.04.05 ... (version=TLSv1 cipher=RC4-MD5)
GMAIL_SUBMISSION = rx(
    r" by mx\.google\.com with ESMTPS id [a-z0-9]{1,4}sm[0-9]{2,9}[a-z]{3}\.[0-9]{1,3}\.[0-9]{4}\."
    r"(?:[0-6][0-9]\.){4}[0-6][0-9]"
)
GMAIL_TLS = rx(r"\(version=([^ ]+) cipher=([^\)]+)\)")


def gmail_auth(s: str) -> str | None:
    if "mx.google.com" not in s:
        return None
    if GMAIL_SUBMISSION.search(s) is None:
        return None
    m = GMAIL_TLS.search(s)
    if m is None:
        return None
    return f"GMail - transport={m.group(1)} cipher={m.group(2)}"
