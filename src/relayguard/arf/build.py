"""Write RFC 5965 reports: `multipart/report; report-type=feedback-report`, three parts.

1. text/plain, for a person;
2. message/feedback-report, the machine-readable fields (RFC 5965 section 3, RFC 6591 for
   auth-failure), one per line, folded at whitespace beyond 78 characters;
3. the original as message/rfc822, or only its header block as text/rfc822-headers, redacted as
   configured (RFC 6590).

Output uses CRLF line endings (it goes on the wire as it is). Field values are sanitised: a value can
never start a new field or a new part (line breaks in values become spaces).
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from relayguard.arf.model import FeedbackReport, OriginalMessage
from relayguard.arf.parse import normalise_newlines, parse_headers, split_head, unfold
from relayguard.arf.redact import redact_address, redact_message

FOLD_AT = 78


@dataclass(frozen=True, slots=True)
class Redaction:
    recipients: bool = True
    body: bool = False
    key: bytes = b""


def _clean(value: str) -> str:
    v = re.sub(r"[\r\n]+", " ", value)
    return "".join(c if c == "\t" or c >= " " else " " for c in v).strip()


def fold(name: str, value: str, width: int = FOLD_AT) -> str:
    """`Name: value`, folded before whitespace so each line stays within `width` where it can."""
    line = f"{name}: {_clean(value)}"
    if len(line) <= width:
        return line
    out: list[str] = []
    current = ""
    for word in re.split(r"(?<=\S)(?=[ \t])", line):
        if current and len(current) + len(word) > width:
            out.append(current)
            current = word
        else:
            current += word
    out.append(current)
    return "\r\n".join(out)


def feedback_fields(r: FeedbackReport) -> list[tuple[str, str]]:
    """The report's fields in RFC 5965 order (required first), as (name, value)."""
    f: list[tuple[str, str]] = [("Feedback-Type", r.feedback_type), ("User-Agent", r.user_agent or "relayguard")]
    f.append(("Version", r.version or "1"))
    if r.original_envelope_id:
        f.append(("Original-Envelope-Id", r.original_envelope_id))
    if r.original_mail_from is not None:
        f.append(("Original-Mail-From", r.original_mail_from))
    f += [("Original-Rcpt-To", v) for v in r.original_rcpt_to]
    if r.arrival_date:
        f.append(("Arrival-Date", r.arrival_date))
    elif r.arrival_time is not None:
        f.append(("Arrival-Date", email.utils.formatdate(r.arrival_time)))
    if r.reporting_mta:
        f.append(("Reporting-MTA", f"dns; {r.reporting_mta}"))
    if r.source_ip:
        f.append(("Source-IP", r.source_ip))
    if r.source_port is not None:
        f.append(("Source-Port", str(r.source_port)))
    if r.incidents != 1:
        f.append(("Incidents", str(r.incidents)))
    f += [("Authentication-Results", v) for v in r.authentication_results]
    f += [("Reported-Domain", v) for v in r.reported_domain]
    f += [("Reported-URI", v) for v in r.reported_uri]
    f += [("Removal-Recipient", v) for v in r.removal_recipient]
    a = r.auth
    for name, value in (
        ("Auth-Failure", a.auth_failure),
        ("Delivery-Result", a.delivery_result),
        ("Identity-Alignment", a.identity_alignment),
        ("DKIM-Domain", a.dkim_domain),
        ("DKIM-Identity", a.dkim_identity),
        ("DKIM-Selector", a.dkim_selector),
        ("DKIM-Canonicalized-Header", a.dkim_canonicalized_header),
        ("DKIM-Canonicalized-Body", a.dkim_canonicalized_body),
        ("DKIM-Selector-DNS", a.dkim_selector_dns),
    ):
        if value:
            f.append((name, value))
    f += [("SPF-DNS", v) for v in a.spf_dns]
    f += list(r.extra)
    return f


def human_text(r: FeedbackReport, subject: str | None) -> str:
    what = {
        "abuse": "an email abuse report",
        "auth-failure": "an authentication failure report",
        "fraud": "a fraud report",
        "virus": "a virus report",
        "not-spam": "a not-spam report",
    }.get(r.feedback_type, f"a {r.feedback_type} report")
    src = f" received from IP {r.source_ip}" if r.source_ip else ""
    when = ""
    if r.arrival_date or r.arrival_time is not None:
        when = f" on {r.arrival_date or email.utils.formatdate(r.arrival_time)}"
    lines = [f"This is {what} for an email message{src}{when}."]
    if subject:
        lines.append(f"Subject of the reported message: {_clean(subject)[:200]}")
    lines.append("The machine-readable report (RFC 5965) and the message follow.")
    return "\n".join(lines) + "\n"


