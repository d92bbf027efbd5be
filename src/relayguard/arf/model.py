"""One feedback report (RFC 5965 ARF, RFC 6591 authentication-failure fields), as immutable data.

Both directions use it: `build` writes one, `parse` reads one. Field values are stored *unfolded*
(RFC 5322 unfolding: the line break before continuation whitespace removed, the whitespace kept), so
a report written and read back compares equal however the writer folded its lines. Multi-valued
fields (Original-Rcpt-To, Reported-Domain, Reported-URI, Authentication-Results, ...) are tuples in
the order they appeared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# RFC 5965 section 7.3 registry, RFC 6591 (auth-failure) and the legacy "opt-out" of early drafts that
# real loops still send. Anything else parses as written, lowercased.
FEEDBACK_TYPES = ("abuse", "fraud", "virus", "other", "not-spam", "auth-failure", "opt-out")


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """The RFC 6591 fields of an authentication-failure report."""

    auth_failure: str | None = None  # adsp, bodyhash, revoked, signature, spf, dmarc
    delivery_result: str | None = None  # delivered, spam, policy, reject, other
    identity_alignment: str | None = None  # RFC 7489: none, spf, dkim, "dkim, spf"
    dkim_domain: str | None = None
    dkim_identity: str | None = None
    dkim_selector: str | None = None
    dkim_canonicalized_header: str | None = None  # base64 of the canonicalized header the verifier hashed
    dkim_canonicalized_body: str | None = None
    dkim_selector_dns: str | None = None
    spf_dns: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return self == AuthFailure()


@dataclass(frozen=True, slots=True)
class OriginalMessage:
    """What the report carries of the message complained about."""

    kind: str  # "message" (message/rfc822), "headers" (text/rfc822-headers), "none"
    data: bytes  # the message or the header block as carried (LF line endings after parsing)

    @property
    def headers_only(self) -> bool:
        return self.kind == "headers"


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    feedback_type: str = "abuse"
    user_agent: str | None = None
    version: str | None = "1"
    source_ip: str | None = None  # a valid address only; the raw text is in `extra` when it was not
    source_port: int | None = None
    original_mail_from: str | None = None  # as written, angle brackets kept (RFC 5965 allows both)
    original_rcpt_to: tuple[str, ...] = ()
    arrival_date: str | None = None  # as written (Arrival-Date, or the legacy Received-Date)
    arrival_time: float | None = None  # the same as Unix time, None when unparseable
    reporting_mta: str | None = None  # the name, without the "dns;" type
    reported_domain: tuple[str, ...] = ()
    reported_uri: tuple[str, ...] = ()
    incidents: int = 1
    authentication_results: tuple[str, ...] = ()
    original_envelope_id: str | None = None
    removal_recipient: tuple[str, ...] = ()
    auth: AuthFailure = field(default_factory=AuthFailure)
    # Fields we do not model, in order (name as written, unfolded value): X- fields, Abuse-Type,
    # Redacted-Address, Subscription-Link, ... kept so nothing a reporter said is lost.
    extra: tuple[tuple[str, str], ...] = ()
    original: OriginalMessage | None = None
    human_text: str | None = None  # the first, human-readable part


@dataclass(frozen=True, slots=True)
class ReportEnvelope:
    """Facts about the report message itself (not the message it complains about)."""

    reporter: str | None = None  # the report's From address, lowercased
    subject: str | None = None
    message_id: str | None = None
    date: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedReport:
    """A parse: the report, its envelope, and how much of it was found."""

    report: FeedbackReport
    envelope: ReportEnvelope
    has_feedback_part: bool  # False: fields were inferred (Hotmail-style loop, bare forward)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Complaint:
    """A complaint as kept: what the report said, where it came from, and whom it was traced to."""

    key: str  # the duplicate key: a digest of the reporter and the reported message
    received_at: float
    status: str  # "matched", "unmatched", "unparseable"
    feedback_type: str = "abuse"
    reporter: str = ""  # the report's From address (or Reporting-MTA / User-Agent when absent)
    user_agent: str = ""
    source_ip: str = ""
    arrival: float | None = None
    message_id: str = ""  # of the reported message
    customer: str = ""
    relay: str = ""
    method: str = ""  # how it was traced: message-id, queue-id, received, source-ip, none
    detail: str = ""
    warnings: tuple[str, ...] = ()
    source: str = ""  # "smtp", "lmtp", a file path
    duplicates: int = 0  # further copies of the same complaint received (counted once)
    id: int | None = None

    @property
    def summary(self) -> str:
        """One line for an abuse desk: what, from whom, traced how."""
        what = f"{self.feedback_type or 'unreadable'} report from {self.reporter or '?'}"
        if self.customer:
            return f"{what}, traced by {self.method} ({self.detail})"
        return f"{what}, not traced: {self.detail}"

    def to_dict(self) -> dict[str, object]:
        return {
            "summary": self.summary,
            "id": self.id,
            "key": self.key,
            "received_at": self.received_at,
            "status": self.status,
            "feedback_type": self.feedback_type,
            "reporter": self.reporter,
            "user_agent": self.user_agent,
            "source_ip": self.source_ip,
            "arrival": self.arrival,
            "message_id": self.message_id,
            "customer": self.customer,
            "relay": self.relay,
            "method": self.method,
            "detail": self.detail,
            "warnings": list(self.warnings),
            "source": self.source,
            "duplicates": self.duplicates,
        }
