"""Raw RFC 822 bytes -> MessageFacts, with every size and count limit from configuration.

Hostile input is the normal case here: the header block is split and decoded by our own bounded code
(headers.py) before the standard library's MIME parser sees only the MIME headers and the body, so a
1 MB header line or 10,000 fields cost linear time. Every problem becomes a defect symbol.
"""

from __future__ import annotations

import codecs
import email.parser
import email.policy
import logging
from email.message import Message

from relayguard.config.schema import LimitSettings, Settings
from relayguard.message.facts import Attachment, Envelope, Header, MessageFacts, Url
from relayguard.message.headers import parse_headers, split_header_block
from relayguard.message.html_text import html_to_text
from relayguard.message.received import build_chain
from relayguard.message.relay import RelayChain
from relayguard.message.trust import TrustConfig
from relayguard.message.urls import find_urls, make_url

_MIME_HEADERS = {"content-type", "content-transfer-encoding", "mime-version", "content-disposition"}
_BOUNDARY_DEFECTS = {
    "StartBoundaryNotFoundDefect",
    "CloseBoundaryNotFoundDefect",
    "NoBoundaryInMultipartDefect",
}
log = logging.getLogger("relayguard.message")
_trust_cache: dict[tuple[tuple[str, ...], ...], TrustConfig] = {}


def trust_config(settings: Settings) -> TrustConfig:
    t = settings.trust
    key = (tuple(t.trusted_networks), tuple(t.internal_networks), tuple(t.msa_networks))
    tc = _trust_cache.get(key)
    if tc is None:
        tc = TrustConfig.from_lists(t.trusted_networks, t.internal_networks, t.msa_networks)
        if len(_trust_cache) < 64:
            _trust_cache[key] = tc
    return tc


def strip_mbox_from(raw: bytes) -> bytes:
    """Skip a leading mbox `From ` envelope line (it is not a header)."""
    if raw.startswith(b"From "):
        nl = raw.find(b"\n")
        return b"" if nl < 0 else raw[nl + 1 :]
    return raw


def _charset_decode(payload: bytes, charset: str | None, defects: set[tuple[str, str]]) -> str:
    cs = (charset or "us-ascii").strip().strip('"').lower()
    try:
        codecs.lookup(cs)
    except LookupError:
        defects.add(("CHARSET_UNKNOWN", cs[:40]))
        cs = "utf-8"
    if cs in ("us-ascii", "ascii"):
        cs = "utf-8"  # 8-bit bytes under a us-ascii label are common; UTF-8 is the best guess
    try:
        return payload.decode(cs)
    except UnicodeDecodeError:
        defects.add(("CHARSET_INVALID", cs[:40]))
        # cp1252 decodes nearly every byte; it is what mislabelled Western mail usually is.
        return payload.decode("cp1252", errors="replace")
    except Exception:  # some codecs raise other errors on hostile bytes
        defects.add(("CHARSET_INVALID", cs[:40]))
        return payload.decode("utf-8", errors="replace")