def _crlf(data: bytes) -> bytes:
    return normalise_newlines(data).replace(b"\n", b"\r\n")


def _encode_header(value: str) -> str:
    v = _clean(value)
    if v.isascii():
        return v
    from email.header import Header

    return Header(v, "utf-8").encode()


def prepare_original(
    original: bytes, envelope_rcpts: Iterable[str], redaction: Redaction, headers_only: bool
) -> OriginalMessage:
    data = normalise_newlines(original)
    if redaction.recipients or redaction.body:
        data = redact_message(data, envelope_rcpts, redaction.key, recipients=redaction.recipients, body=redaction.body)
    if headers_only:
        head = split_head(data)[0]
        return OriginalMessage("headers", head if head.endswith(b"\n") else head + b"\n")
    return OriginalMessage("message", data if data.endswith(b"\n") else data + b"\n")


def redact_report(r: FeedbackReport, redaction: Redaction) -> FeedbackReport:
    if not redaction.recipients:
        return r
    from dataclasses import replace

    return replace(r, original_rcpt_to=tuple(redact_address(a, redaction.key) for a in r.original_rcpt_to))


def build_report(
    report: FeedbackReport,
    *,
    from_addr: str,
    to_addrs: Iterable[str],
    original: bytes | None = None,
    headers_only: bool = False,
    redaction: Redaction | None = None,
    date: float | None = None,
    message_id: str | None = None,
) -> bytes:
    """One complete report message (bytes, CRLF). `original` is the reported message as received."""
    red = redaction or Redaction()
    rcpts_env = list(report.original_rcpt_to)
    rep = redact_report(report, red)
    orig: OriginalMessage | None = report.original
    if original is not None:
        orig = prepare_original(original, rcpts_env, red, headers_only)
    subject = None
    if orig is not None and orig.data:
        head = parse_headers(split_head(orig.data)[0] if orig.kind == "message" else orig.data)
        s = head.get("Subject")
        subject = unfold(str(s)) if s is not None else None
    fields = "\r\n".join(fold(n, v) for n, v in feedback_fields(rep)) + "\r\n"
    text = rep.human_text if rep.human_text else human_text(rep, subject)
    text_b = _crlf(text.encode("utf-8"))
    fields_b = fields.encode("utf-8")
    orig_b = _crlf(orig.data) if orig is not None else b""

    seed = hashlib.sha256(fields_b + orig_b + text_b).hexdigest()
    n = 0
    boundary = f"=_relayguard_arf_{seed[:24]}"
    while any(boundary.encode() in part for part in (fields_b, orig_b, text_b)):
        n += 1
        boundary = f"=_relayguard_arf_{seed[:24]}_{n}"
    domain = from_addr.rpartition("@")[2] or "localhost"
    head_lines = [
        f"From: {_encode_header(from_addr)}",
        f"To: {_encode_header(', '.join(to_addrs))}",
        f"Subject: {_encode_header('FW: ' + subject if subject else 'Abuse report: ' + rep.feedback_type)}",
        f"Date: {email.utils.formatdate(date, localtime=False)}",
        f"Message-ID: {message_id or '<arf.' + seed[:32] + '@' + domain + '>'}",
        "MIME-Version: 1.0",
        "Auto-Submitted: auto-generated",
        f'Content-Type: multipart/report; report-type=feedback-report;\r\n\tboundary="{boundary}"',
    ]

    def cte(data: bytes) -> str:
        return "7bit" if data.isascii() else "8bit"

    b = boundary.encode()
    out = [("\r\n".join(head_lines) + "\r\n\r\nThis is an abuse report in the format of RFC 5965.\r\n").encode()]
    out.append(b"\r\n--" + b + b"\r\n")
    out.append(f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {cte(text_b)}\r\n\r\n".encode())
    out.append(text_b)
    out.append(b"\r\n--" + b + b"\r\n")
    out.append(f"Content-Type: message/feedback-report\r\nContent-Transfer-Encoding: {cte(fields_b)}\r\n\r\n".encode())
    out.append(fields_b)
    if orig is not None and orig.kind in ("message", "headers"):
        out.append(b"\r\n--" + b + b"\r\n")
        ctype = "message/rfc822" if orig.kind == "message" else "text/rfc822-headers"
        out.append(f"Content-Type: {ctype}\r\nContent-Disposition: inline\r\n".encode())
        out.append(f"Content-Transfer-Encoding: {cte(orig_b)}\r\n\r\n".encode())
        out.append(orig_b)
    out.append(b"\r\n--" + b + b"--\r\n")
    return b"".join(out)
