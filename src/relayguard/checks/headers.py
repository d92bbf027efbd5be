"""Header sanity: Date, Message-ID, From, To, Subject (RFC 5322's required and expected fields)."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence

from relayguard.checks.api import Hit, SymbolDef, SyncCheck
from relayguard.message.facts import MessageFacts

_MID_RE = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")
_ADDR_RE = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")
# Date headers further than this from the delivery time are suspicious (spamware forges them).
FUTURE_SLACK = 2 * 86400
PAST_SLACK = 30 * 86400


def _delivery_time(facts: MessageFacts) -> float | None:
    """When our side received it: the newest Received header's date stamp, if any."""
    for h in facts.headers:
        if h.name.lower() == "received" and ";" in h.raw:
            t = email.utils.parsedate_tz(h.raw.rsplit(";", 1)[1].strip())
            if t is not None:
                try:
                    return float(email.utils.mktime_tz(t))
                except (OverflowError, ValueError):
                    return None
    return None


class HeaderCheck(SyncCheck):
    name = "HEADERS"
    symbols = (
        SymbolDef("DATE_MISSING", "headers", "No Date header"),
        SymbolDef("DATE_INVALID", "headers", "Date header does not parse as an RFC 5322 date"),
        SymbolDef("DATE_IN_FUTURE", "headers", "Date is more than 2 days after delivery"),
        SymbolDef("DATE_IN_PAST", "headers", "Date is more than 30 days before delivery"),
        SymbolDef("MID_MISSING", "headers", "No Message-ID header"),
        SymbolDef("MID_INVALID", "headers", "Message-ID is not <local@domain>"),
        SymbolDef("FROM_MISSING", "headers", "No From header"),
        SymbolDef("FROM_INVALID", "headers", "From header holds no address"),
        SymbolDef("TO_MISSING", "headers", "No To, Cc or Bcc header"),
        SymbolDef("SUBJECT_MISSING", "headers", "No Subject header"),
        SymbolDef("SUBJ_ALL_CAPS", "headers", "Subject is all capitals"),
        SymbolDef("FORGED_OUTLOOK_MID", "headers", "Outlook X-Mailer with a Message-ID Outlook never makes"),
    )

    def evaluate(self, facts: MessageFacts) -> Sequence[Hit]:
        hits: list[Hit] = []
        date = facts.header("Date")
        if date is None:
            hits.append(Hit("DATE_MISSING"))
        else:
            parsed = email.utils.parsedate_tz(date)
            if parsed is None:
                hits.append(Hit("DATE_INVALID", (date[:60],)))
            else:
                delivered = _delivery_time(facts)
                try:
                    sent = float(email.utils.mktime_tz(parsed))
                except (OverflowError, ValueError):
                    sent = None
                if sent is None:
                    hits.append(Hit("DATE_INVALID", (date[:60],)))
                elif delivered is not None:
                    if sent - delivered > FUTURE_SLACK:
                        hits.append(Hit("DATE_IN_FUTURE", (f"{(sent - delivered) / 3600:.0f}h",)))
                    elif delivered - sent > PAST_SLACK:
                        hits.append(Hit("DATE_IN_PAST", (f"{(delivered - sent) / 86400:.0f}d",)))
        mid = facts.header("Message-ID")
        if mid is None:
            hits.append(Hit("MID_MISSING"))
        elif not _MID_RE.match(mid.strip()):
            hits.append(Hit("MID_INVALID", (mid.strip()[:80],)))
        frm = facts.header("From")
        if frm is None:
            hits.append(Hit("FROM_MISSING"))
        elif not _ADDR_RE.search(frm):
            hits.append(Hit("FROM_INVALID", (frm[:80],)))
        if not any(facts.has_header(n) for n in ("To", "Cc", "Bcc", "Resent-To", "Apparently-To")):
            hits.append(Hit("TO_MISSING"))
        subject = facts.header("Subject")
        if subject is None:
            hits.append(Hit("SUBJECT_MISSING"))
        else:
            letters = [c for c in subject if c.isalpha()]
            if len(letters) >= 10 and all(c.isupper() for c in letters):
                hits.append(Hit("SUBJ_ALL_CAPS", (subject[:60],)))
        mailer = facts.header("X-Mailer") or ""
        if mid and "Microsoft Outlook" in mailer and not re.match(r"^<[0-9A-Fa-f$.]+@", mid.strip()):
            hits.append(Hit("FORGED_OUTLOOK_MID", (mid.strip()[:60],)))
        return hits
