"""Structure checks: HTML-only mail, dangerous attachments."""

from __future__ import annotations

from collections.abc import Sequence

from relayguard.checks.api import Hit, SymbolDef, SyncCheck
from relayguard.message.facts import MessageFacts

# Extensions Windows executes on a double click, as mail filters and Rspamd's mime_types list them.
EXECUTABLE = frozenset(
    "exe com scr pif bat cmd vbs vbe js jse wsf wsh hta cpl msi msp jar lnk ps1 reg dll iso img vhd".split()
)
ARCHIVE = frozenset("zip rar 7z gz tgz bz2 xz ace cab arj".split())
DOCUMENT = frozenset("pdf doc docx xls xlsx txt jpg jpeg gif png htm html rtf".split())


def _extensions(name: str) -> list[str]:
    parts = name.lower().rstrip(". ").split(".")
    return parts[1:] if len(parts) > 1 else []


class MimeCheck(SyncCheck):
    name = "MIME"
    symbols = (
        SymbolDef("HTML_ONLY", "mime", "Only an HTML part, no text alternative"),
        SymbolDef("HTML_SHORT_TEXT_IMAGE", "mime", "HTML with images and almost no text"),
        SymbolDef("EXECUTABLE_ATTACHMENT", "mime", "An attachment Windows would execute"),
        SymbolDef(
            "DOUBLE_EXTENSION", "mime", "An attachment name hiding an executable behind a document extension"
        ),
        SymbolDef("ARCHIVE_IN_MESSAGE", "mime", "An archive attachment"),
    )

    def evaluate(self, facts: MessageFacts) -> Sequence[Hit]:
        hits: list[Hit] = []
        if facts.html and not facts.text.strip():
            hits.append(Hit("HTML_ONLY", (facts.content_type,)))
            if len(facts.html_text) < 200 and "<img" in facts.html.lower():
                hits.append(Hit("HTML_SHORT_TEXT_IMAGE", (f"{len(facts.html_text)} chars",)))
        for att in facts.attachments:
            if not att.filename:
                continue
            exts = _extensions(att.filename)
            if not exts:
                continue
            name = att.filename[:80]
            if exts[-1] in EXECUTABLE:
                hits.append(Hit("EXECUTABLE_ATTACHMENT", (name,)))
                if len(exts) >= 2 and exts[-2] in DOCUMENT:
                    hits.append(Hit("DOUBLE_EXTENSION", (name,)))
            elif exts[-1] in ARCHIVE:
                hits.append(Hit("ARCHIVE_IN_MESSAGE", (name,)))
        return hits
