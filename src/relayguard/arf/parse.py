"""A tolerant ARF parser (RFC 5965, RFC 6591 / RFC 7489 failure reports, and what real loops send).

Real reports are often not what the RFC says: bare CR or CRLF line endings, a missing feedback part
(Hotmail's JMRP forwards only the message inside a multipart/mixed), legacy field names
(Received-Date for Arrival-Date), `Version: 0.1`, Source-IP followed by a comment, empty fields,
`text/rfc822-header` (singular), the report forwarded inside another message. The parser reads what it
can and says what it could not in `warnings`; a message that carries no report at all is an
`ArfParseError`. Nothing else ever escapes: hostile input gives a clear error or a partial result.

Memory is bounded: the input is cut at `max_bytes` before anything else, the top-level MIME split is
done here (not by the recursive stdlib parser) with a cap on parts and nesting, and fields are capped
in number and length. The stdlib parses only header blocks.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import ipaddress
import quopri
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from relayguard.arf.model import AuthFailure, FeedbackReport, OriginalMessage, ParsedReport, ReportEnvelope
from relayguard.core.errors import ParseError

MAX_BYTES = 10 * 1024 * 1024
MAX_PARTS = 100
MAX_DEPTH = 3  # a report forwarded inside a forward inside a forward; deeper is refused
MAX_FIELDS = 2000
MAX_FIELD_CHARS = 65536


class ArfParseError(ParseError):
    """The message carries no feedback report we could read."""


# ---------------------------------------------------------------------------------------------------
# Low-level pieces
# ---------------------------------------------------------------------------------------------------


def normalise_newlines(data: bytes) -> bytes:
    """CRLF and bare CR become LF: real reports come with all three (and mixtures)."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def unfold(value: str) -> str:
    """RFC 5322 unfolding: drop the line break before continuation whitespace, keep the whitespace."""
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", " ").strip()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def parse_fields(text: str, warnings: list[str] | None = None) -> list[tuple[str, str]]:
    """`Name: value` lines with folding; blank lines inside are tolerated; junk lines are skipped."""
    out: list[tuple[str, str]] = []
    name: str | None = None
    buf: list[str] = []
    skipped = 0

    def flush() -> None:
        if name is not None and len(out) < MAX_FIELDS:
            out.append((name, unfold("\n".join(buf))[:MAX_FIELD_CHARS]))

    for line in text.split("\n"):
        if line[:1] in (" ", "\t") and name is not None:
            if sum(len(b) for b in buf) < MAX_FIELD_CHARS:
                buf.append(line)
            continue
        if not line.strip():
            continue
        flush()
        n, sep, v = line.partition(":")
        if not sep or not n.strip() or any(c.isspace() for c in n.strip()):
            name = None
            skipped += 1
            continue
        name, buf = n.strip(), [v]
    flush()
    if skipped and warnings is not None:
        warnings.append(f"{skipped} line(s) in the feedback part are not 'Name: value' and were skipped")
    if len(out) >= MAX_FIELDS and warnings is not None:
        warnings.append(f"more than {MAX_FIELDS} feedback fields; the rest were ignored")
    return out


def parse_headers(block: bytes) -> Message:
    """A header block through the stdlib (compat32 keeps values as written, folding included)."""
    return BytesHeaderParser(policy=compat32).parsebytes(block)


def header_str(msg: Message, name: str) -> str | None:
    v = msg.get(name)
    if v is None:
        return None
    return unfold(_clean(str(v)))


