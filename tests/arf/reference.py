"""A second, independent ARF reader for the tests, on the stdlib `email` package only.

It shares no code with relayguard.arf.parse: the stdlib's own MIME parser (policy.default) walks the
parts, and the stdlib parses the message/feedback-report body as a nested header block. Reports
relayguard writes must read the same here as in relayguard's parser.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage, Message


def _unfold(v: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", v).strip()


def read(data: bytes) -> dict[str, object]:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "feedback-report"
    parts = list(msg.iter_parts()) if isinstance(msg, EmailMessage) else []
    fields: list[tuple[str, str]] = []
    original: bytes | None = None
    kind = None
    human = None
    for p in parts:
        ct = p.get_content_type()
        if ct == "message/feedback-report":
            inner = p.get_payload()
            block: Message = inner[0] if isinstance(inner, list) else email.message_from_string(str(inner))
            fields = [(k, _unfold(str(v))) for k, v in block.raw_items()]
        elif ct == "message/rfc822":
            inner = p.get_payload()
            assert isinstance(inner, list)
            original = inner[0].as_bytes(policy=email.policy.compat32.clone(linesep="\n")).replace(b"\r\n", b"\n")
            kind = "message"
        elif ct == "text/rfc822-headers":
            payload = p.get_payload(decode=True)
            original = payload.replace(b"\r\n", b"\n") if isinstance(payload, bytes) else None
            kind = "headers"
        elif ct == "text/plain":
            human = p.get_content()
    out: dict[str, object] = {"fields": fields, "original_kind": kind, "original": original, "human": human}
    multi: dict[str, list[str]] = {}
    for k, v in fields:
        multi.setdefault(k.lower(), []).append(v)
    out["by_name"] = multi
    return out


def canon(data: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """A message as (headers with white space normalised, body without trailing white space): a
    re-serialising writer may refold header lines, which changes bytes, never meaning."""
    m = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.compat32)
    heads = [(k.lower(), " ".join(_unfold(str(v)).split())) for k, v in m.items()]
    body = data.replace(b"\r\n", b"\n").partition(b"\n\n")[2]
    return heads, body.rstrip()
