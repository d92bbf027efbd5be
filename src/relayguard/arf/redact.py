"""RFC 6590 redaction: replace recipients' local-parts with a keyed hash, keep their domains.

The same recipient always redacts to the same string under one key, so a peer can still count
complaints per recipient and correlate reports, but cannot read the address. Without a key the hash
is a plain digest of the local-part, which a dictionary can reverse: operators should set
`[arf] redaction_key`.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import re
from collections.abc import Iterable

from relayguard.arf.parse import parse_headers, split_head, unfold

_ADDR = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "X-Apparently-To", "X-HmXmrOriginalRecipient")
_FOR_CLAUSE = re.compile(r"\bfor\s+<?([^\s<>;]+@[^\s<>;]+)>?", re.IGNORECASE)
REDACTED_BODY = b"[body redacted by the reporter]\n"


def redact_address(addr: str, key: bytes) -> str:
    """`alice@example.net` -> `redacted-3f2a9c1b7e04@example.net` (angle brackets kept if present)."""
    a = addr.strip()
    wrapped = a.startswith("<") and a.endswith(">")
    inner = a[1:-1] if wrapped else a
    local, at, domain = inner.rpartition("@")
    if not at:
        local, domain = inner, ""
    digest = hmac.new(key, local.lower().encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:12]
    out = f"redacted-{digest}" + (f"@{domain}" if domain else "")
    return f"<{out}>" if wrapped else out


def recipients_in(message: bytes, envelope: Iterable[str] = ()) -> set[str]:
    """Recipient addresses a report must hide: the envelope's and those named in the headers."""
    found = {e.strip().strip("<>").lower() for e in envelope if "@" in e}
    head = parse_headers(split_head(message)[0])
    for name in _RECIPIENT_HEADERS:
        for value in head.get_all(name) or []:
            text = unfold(str(value))
            for _, addr in email.utils.getaddresses([text.split(";")[0]]):
                if "@" in addr:
                    found.add(addr.lower())
    for value in head.get_all("Received") or []:
        for m in _FOR_CLAUSE.finditer(unfold(str(value))):
            found.add(m.group(1).lower())
    return found


def redact_bytes(data: bytes, addresses: set[str], key: bytes) -> bytes:
    """Every occurrence of each address (case-insensitive) replaced by its redacted form."""
    if not addresses:
        return data
    wanted = {a.lower() for a in addresses}

    def sub(m: re.Match[bytes]) -> bytes:
        text = m.group(0).decode("utf-8", "replace")
        return redact_address(text, key).encode() if text.lower() in wanted else m.group(0)

    return re.sub(_ADDR.pattern.encode(), sub, data)


def redact_message(data: bytes, envelope: Iterable[str], key: bytes, *, recipients: bool, body: bool) -> bytes:
    head, rest = split_head(data)
    if recipients:
        addrs = recipients_in(data, envelope)
        head = redact_bytes(head, addrs, key)
        rest = redact_bytes(rest, addrs, key)
    if body:
        rest = REDACTED_BODY
    return head + b"\n" + rest
