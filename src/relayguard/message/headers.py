"""Split and decode the header block with hard limits, before any MIME parsing sees it."""

from __future__ import annotations

import email.header
import re
from dataclasses import dataclass, field

from relayguard.message.facts import Header

_NAME_RE = re.compile(rb"^([\x21-\x39\x3b-\x7e]{1,256})[ \t]*:")
_ENCODED = "=?"


@dataclass
class HeaderBlock:
    headers: list[Header] = field(default_factory=list)
    body_offset: int = 0  # where the body starts in the data
    has_body_separator: bool = True
    defects: list[tuple[str, str]] = field(default_factory=list)


def split_header_block(data: bytes) -> tuple[bytes, int, bool]:
    """(header bytes, body offset, whether an empty line ended the headers)."""
    # The first empty line ends the header block; accept LF and CRLF (and a bare-CR file, rarely).
    m = re.search(rb"\r?\n\r?\n", data)
    if m is None:
        return data, len(data), False
    return data[: m.start()], m.end(), True


def _decode_raw(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("latin-1")


def decode_value(raw: str) -> tuple[str, bool]:
    """RFC 2047 decode; (text, ok). Undecodable words are kept as written (ok=False)."""
    if _ENCODED not in raw:
        return raw, True
    try:
        parts = email.header.decode_header(raw)
    except Exception:  # email.header raises several types on hostile input
        return raw, False
    out: list[str] = []
    ok = True
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or "ascii", errors="replace"))
        except LookupError:
            out.append(chunk.decode("latin-1"))
            ok = False
    # decode_header returns plain runs as bytes too when the value mixes encoded and plain words.
    return "".join(out), ok


def parse_headers(
    block: bytes, max_headers: int, max_header_bytes: int
) -> tuple[list[Header], list[tuple[str, str]]]:
    """Unfold, cut to limits, decode. Returns headers in order and defect symbols."""
    defects: list[tuple[str, str]] = []
    fields: list[list[bytes]] = []
    sizes: list[int] = []
    malformed = 0
    too_many = 0
    long_fields = 0
    for line in block.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if fields:
                if sizes[-1] < max_header_bytes:
                    fields[-1].append(line)
                    sizes[-1] += len(line)
                elif sizes[-1] != max_header_bytes + 1:
                    sizes[-1] = max_header_bytes + 1
                    long_fields += 1
            else:
                malformed += 1
            continue
        if _NAME_RE.match(line) is None:
            malformed += 1
            continue
        if len(fields) >= max_headers:
            too_many += 1
            continue
        fields.append([line])
        sizes.append(len(line))
    headers: list[Header] = []
    undecodable = 0
    for i, parts in enumerate(fields):
        first = parts[0]
        name_b, _, rest = first.partition(b":")
        joined = b" ".join([rest.strip(), *(p.strip() for p in parts[1:])]).strip()
        if len(joined) > max_header_bytes:
            joined = joined[:max_header_bytes]
            if sizes[i] != max_header_bytes + 1:
                long_fields += 1
        raw = _decode_raw(joined)
        value, ok = decode_value(raw)
        if not ok:
            undecodable += 1
        headers.append(Header(name_b.decode("ascii", "replace").strip(), value, raw))
    if too_many:
        defects.append(("MANY_HEADERS", f"{len(fields) + too_many} fields, kept {len(fields)}"))
    if long_fields:
        defects.append(("LONG_HEADER", f"{long_fields} fields cut at {max_header_bytes} bytes"))
    if malformed:
        defects.append(("HEADER_MALFORMED", f"{malformed} lines"))
    if undecodable:
        defects.append(("HEADER_NOT_DECODABLE", f"{undecodable} fields"))
    return headers, defects
