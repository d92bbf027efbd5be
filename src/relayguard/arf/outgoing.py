"""Reports out: from an incident's messages to RFC 5965 reports, delivered by SMTP or to a folder.

An incident (issue 8) records evidence events (Message-ID, queue id, envelope sender and recipients,
subject, maybe a redacted body), not whole messages. When the message itself is at hand (`--message
FILE`, or a caller that kept it) the report carries it as message/rfc822; otherwise it carries the
header block rebuilt from the evidence as text/rfc822-headers, and Source-IP comes from the decision
log.

The automatic mode (`[arf] auto = "opened" | "contained"`): `AutoReporter.poll()` looks at open
incidents and reports each one once, when it is open ("opened") or when its customer is contained
(held, throttled or blocked: "contained"). `relayguard arf serve` polls every minute; containment may
also call `auto_report(incident, moment, ...)` directly.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relayguard.arf.build import Redaction, build_report
from relayguard.arf.model import FeedbackReport
from relayguard.arf.parse import header_str, parse_headers, split_head
from relayguard.arf.ports import DecisionLookup
from relayguard.arf.send import Delivery, send_smtp, write_folder
from relayguard.arf.settings import ArfSettings
from relayguard.arf.store import ComplaintStore

log = logging.getLogger("relayguard.arf")


@dataclass(frozen=True, slots=True)
class ReportedMessage:
    """One message to report, with what our relay knew about it."""

    raw: bytes | None = None  # the whole message, when kept
    headers: bytes | None = None  # else a header block
    client_ip: str = ""
    mail_from: str = ""
    rcpt_to: tuple[str, ...] = ()
    arrival: float | None = None
    relay: str = ""
    queue_id: str = ""
    message_id: str = ""
    urls: tuple[str, ...] = ()


def _domain(addr: str | None) -> str | None:
    if not addr:
        return None
    a = email.utils.parseaddr(addr)[1] or addr.strip("<> ")
    return a.rpartition("@")[2].lower() or None if "@" in a else None


def feedback_for(msg: ReportedMessage, settings: ArfSettings) -> FeedbackReport:
    head = None
    if msg.raw is not None:
        head = parse_headers(split_head(msg.raw)[0])
    elif msg.headers is not None:
        head = parse_headers(msg.headers)
    domains: list[str] = []
    from_domain = _domain(header_str(head, "From")) if head is not None else None
    for d in (from_domain, _domain(msg.mail_from)):
        if d and d not in domains:
            domains.append(d)
    return FeedbackReport(
        feedback_type="abuse",
        user_agent=settings.user_agent,
        version="1",
        source_ip=msg.client_ip or None,
        original_mail_from=f"<{msg.mail_from.strip('<>')}>" if msg.mail_from else None,
        original_rcpt_to=tuple(f"<{r.strip('<>')}>" for r in msg.rcpt_to),
        arrival_date=email.utils.formatdate(msg.arrival) if msg.arrival is not None else None,
        arrival_time=float(int(msg.arrival)) if msg.arrival is not None else None,
        reporting_mta=msg.relay or None,
        original_envelope_id=msg.queue_id or None,
        reported_domain=tuple(domains),
        reported_uri=tuple(dict.fromkeys(msg.urls))[:20],
    )


def reports_for(
    messages: Sequence[ReportedMessage],
    settings: ArfSettings,
    to_addrs: Sequence[str],
    now: float | None = None,
) -> list[bytes]:
    red = Redaction(settings.redact_recipients, settings.redact_body, settings.redaction_key.encode())
    out = []
    for msg in list(messages)[: settings.max_messages]:
        fb = feedback_for(msg, settings)
        original = msg.raw if msg.raw is not None else msg.headers
        out.append(
            build_report(
                fb,
                from_addr=settings.report_from,
                to_addrs=to_addrs,
                original=original,
                headers_only=settings.original == "headers" or msg.raw is None,
                redaction=red,
                date=now,
            )
        )
    return out


def messages_from_incident(incident: Any, decisions: DecisionLookup | None = None) -> list[ReportedMessage]:
    """Evidence events of a containment Incident (duck-typed) as ReportedMessages, oldest first."""
    out: list[ReportedMessage] = []
    events = sorted((e for e in getattr(incident, "events", []) if e.kind == "evidence"), key=lambda e: e.t)
    for e in events:
        data = e.data
        mid = str(data.get("message_id") or "")
        client_ip = ""
        relay = str(getattr(e, "relay", "") or "")
        if decisions is not None and mid:
            traces = list(decisions.by_message_id(mid))
            if traces:
                client_ip = traces[0].client_ip
                relay = relay or traces[0].relay
        lines = []
        if mid:
            lines.append(f"Message-ID: <{mid}>")
        if data.get("mail_from"):
            lines.append(f"Return-Path: <{str(data['mail_from']).strip('<>')}>")
        if data.get("subject"):
            lines.append(f"Subject: {data['subject']}")
        lines.append(f"Date: {email.utils.formatdate(e.t)}")
        lines.append("X-Relayguard-Note: header block rebuilt from the decision log; the message was not kept")
        rcpts = tuple(str(r) for r in data.get("rcpt_to") or [])
        out.append(
            ReportedMessage(
                headers=("\n".join(lines) + "\n").encode("utf-8", "replace"),
                client_ip=client_ip,
                mail_from=str(data.get("mail_from") or ""),
                rcpt_to=rcpts,
                arrival=float(e.t),
                relay=relay,
                queue_id=str(data.get("queue_id") or ""),
                message_id=mid,
            )
        )
    return out


def deliver(
    reports: Sequence[bytes], settings: ArfSettings, to_addrs: Sequence[str], folder: str | None = None
) -> list[Delivery]:
    """To a folder when one is given (or configured with no addresses), else by SMTP."""
    target = folder if folder is not None else (settings.folder if not to_addrs else None)
    if target:
        return write_folder(reports, target, to_addrs)
    if not to_addrs:
        raise ValueError("no abuse address to send to: set [arf] abuse_addresses or folder, or pass --to / --folder")
    return send_smtp(reports, settings.report_from, to_addrs, settings)


def auto_report(
    incident: Any,
    moment: str,
    settings: ArfSettings,
    decisions: DecisionLookup | None = None,
    now: float | None = None,
) -> list[Delivery]:
    """The automatic mode: report the incident's messages when `[arf] auto` equals `moment`
    ("opened" or "contained"). Failures are logged, never raised into the caller's hot path."""
    if settings.auto == "off" or settings.auto != moment:
        return []
    try:
        msgs = messages_from_incident(incident, decisions)
        if not msgs:
            return []
        reports = reports_for(msgs, settings, settings.abuse_addresses, now)
        return deliver(reports, settings, settings.abuse_addresses)
    except Exception:
        log.exception("automatic ARF report for incident %s failed", getattr(incident, "id", "?"))
        return []


CONTAINED_STATES = ("held", "throttled", "blocked")


class AutoReporter:
    """Report every incident once, automatically, at the configured moment."""

    def __init__(
        self,
        settings: ArfSettings,
        incidents: Any,
        store: ComplaintStore,
        decisions: DecisionLookup | None = None,
    ) -> None:
        self.settings = settings
        self.incidents = incidents  # a containment IncidentStore (list_incidents, get_incident)
        self.store = store
        self.decisions = decisions

    def _due(self, incident: Any) -> bool:
        if self.settings.auto == "opened":
            return True
        return self.settings.auto == "contained" and str(getattr(incident, "state", "")) in CONTAINED_STATES

    def poll(self, now: float) -> list[Delivery]:
        if self.settings.auto == "off":
            return []
        done: list[Delivery] = []
        for summary in self.incidents.list_incidents(status="open", limit=1000):
            key = str(summary.id)
            if not self._due(summary) or self.store.was_reported(key):
                continue
            inc = self.incidents.get_incident(summary.id)
            if inc is None:
                continue
            out = auto_report(inc, self.settings.auto, self.settings, self.decisions, now)
            if out and all(d.ok for d in out):
                self.store.mark_reported(key, now, len(out))
                done.extend(out)
        return done