def _walk(
    root: Message, limits: LimitSettings, defects: set[tuple[str, str]]
) -> tuple[list[str], list[str], list[Attachment], int]:
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    parts = 0
    stack: list[tuple[Message, int]] = [(root, 0)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        if parts > limits.max_parts:
            defects.add(("MANY_PARTS", f"more than {limits.max_parts}"))
            break
        if depth > limits.max_depth:
            defects.add(("MIME_TOO_DEEP", f"depth {depth}"))
            continue
        for d in getattr(part, "defects", ()):
            name = type(d).__name__
            defects.add(("MIME_BOUNDARY_MISSING" if name in _BOUNDARY_DEFECTS else "MIME_MALFORMED", name))
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((c, depth + 1) for c in reversed(children) if isinstance(c, Message))
            continue
        ctype = part.get_content_type()
        filename = None
        try:
            filename = part.get_filename()
        except Exception:
            defects.add(("MIME_MALFORMED", "filename"))
        try:
            payload = part.get_payload(decode=True)
        except Exception:
            defects.add(("BAD_CTE", ctype))
            payload = b""
        if not isinstance(payload, bytes):
            payload = b""
        disposition = (part.get("Content-Disposition") or "").lower()
        if filename or "attachment" in disposition or not ctype.startswith(("text/", "multipart/")):
            attachments.append(Attachment(filename, ctype, len(payload)))
            if not ctype.startswith("text/") or filename:
                continue
        if ctype == "text/html":
            htmls.append(_charset_decode(payload, part.get_content_charset(), defects))
        elif ctype.startswith("text/"):
            texts.append(_charset_decode(payload, part.get_content_charset(), defects))
    return texts, htmls, attachments, parts


def parse_message(raw: bytes, settings: Settings, envelope: Envelope | None = None) -> MessageFacts:
    limits = settings.limits
    defects: set[tuple[str, str]] = set()
    data = strip_mbox_from(raw)
    size = len(data)
    if size > limits.max_message_bytes:
        defects.add(("MSG_TRUNCATED", f"{size} bytes, analysed {limits.max_message_bytes}"))
        data = data[: limits.max_message_bytes]
    if b"\x00" in data:
        defects.add(("NUL_BYTES", str(data.count(b"\x00"))))
        data = data.replace(b"\x00", b"")
    block, body_offset, separated = split_header_block(data)
    if not separated:
        defects.add(("MSG_NO_BODY", "no empty line after the headers"))
    headers, hdefects = parse_headers(block, limits.max_headers, limits.max_header_bytes)
    defects.update(hdefects)

    # The MIME parser sees only MIME headers (already bounded) and the body.
    mime_head = "".join(f"{h.name}: {h.raw}\n" for h in headers if h.name.lower() in _MIME_HEADERS)
    mime_bytes = mime_head.encode("utf-8", "replace") + b"\n" + data[body_offset:]
    try:
        root = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(mime_bytes)
        texts, htmls, attachments, nparts = _walk(root, limits, defects)
        content_type = root.get_content_type()
    except Exception as exc:  # the stdlib parser is lenient; this is the last line of defence
        defects.add(("MIME_MALFORMED", type(exc).__name__))
        texts, htmls, attachments, nparts = [data[body_offset:].decode("utf-8", "replace")], [], [], 1
        content_type = "text/plain"

    text = "\n".join(texts)
    html = "\n".join(htmls)
    max_chars = limits.max_text_chars
    if len(text) > max_chars or len(html) > max_chars:
        defects.add(("TEXT_TRUNCATED", f"cut at {max_chars} characters"))
        text, html = text[:max_chars], html[:max_chars]
    html_text, links, _images = html_to_text(html, max_chars) if html else ("", [], 0)

    urls: list[Url] = []
    seen: set[str] = set()
    budget = limits.max_urls
    candidates: list[Url] = []
    for link, source in links:
        u = make_url(link, source)
        if u is not None:
            candidates.append(u)
    candidates += find_urls(text, "text", budget + 1)
    candidates += find_urls(html_text, "html:text", budget + 1)
    for u in candidates:
        if u.url in seen:
            continue
        if len(urls) >= budget:
            defects.add(("MANY_URLS", f"more than {budget}"))
            break
        seen.add(u.url)
        urls.append(u)

    received = [h.raw for h in headers if h.name.lower() == "received"]
    try:
        chain = build_chain(received, trust_config(settings))
    except Exception as exc:  # a parser bug on one hostile line must not cost the verdict
        log.exception("Received chain parser failed")
        defects.add(("RCVD_PARSER_ERROR", type(exc).__name__))
        chain = RelayChain(unparsed=len(received), unparsed_lines=tuple(received))
    return MessageFacts(
        raw=raw,
        size=size,
        headers=tuple(headers),
        text=text,
        html=html,
        html_text=html_text,
        urls=tuple(urls),
        attachments=tuple(attachments),
        chain=chain,
        envelope=envelope or Envelope(),
        parts=nparts,
        content_type=content_type,
        defects=tuple(sorted(defects)),
    )


def header_list(facts: MessageFacts, name: str) -> list[Header]:
    lname = name.lower()
    return [h for h in facts.headers if h.name.lower() == lname]