def _clean(s: str) -> str:
    # Non-ASCII header bytes come back as surrogate escapes; show them as UTF-8 (replacing junk).
    return s.encode("ascii", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Part:
    headers: Message
    header_bytes: bytes
    body: bytes  # raw, still transfer-encoded

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type().lower()

    def decoded(self) -> bytes:
        cte = (self.headers.get("Content-Transfer-Encoding") or "").strip().lower()
        if cte == "base64":
            try:
                return base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", self.body) + b"==", validate=False)
            except (binascii.Error, ValueError):
                return self.body
        if cte == "quoted-printable":
            return quopri.decodestring(self.body)
        return self.body


def split_head(data: bytes) -> tuple[bytes, bytes]:
    """Header block and body of a message with LF line endings."""
    if data.startswith(b"\n"):
        return b"", data[1:]
    i = data.find(b"\n\n")
    if i < 0:
        return data, b""
    return data[: i + 1], data[i + 2 :]


def as_part(data: bytes) -> Part:
    head, body = split_head(data)
    return Part(parse_headers(head), head, body)


def split_multipart(part: Part, warnings: list[str]) -> list[Part]:
    """The body parts of a multipart, by its boundary; tolerant of a missing close delimiter."""
    boundary = part.headers.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        warnings.append("multipart without a boundary parameter")
        return []
    delim = b"--" + boundary.encode("utf-8", "surrogateescape")
    lines = part.body.split(b"\n")
    parts: list[Part] = []
    current: list[bytes] | None = None
    closed = False
    for line in lines:
        stripped = line.rstrip(b" \t")
        if stripped.startswith(delim):
            rest = stripped[len(delim) :]
            if rest in (b"", b"--"):
                if current is not None:
                    parts.append(as_part(b"\n".join(current)))
                    if len(parts) >= MAX_PARTS:
                        warnings.append(f"more than {MAX_PARTS} parts; the rest were ignored")
                        return parts
                if rest == b"--":
                    closed = True
                    current = None
                    break
                current = []
                continue
        if current is not None:
            current.append(line)
    if current is not None:
        parts.append(as_part(b"\n".join(current)))
    if not closed and parts:
        warnings.append("multipart has no closing boundary (truncated?)")
    return parts


def parse_date(text: str | None, warnings: list[str], what: str) -> float | None:
    if not text:
        return None
    t = re.sub(r"\([^)]*\)\s*$", "", text).strip()
    try:
        tup = email.utils.parsedate_tz(t)
    except (TypeError, ValueError, IndexError, OverflowError):
        tup = None
    if tup is None:
        warnings.append(f"{what}: unparseable date {text[:60]!r}")
        return None
    if tup[9] is None:
        warnings.append(f"{what}: unknown time zone in {text[:60]!r}, read as UTC")
    try:
        return float(email.utils.mktime_tz(tup))
    except (OverflowError, ValueError):
        warnings.append(f"{what}: date out of range {text[:60]!r}")
        return None


_IP_IN_TEXT = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]|\(([0-9A-Fa-f:.]+)\)|\b(\d{1,3}(?:\.\d{1,3}){3})\b")


def parse_ip(text: str | None) -> str | None:
    """The address at the start of a Source-IP value ("192.0.2.1 (host)", "[192.0.2.1]", "IPv6:...")."""
    if not text:
        return None
    token = text.strip().split()[0] if text.strip() else ""
    token = token.strip("[]();,")
    if token.lower().startswith("ipv6:"):
        token = token[5:]
    try:
        return str(ipaddress.ip_address(token))
    except ValueError:
        return None


def first_ip(text: str) -> str | None:
    """The first literal address in free text (a Received from-clause, a subject line)."""
    for m in _IP_IN_TEXT.finditer(text):
        ip = parse_ip(next(g for g in m.groups() if g))
        if ip is not None:
            return ip
    return None


# ---------------------------------------------------------------------------------------------------
# Feedback fields -> FeedbackReport
# ---------------------------------------------------------------------------------------------------

_SINGLE = {
    "feedback-type": "feedback_type",
    "user-agent": "user_agent",
    "version": "version",
    "original-mail-from": "original_mail_from",
    "arrival-date": "arrival_date",
    "received-date": "arrival_date",  # the name in ARF drafts; AOL and Yahoo still send it
    "reporting-mta": "reporting_mta",
    "original-envelope-id": "original_envelope_id",
    "source-ip": "source_ip",
    "source-port": "source_port",
    "incidents": "incidents",
}
_MULTI = {
    "original-rcpt-to": "original_rcpt_to",
    "reported-domain": "reported_domain",
    "reported-uri": "reported_uri",
    "authentication-results": "authentication_results",
    "removal-recipient": "removal_recipient",
}
_AUTH = {
    "auth-failure": "auth_failure",
    "delivery-result": "delivery_result",
    "identity-alignment": "identity_alignment",
    "dkim-domain": "dkim_domain",
    "dkim-identity": "dkim_identity",
    "dkim-selector": "dkim_selector",
    "dkim-canonicalized-header": "dkim_canonicalized_header",
    "dkim-canonicalized-body": "dkim_canonicalized_body",
    "dkim-selector-dns": "dkim_selector_dns",
}


