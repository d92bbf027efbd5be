"""Symbols the parser itself emits when input is malformed or over a limit.

Each is a fact about the message, never a crash: the message still gets a verdict.
"""

from __future__ import annotations

from relayguard.checks.api import SymbolDef

PARSER_SYMBOLS: tuple[SymbolDef, ...] = (
    SymbolDef(
        "MSG_TRUNCATED", "mime", "Message larger than [limits] max_message_bytes; the rest was not analysed"
    ),
    SymbolDef("MSG_NO_BODY", "mime", "No empty line separates headers from body (truncated message?)"),
    SymbolDef("NUL_BYTES", "mime", "The message contains NUL bytes"),
    SymbolDef("MANY_HEADERS", "headers", "More header fields than [limits] max_headers"),
    SymbolDef("LONG_HEADER", "headers", "A header field longer than [limits] max_header_bytes"),
    SymbolDef("HEADER_NOT_DECODABLE", "headers", "An RFC 2047 encoded word could not be decoded"),
    SymbolDef("HEADER_MALFORMED", "headers", "A header line without a field name"),
    SymbolDef("MIME_MALFORMED", "mime", "The MIME structure is malformed"),
    SymbolDef("MIME_BOUNDARY_MISSING", "mime", "A multipart boundary is missing or never closed"),
    SymbolDef("MIME_TOO_DEEP", "mime", "MIME nesting deeper than [limits] max_depth"),
    SymbolDef("MANY_PARTS", "mime", "More MIME parts than [limits] max_parts"),
    SymbolDef("CHARSET_UNKNOWN", "mime", "A part declares a charset Python does not know"),
    SymbolDef("CHARSET_INVALID", "mime", "A part's bytes are not valid in its declared charset"),
    SymbolDef("BAD_CTE", "mime", "A part's transfer encoding could not be decoded"),
    SymbolDef(
        "RCVD_PARSER_ERROR", "received", "The Received parser failed on this message (a bug: please report)"
    ),
    SymbolDef("MANY_URLS", "body", "More URLs than [limits] max_urls; the rest were not extracted"),
    SymbolDef("TEXT_TRUNCATED", "body", "Decoded text longer than [limits] max_text_chars was cut"),
)
