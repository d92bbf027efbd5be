"""Immutable facts about one message: what every check reads, and nothing checks can change."""

from __future__ import annotations

from dataclasses import dataclass, field

from relayguard.message.relay import RelayChain


@dataclass(frozen=True, slots=True)
class Header:
    name: str  # as written
    value: str  # RFC 2047 decoded, unfolded
    raw: str  # undecoded, unfolded


@dataclass(frozen=True, slots=True)
class Url:
    url: str
    host: str
    domain: str | None  # registrable domain (Public Suffix List), None for IP hosts or unknown suffix
    source: str  # "text", "html:href", "html:src", "html:form", "html:text"


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a front end knows about the SMTP session; all None when scanning files."""

    mail_from: str | None = None
    rcpt_to: tuple[str, ...] = ()
    helo: str | None = None
    client_ip: str | None = None
    client_rdns: str | None = None
    sasl_username: str | None = None
    queue_id: str | None = None
    relay: str | None = None  # the MTA host name that asked us
    protocol: str | None = None


@dataclass(frozen=True, slots=True)
class MessageFacts:
    raw: bytes
    size: int
    headers: tuple[Header, ...]
    text: str  # text/plain parts, decoded
    html: str  # text/html parts, decoded (markup kept)
    html_text: str  # text/html parts reduced to text
    urls: tuple[Url, ...]
    attachments: tuple[Attachment, ...]
    chain: RelayChain
    envelope: Envelope = field(default_factory=Envelope)
    parts: int = 0
    content_type: str = "text/plain"
    # Names of the parser's own symbols (e.g. MIME_MALFORMED) with an option explaining each.
    defects: tuple[tuple[str, str], ...] = ()

    def header_values(self, name: str) -> list[str]:
        lname = name.lower()
        return [h.value for h in self.headers if h.name.lower() == lname]

    def header(self, name: str) -> str | None:
        """The first header of that name (decoded), or None when absent."""
        lname = name.lower()
        for h in self.headers:
            if h.name.lower() == lname:
                return h.value
        return None

    def raw_header(self, name: str) -> str | None:
        lname = name.lower()
        for h in self.headers:
            if h.name.lower() == lname:
                return h.raw
        return None

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None

    @property
    def subject(self) -> str:
        return self.header("Subject") or ""

    @property
    def message_id(self) -> str | None:
        return self.header("Message-ID")

    @property
    def body_text(self) -> str:
        """All visible text: plain parts, then HTML reduced to text."""
        if self.text and self.html_text:
            return self.text + "\n" + self.html_text
        return self.text or self.html_text
