"""Postfix policy delegation (SMTPD_POLICY_README), sans-I/O.

A request is `name=value` lines ended by an empty line; the reply is one `action=...` line and an empty
line. Connections are reused for many requests (one smtpd process keeps its connection). The requests
of one message share the `instance` attribute; the core marks the first request of a new instance so a
decider can tie CONNECT .. END-OF-MESSAGE together without guessing.

Replies are limited to DUNNO, DEFER_IF_PERMIT, DEFER, HOLD, REJECT and PREPEND. OK is deliberately not
representable: an OK placed before `reject_unauth_destination` turns the relay into an open relay, and
"whitelisting" in a policy service means DUNNO (let the other restrictions decide).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import repeat

from relayguard.protocols.errors import NEED_DATA, LocalProtocolError, RemoteProtocolError, _NeedData

# Postfix's own request is a few hundred bytes; certificate subjects make the largest ones. 64 KiB is
# far beyond any real request and small enough that a hostile peer cannot make us hoard memory.
DEFAULT_MAX_REQUEST_BYTES = 65536
DEFAULT_MAX_ATTRIBUTES = 256
MAX_REPLY_TEXT = 400  # SMTP reply lines are at most 512 octets including the code

# Every byte but "\n" and "=": deleting them leaves a request's shape (UTF-8 never hides either byte
# inside a multi-byte character, so the decoded text has the same shape).
_NOT_SHAPE = bytes(b for b in range(256) if b not in b"\n=")

STATES = frozenset({"CONNECT", "EHLO", "HELO", "MAIL", "RCPT", "DATA", "END-OF-MESSAGE", "VRFY", "ETRN"})

# Every attribute Postfix (up to 3.8) sends, for documentation and tests; unknown ones are kept too.
KNOWN_ATTRIBUTES = (
    "request", "protocol_state", "protocol_name", "helo_name", "queue_id", "sender", "recipient",
    "recipient_count", "client_address", "client_name", "reverse_client_name", "instance",
    "sasl_method", "sasl_username", "sasl_sender", "size", "ccert_subject", "ccert_issuer",
    "ccert_fingerprint", "ccert_pubkey_fingerprint", "encryption_protocol", "encryption_cipher",
    "encryption_keysize", "etrn_domain", "stress", "client_port", "policy_context",
    "server_address", "server_port", "compatibility_level", "mail_version", "server_hostname",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """One request. `attrs` holds every attribute as sent (values decoded as UTF-8, bad bytes replaced)."""

    attrs: Mapping[str, str]
    new_instance: bool = True  # first request of this `instance` on this connection

    def get(self, name: str, default: str = "") -> str:
        return self.attrs.get(name, default)

    @property
    def state(self) -> str:
        return self.attrs.get("protocol_state", "")

    @property
    def instance(self) -> str:
        return self.attrs.get("instance", "")

    @property
    def sasl_username(self) -> str:
        return self.attrs.get("sasl_username", "")

    @property
    def client_address(self) -> str:
        return self.attrs.get("client_address", "")


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side cleanly (at a request boundary)."""


class PolicyAction(StrEnum):
    DUNNO = "DUNNO"
    DEFER_IF_PERMIT = "DEFER_IF_PERMIT"
    DEFER = "DEFER"
    HOLD = "HOLD"
    REJECT = "REJECT"
    PREPEND = "PREPEND"


def _clean_text(text: str) -> str:
    """One printable ASCII line: reply text must not break the line protocol or the SMTP reply."""
    if text.isascii() and text.isprintable() and "  " not in text and len(text) <= MAX_REPLY_TEXT:
        return text.strip()
    out = "".join(c if " " <= c <= "~" else " " for c in text)
    return " ".join(out.split())[:MAX_REPLY_TEXT]


@dataclass(frozen=True, slots=True)
class PolicyReply:
    action: PolicyAction
    text: str = ""
    _wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = _clean_text(self.text)
        if self.action is PolicyAction.PREPEND:
            name, sep, _ = text.partition(":")
            if not sep or not name or " " in name:
                raise LocalProtocolError(f"PREPEND needs 'Header-Name: value', got {text!r}")
        object.__setattr__(self, "text", text)
        line = f"action={self.action.value} {text}" if text else f"action={self.action.value}"
        object.__setattr__(self, "_wire", (line + "\n\n").encode("ascii"))

    def to_bytes(self) -> bytes:
        return self._wire


DUNNO = PolicyReply(PolicyAction.DUNNO)