def report_from_fields(fields: list[tuple[str, str]], warnings: list[str]) -> FeedbackReport:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {k: [] for k in _MULTI.values()}
    auth: dict[str, str] = {}
    spf_dns: list[str] = []
    extra: list[tuple[str, str]] = []
    for name, value in fields:
        key = name.lower()
        if key in _SINGLE:
            attr = _SINGLE[key]
            if attr in single:
                if single[attr] != value:
                    warnings.append(f"{name} given more than once; the first value is used")
                continue
            single[attr] = value
        elif key in _MULTI:
            if value:
                multi[_MULTI[key]].append(value)
        elif key in _AUTH:
            auth.setdefault(_AUTH[key], value)
        elif key == "spf-dns":
            spf_dns.append(value)
        else:
            extra.append((name, value))

    ftype = (single.get("feedback_type") or "").strip().lower()
    if not ftype:
        warnings.append("no Feedback-Type; read as abuse")
        ftype = "abuse"
    src_raw = single.get("source_ip")
    source_ip = parse_ip(src_raw)
    if src_raw and source_ip is None:
        warnings.append(f"Source-IP {src_raw[:60]!r} is not an address")
        extra.append(("Source-IP", src_raw))
    port: int | None = None
    if single.get("source_port"):
        p = single["source_port"].strip()
        port = int(p) if p.isdigit() and int(p) < 65536 else None
        if port is None:
            warnings.append(f"Source-Port {p[:20]!r} is not a port")
    incidents = 1
    if single.get("incidents"):
        n = single["incidents"].strip()
        if n.isdigit() and 0 < len(n) <= 9:
            incidents = max(1, int(n))
        else:
            warnings.append(f"Incidents {n[:20]!r} is not a count; read as 1")
    mta = single.get("reporting_mta")
    if mta and ";" in mta:
        mta = mta.split(";", 1)[1].strip()
    arrival = single.get("arrival_date")
    return FeedbackReport(
        feedback_type=ftype,
        user_agent=single.get("user_agent") or None,
        version=single.get("version") or None,
        source_ip=source_ip,
        source_port=port,
        original_mail_from=single.get("original_mail_from") or None,
        original_rcpt_to=tuple(multi["original_rcpt_to"]),
        arrival_date=arrival or None,
        arrival_time=parse_date(arrival, warnings, "Arrival-Date"),
        reporting_mta=mta or None,
        reported_domain=tuple(multi["reported_domain"]),
        reported_uri=tuple(multi["reported_uri"]),
        incidents=incidents,
        authentication_results=tuple(multi["authentication_results"]),
        original_envelope_id=single.get("original_envelope_id") or None,
        removal_recipient=tuple(multi["removal_recipient"]),
        auth=AuthFailure(spf_dns=tuple(spf_dns), **{k: v or None for k, v in auth.items()}),
        extra=tuple(extra),
    )


# ---------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------

_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "text/rfc822-header", "message/rfc822-headers")


def _original_of(part: Part) -> OriginalMessage:
    data = part.decoded()
    if part.content_type == "message/rfc822":
        return OriginalMessage("message", data)
    head, _ = split_head(data + b"\n\n")
    return OriginalMessage("headers", head.rstrip(b"\n") + b"\n" if head.strip() else b"")


def _human(part: Part) -> str:
    return _text(part.decoded()).strip()


def _envelope(head: Message) -> ReportEnvelope:
    frm = header_str(head, "From")
    addr = email.utils.parseaddr(frm or "")[1].lower() or None
    return ReportEnvelope(
        reporter=addr,
        subject=header_str(head, "Subject"),
        message_id=header_str(head, "Message-ID"),
        date=header_str(head, "Date"),
    )