class PolicyConnection:
    """One policy client connection. Feed bytes, take requests, turn replies into bytes."""

    def __init__(
        self,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_attributes: int = DEFAULT_MAX_ATTRIBUTES,
    ) -> None:
        self.max_request_bytes = max_request_bytes
        self.max_attributes = max_attributes
        self._buf = bytearray()
        self._eof = False
        self._closed_sent = False
        self._last_instance: str | None = None
        self._awaiting_reply = 0  # requests handed out that have no reply yet
        self._one_equals_per_line = b"=\n" * max_attributes  # the shape of the largest simple request

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data after end of input")
            return
        if not data:
            self._eof = True
            return
        self._buf += data

    def next_event(self) -> PolicyRequest | ConnectionClosed | _NeedData:
        buf = self._buf
        if not buf and not self._eof:
            return NEED_DATA  # the usual state after a request was taken
        end = buf.find(b"\n\n")
        if end < 0:
            if buf.startswith(b"\n"):
                raise RemoteProtocolError("empty request (a blank line with no attributes)")
            if len(buf) > self.max_request_bytes:
                raise RemoteProtocolError(f"request larger than {self.max_request_bytes} bytes")
            if self._eof:
                if buf:
                    raise RemoteProtocolError("connection closed in the middle of a request")
                if self._closed_sent:
                    raise LocalProtocolError("next_event after ConnectionClosed")
                self._closed_sent = True
                return ConnectionClosed()
            return NEED_DATA
        if end + 2 > self.max_request_bytes:
            raise RemoteProtocolError(f"request larger than {self.max_request_bytes} bytes")
        raw = buf[:end]
        if end + 2 == len(buf):
            buf.clear()  # the usual case: the buffer held exactly one request
        else:
            del buf[: end + 2]
        if not raw:
            raise RemoteProtocolError("empty request (a blank line with no attributes)")
        req = self._parse(raw)
        self._awaiting_reply += 1
        return req

    def _parse(self, raw: bytes | bytearray) -> PolicyRequest:
        # Hot path (every RCPT of every message): decode once and split in C; the slow per-line path
        # runs only to explain what was wrong.
        text = raw.decode("utf-8", "replace")
        if "\r" in text:
            # Postfix never sends CR, but a hand-written client (telnet) might: tolerate CRLF.
            text = text.replace("\r\n", "\n")
        # The request's shape (its "=" and newlines) tells in C time whether every line is exactly one
        # name=value, as Postfix's are unless a value holds "=" (a certificate subject): then one split
        # makes every name and value without a list per line.
        shape = raw.translate(None, _NOT_SHAPE)
        if len(shape) & 1 and self._one_equals_per_line.startswith(shape):
            it = iter(text.replace("\n", "=").split("="))
            attrs: dict[str, str] = dict(zip(it, it, strict=True))
            return self._request(attrs)
        lines = text.split("\n")
        if len(lines) > self.max_attributes:
            raise RemoteProtocolError(f"more than {self.max_attributes} attributes")
        try:
            attrs = dict(map(str.split, lines, repeat("="), repeat(1)))  # type: ignore[arg-type]
        except ValueError:
            bad = next(line for line in lines if "=" not in line)
            raise RemoteProtocolError(f"attribute line without name=value: {bad[:60]!r}") from None
        return self._request(attrs)

    def _request(self, attrs: dict[str, str]) -> PolicyRequest:
        if "" in attrs:
            raise RemoteProtocolError("attribute line with an empty name")
        request = attrs.get("request")
        if request != "smtpd_access_policy":
            raise RemoteProtocolError(f"unknown request type {request!r}"[:100])
        instance = attrs.get("instance", "")
        new_instance = instance != self._last_instance or not instance
        self._last_instance = instance
        return PolicyRequest(attrs, new_instance)

    def send(self, reply: PolicyReply) -> bytes:
        """The bytes for the reply to the oldest unanswered request."""
        if self._awaiting_reply <= 0:
            raise LocalProtocolError("reply sent with no request waiting for one")
        self._awaiting_reply -= 1
        return reply.to_bytes()

    @property
    def awaiting_reply(self) -> int:
        return self._awaiting_reply

    @property
    def buffered(self) -> int:
        return len(self._buf)


def encode_request(attrs: Mapping[str, str]) -> bytes:
    """A request as Postfix writes it (used by tests and the bench client)."""
    for k, v in attrs.items():
        if "\n" in k or "=" in k or "\n" in v:
            raise LocalProtocolError(f"attribute {k!r} cannot be encoded")
    return ("".join(f"{k}={v}\n" for k, v in attrs.items()) + "\n").encode("utf-8")


def parse_reply(data: bytes) -> PolicyReply:
    """Parse one reply (client side, used by tests): `action=WORD text\\n\\n`."""
    line = data.split(b"\n", 1)[0].decode("ascii", "replace")
    if not line.startswith("action="):
        raise RemoteProtocolError(f"reply without action=: {line[:60]!r}")
    word, _, text = line[7:].partition(" ")
    try:
        action = PolicyAction(word.upper())
    except ValueError:
        raise RemoteProtocolError(f"unknown action {word!r}") from None
    return PolicyReply(action, text)