def _infer(original: OriginalMessage, envelope: ReportEnvelope, warnings: list[str]) -> FeedbackReport:
    """No feedback part (Hotmail JMRP and the like): the attached message says who, where and when."""
    warnings.append("no message/feedback-report part: fields inferred from the attached message")
    head = parse_headers(split_head(original.data)[0] if original.kind == "message" else original.data)
    rcpts: list[str] = []
    for name in ("X-HmXmrOriginalRecipient", "X-Apparently-To", "X-Original-To"):
        v = header_str(head, name)
        if v:
            rcpts.append(v.split(";")[0].strip())
            break
    received = [unfold(_clean(str(v))) for v in head.get_all("Received") or []]
    source_ip = None
    arrival = None
    if received:
        top = received[0]
        from_clause = top.split(" by ", 1)[0]
        source_ip = first_ip(from_clause)
        arrival = top.rpartition(";")[2].strip() or None
    if source_ip is None and envelope.subject:
        source_ip = first_ip(envelope.subject)
    mail_from = header_str(head, "Return-Path")
    extra: tuple[tuple[str, str], ...] = ()
    reporter_ip = header_str(head, "X-Reporter-IP")
    if reporter_ip:
        extra = (("X-Reporter-IP", reporter_ip),)
    return FeedbackReport(
        feedback_type="abuse",
        user_agent=None,
        version=None,
        source_ip=source_ip,
        original_mail_from=mail_from,
        original_rcpt_to=tuple(rcpts),
        arrival_date=arrival,
        arrival_time=parse_date(arrival, warnings, "Received") if arrival else None,
        extra=extra,
    )


def _find(parts: list[Part]) -> tuple[Part | None, Part | None, Part | None]:
    feedback = original = human = None
    for p in parts:
        ct = p.content_type
        if ct == "message/feedback-report" and feedback is None:
            feedback = p
        elif ct in _ORIGINAL_TYPES and original is None:
            original = p
        elif ct.startswith("text/") and human is None and feedback is None:
            human = p
    return feedback, original, human


def _parse_at(top: Part, warnings: list[str], depth: int) -> ParsedReport | None:
    envelope = _envelope(top.headers)
    ct = top.content_type
    if ct == "message/feedback-report":
        fields = parse_fields(_text(top.decoded()), warnings)
        return ParsedReport(report_from_fields(fields, warnings), envelope, True, ())
    if not ct.startswith("multipart/"):
        return None
    parts = split_multipart(top, warnings)
    if ct == "multipart/report":
        rtype = top.headers.get_param("report-type") or ""
        if isinstance(rtype, str) and rtype.lower() != "feedback-report":
            warnings.append(f"multipart/report with report-type={rtype!r}, not feedback-report")
    feedback, original_part, human = _find(parts)
    original = _original_of(original_part) if original_part is not None else None
    if feedback is not None:
        fields = parse_fields(_text(feedback.decoded()), warnings)
        report = report_from_fields(fields, warnings)
        has = True
    else:
        # A report forwarded as an attachment: look inside before inferring from it.
        if depth < MAX_DEPTH:
            for p in parts:
                if p.content_type == "message/rfc822" or p.content_type.startswith("multipart/"):
                    inner = as_part(p.decoded()) if p.content_type == "message/rfc822" else p
                    found = _parse_at(inner, warnings, depth + 1)
                    if found is not None and found.has_feedback_part:
                        return found
        if original is None or original.kind != "message" or not original.data.strip():
            return None
        report = _infer(original, envelope, warnings)
        has = False
    if original is None:
        warnings.append("no original message or headers attached")
    elif not original.data.strip() or original.data.strip() in (b"REDACTED", b"redacted"):
        warnings.append("the attached original is empty or redacted")
    from dataclasses import replace

    report = replace(report, original=original, human_text=_human(human) if human is not None else None)
    return ParsedReport(report, envelope, has, ())


def parse_report(raw: bytes, max_bytes: int = MAX_BYTES) -> ParsedReport:
    """Parse one report. Raises ArfParseError (only) when no report can be read from `raw`."""
    warnings: list[str] = []
    try:
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise ArfParseError("input is not bytes")
        data = bytes(raw[:max_bytes])
        if len(raw) > max_bytes:
            warnings.append(f"report larger than {max_bytes} bytes; the rest was not read")
        data = normalise_newlines(data)
        if data.startswith(b"From ") and b"\n" in data:
            data = data.split(b"\n", 1)[1]  # an mbox envelope line
        top = as_part(data)
        result = _parse_at(top, warnings, 0)
    except ArfParseError:
        raise
    except (RecursionError, MemoryError) as exc:
        raise ArfParseError(f"report too complex to parse: {type(exc).__name__}") from None
    except Exception as exc:  # a hostile report must never take the ingester down
        raise ArfParseError(f"unreadable report: {type(exc).__name__}: {str(exc)[:200]}") from None
    if result is None:
        raise ArfParseError("not a feedback report: no message/feedback-report part and no attached message")
    return ParsedReport(result.report, result.envelope, result.has_feedback_part, tuple(warnings))
