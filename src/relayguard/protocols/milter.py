"""The Sendmail/Postfix milter protocol (version 6, compatible down to 2), sans-I/O.

Every packet is a 4-byte big-endian length (command byte included), one command byte and its data.
The MTA opens with option negotiation (SMFIC_OPTNEG: version, the actions it allows, the protocol
steps it offers to skip); we answer with what we use, and (when the MTA allows SMFIF_SETSYMLIST) the
macros we want at each stage. Then, per SMTP session: CONNECT, HELO, and per message MAIL, RCPT..., DATA,
HEADER..., EOH, BODY..., EOB; ABORT resets the message, QUIT ends, QUIT_NC resets the connection.
Each event except MACRO, ABORT and the QUITs expects one reply; at end of message the reply may be
preceded by modifications (add/insert/change header, quarantine).

The core collects one message (envelope, macros, headers, body) and hands it over whole in
`EndOfMessage`; the front end decides. Sizes are bounded: a packet larger than `max_packet` is a
remote protocol error (its length prefix is refused before its bytes arrive), and a body beyond
`max_message_bytes` is kept truncated (`Transaction.truncated`) rather than refused, so a big message
is still answered instead of lost.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntFlag

from relayguard.protocols.errors import NEED_DATA, LocalProtocolError, RemoteProtocolError, _NeedData

DEFAULT_MAX_PACKET = 1 << 20  # Postfix's header_size_limit is 100 KiB and body chunks 64 KiB
DEFAULT_MAX_MESSAGE = 50 << 20
MILTER_VERSION = 6


class Actions(IntFlag):
    """SMFIF_*: modifications the filter may make (negotiated)."""

    ADDHDRS = 0x01
    CHGBODY = 0x02
    ADDRCPT = 0x04
    DELRCPT = 0x08
    CHGHDRS = 0x10
    QUARANTINE = 0x20
    CHGFROM = 0x40
    ADDRCPT_PAR = 0x80
    SETSYMLIST = 0x100


class Steps(IntFlag):
    """SMFIP_*: events the MTA may leave out, or send without waiting for a reply."""

    NOCONNECT = 0x1
    NOHELO = 0x2
    NOMAIL = 0x4
    NORCPT = 0x8
    NOBODY = 0x10
    NOHDRS = 0x20
    NOEOH = 0x40
    NR_HDR = 0x80
    NOUNKNOWN = 0x100
    NODATA = 0x200
    SKIP = 0x400
    RCPT_REJ = 0x800
    NR_CONN = 0x1000
    NR_HELO = 0x2000
    NR_MAIL = 0x4000
    NR_RCPT = 0x8000
    NR_DATA = 0x10000
    NR_UNKN = 0x20000
    NR_EOH = 0x40000
    NR_BODY = 0x80000
    HDR_LEADSPC = 0x100000


# Events a filter that decides only at end of message need not answer (the MTA then does not wait).
NO_REPLY_STEPS = (
    Steps.NR_CONN
    | Steps.NR_HELO
    | Steps.NR_MAIL
    | Steps.NR_RCPT
    | Steps.NR_DATA
    | Steps.NR_UNKN
    | Steps.NR_EOH
    | Steps.NR_BODY
    | Steps.NR_HDR
)

# Macro stages for SMFIR_SETSYMLIST (SMFIM_*).
STAGE_CONNECT, STAGE_HELO, STAGE_MAIL, STAGE_RCPT, STAGE_DATA, STAGE_EOM, STAGE_EOH = range(7)

# What we ask Postfix for. A SETSYMLIST list replaces Postfix's default list for that stage, so each
# list names everything we read there.
DEFAULT_MACROS: Mapping[int, str] = {
    STAGE_CONNECT: "j {daemon_name} {daemon_addr} {client_addr} {client_name} {client_ptr} _",
    STAGE_HELO: "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
    STAGE_MAIL: "i {auth_type} {auth_authen} {auth_author} {mail_addr}",
    STAGE_RCPT: "i {rcpt_addr}",
    STAGE_DATA: "i",
    STAGE_EOH: "i",
    STAGE_EOM: "i",
}


# --- events (MTA -> filter) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionNegotiation:
    version: int
    actions: Actions
    steps: Steps


@dataclass(frozen=True, slots=True)
class Connect:
    hostname: str
    family: str  # "4", "6", "L" (unix), "U" (unknown)
    port: int
    address: str


@dataclass(frozen=True, slots=True)
class Helo:
    name: str


@dataclass(frozen=True, slots=True)
class MailFrom:
    address: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RcptTo:
    address: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Data:
    pass


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class EndOfHeaders:
    pass


@dataclass(frozen=True, slots=True)
class Body:
    size: int  # bytes in this chunk (the core keeps the bytes)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One message as the MTA handed it over."""

    connect: Connect | None
    helo: str | None
    mail_from: str | None
    rcpt_to: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes
    macros: Mapping[str, str]  # names without braces: "i", "j", "auth_authen", "client_addr"
    truncated: bool = False

    def macro(self, name: str) -> str | None:
        return self.macros.get(name.strip("{}"))

    def raw_message(self, leading_space: bool = False) -> bytes:
        """The message with CRLF line ends, as it would be on the wire (headers, blank line, body)."""
        out = bytearray()
        for name, value in self.headers:
            v = value if leading_space else " " + value
            v = v.replace("\r\n", "\n").replace("\n", "\r\n")
            out += f"{name}:{v}\r\n".encode("utf-8", "surrogateescape")
        out += b"\r\n"
        out += self.body
        return bytes(out)


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class Abort:
    pass


@dataclass(frozen=True, slots=True)
class Unknown:
    command: str


@dataclass(frozen=True, slots=True)
class Quit:
    new_connection: bool = False  # SMFIC_QUIT_NC: keep the socket, expect a new OPTNEG-less session


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    pass


MilterEvent = (
    OptionNegotiation
    | Connect
    | Helo
    | MailFrom
    | RcptTo
    | Data
    | Header
    | EndOfHeaders
    | Body
    | EndOfMessage
    | Abort
    | Unknown
    | Quit
    | ConnectionClosed
)


# --- replies and modifications (filter -> MTA) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Continue:
    pass


@dataclass(frozen=True, slots=True)
class Accept:
    pass


@dataclass(frozen=True, slots=True)
class Discard:
    pass


@dataclass(frozen=True, slots=True)
class TempFail:
    pass


@dataclass(frozen=True, slots=True)
class Reject:
    pass


@dataclass(frozen=True, slots=True)
class ReplyCode:
    """A reply with SMTP text, e.g. ReplyCode("550", "5.7.1", "spam") or ("451", "4.7.1", "later")."""

    code: str
    status: str
    text: str

    def __post_init__(self) -> None:
        if len(self.code) != 3 or not self.code.isdigit() or self.code[0] not in "45":
            raise LocalProtocolError(f"milter reply code must be 4xx or 5xx, got {self.code!r}")
        if self.status and self.status[0] != self.code[0]:
            raise LocalProtocolError(f"status {self.status!r} does not match code {self.code!r}")


MilterReply = Continue | Accept | Discard | TempFail | Reject | ReplyCode


@dataclass(frozen=True, slots=True)
class AddHeader:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class InsertHeader:
    index: int  # 0 = at the top
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class ChangeHeader:
    name: str
    index: int  # 1 = the first header of that name
    value: str  # empty = delete


@dataclass(frozen=True, slots=True)
class Quarantine:
    reason: str


Modification = AddHeader | InsertHeader | ChangeHeader | Quarantine

_NEEDED_ACTION = {
    AddHeader: Actions.ADDHDRS,
    InsertHeader: Actions.ADDHDRS,
    ChangeHeader: Actions.CHGHDRS,
    Quarantine: Actions.QUARANTINE,
}


def _clean(text: str, limit: int = 900) -> str:
    """One line of printable text; SMTP reply text and header values must not inject lines."""
    out = "".join(c if c >= " " and c != "\x7f" else " " for c in text)
    return " ".join(out.split())[:limit]


def _cstr(text: str) -> bytes:
    return text.encode("utf-8", "replace").replace(b"\0", b" ") + b"\0"


def packet(cmd: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data) + 1) + cmd + data


def _split_strings(data: bytes) -> list[str]:
    """NUL-terminated strings; a missing final NUL is tolerated (some MTAs), never a crash."""
    if data.endswith(b"\0"):
        data = data[:-1]
    if not data:
        return []
    return [s.decode("utf-8", "replace") for s in data.split(b"\0")]


class MilterConnection:
    """One MTA connection. `next_event()` yields events; the caller answers those that expect it."""

    def __init__(
        self,
        actions: Actions = Actions.ADDHDRS | Actions.CHGHDRS | Actions.QUARANTINE | Actions.SETSYMLIST,
        macros: Mapping[int, str] | None = None,
        max_packet: int = DEFAULT_MAX_PACKET,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE,
        no_reply: Steps = NO_REPLY_STEPS,
    ) -> None:
        self.no_reply = no_reply
        self.wanted_actions = actions
        self.wanted_macros = DEFAULT_MACROS if macros is None else macros
        self.max_packet = max_packet
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()
        self._eof = False
        self._closed_sent = False
        self.version = 0
        self.actions = Actions(0)  # negotiated
        self.steps = Steps(0)  # negotiated (what the MTA will leave out or not wait for)
        self._negotiated = False
        self._awaiting: str | None = None  # the command whose reply is due
        self._macros: dict[str, str] = {}
        self._reset_connection()

    # -- state ------------------------------------------------------------------------------------

    def _reset_connection(self) -> None:
        self._connect: Connect | None = None
        self._helo: str | None = None
        self._macros = {}
        self._reset_message()

    def _reset_message(self) -> None:
        self._mail_from: str | None = None
        self._rcpts: list[str] = []
        self._headers: list[tuple[str, str]] = []
        self._body = bytearray()
        self._size = 0
        self._truncated = False

    @property
    def awaiting_reply(self) -> bool:
        return self._awaiting is not None

    @property
    def in_message(self) -> bool:
        """A message has started (MAIL seen) and not ended: shutdown waits for these."""
        return self._mail_from is not None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    # -- input ------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data after end of input")
            return
        if not data:
            self._eof = True
            return
        self._buf += data

    def next_event(self) -> MilterEvent | _NeedData:
        if self._awaiting is not None:
            # The MTA waits for our reply before it sends more; anything else is a bug on our side.
            raise LocalProtocolError(f"reply to {self._awaiting!r} still due")
        buf = self._buf
        while True:  # macro packets are state, not events: read on past them
            if len(buf) < 4:
                return self._need(bool(buf))
            (length,) = struct.unpack_from(">I", buf)
            if length == 0:
                raise RemoteProtocolError("milter packet with length 0")
            if length > self.max_packet:
                raise RemoteProtocolError(f"milter packet of {length} bytes exceeds {self.max_packet}")
            if len(buf) < 4 + length:
                return self._need(True)
            cmd = chr(buf[4])
            data = bytes(buf[5 : 4 + length])
            del buf[: 4 + length]
            event = self._dispatch(cmd, data)
            if event is not None:
                return event

    def _need(self, partial: bool) -> _NeedData | ConnectionClosed:
        if not self._eof:
            return NEED_DATA
        if partial:
            raise RemoteProtocolError("connection closed in the middle of a milter packet")
        if self._closed_sent:
            raise LocalProtocolError("next_event after ConnectionClosed")
        self._closed_sent = True
        return ConnectionClosed()

    def _expect_reply(self, cmd: str, no_reply_step: Steps | None) -> None:
        if no_reply_step is None or not (self.steps & no_reply_step):
            self._awaiting = cmd

    def _dispatch(self, cmd: str, data: bytes) -> MilterEvent | None:
        if cmd == "O":
            if len(data) < 12:
                raise RemoteProtocolError("option negotiation packet shorter than 12 bytes")
            version, actions, steps = struct.unpack_from(">III", data)
            if version < 2:
                raise RemoteProtocolError(f"milter protocol version {version} is too old")
            self._negotiated = True
            self._offered = OptionNegotiation(version, Actions(actions), Steps(steps))
            self._awaiting = "O"
            return self._offered
        if not self._negotiated:
            raise RemoteProtocolError(f"command {cmd!r} before option negotiation")
        if cmd == "D":
            if not data:
                raise RemoteProtocolError("empty macro packet")
            strings = _split_strings(data[1:])
            for i in range(0, len(strings) - 1, 2):
                self._macros[strings[i].strip("{}")] = strings[i + 1]
            if len(self._macros) > 1000:
                raise RemoteProtocolError("more than 1000 macros")
            return None
        if cmd == "C":
            host, sep, rest = data.partition(b"\0")
            if not sep or not rest:
                raise RemoteProtocolError("connect packet without address family")
            family = chr(rest[0])
            port, address = 0, ""
            if family in "46L":
                if len(rest) < 3:
                    raise RemoteProtocolError("connect packet without port")
                (port,) = struct.unpack_from(">H", rest, 1)
                address = rest[3:].rstrip(b"\0").decode("utf-8", "replace")
            elif family != "U":
                raise RemoteProtocolError(f"unknown address family {family!r}")
            self._reset_connection_keep_macros()
            self._connect = Connect(host.decode("utf-8", "replace"), family, port, address)
            self._expect_reply("C", Steps.NR_CONN)
            return self._connect
        if cmd == "H":
            strings = _split_strings(data)
            self._helo = strings[0] if strings else ""
            self._expect_reply("H", Steps.NR_HELO)
            return Helo(self._helo)
        if cmd == "M":
            strings = _split_strings(data)
            if not strings:
                raise RemoteProtocolError("MAIL packet without sender")
            self._reset_message()
            self._mail_from = strings[0]
            self._expect_reply("M", Steps.NR_MAIL)
            return MailFrom(strings[0], tuple(strings[1:]))
        if cmd == "R":
            strings = _split_strings(data)
            if not strings:
                raise RemoteProtocolError("RCPT packet without recipient")
            if len(self._rcpts) < 10_000:
                self._rcpts.append(strings[0])
            self._expect_reply("R", Steps.NR_RCPT)
            return RcptTo(strings[0], tuple(strings[1:]))
        if cmd == "T":
            self._expect_reply("T", Steps.NR_DATA)
            return Data()
        if cmd == "L":
            strings = _split_strings(data)
            if len(strings) < 1 or not strings[0]:
                raise RemoteProtocolError("header packet without a name")
            name, value = strings[0], (strings[1] if len(strings) > 1 else "")
            self._add_size(len(data))
            if not self._truncated and len(self._headers) < 10_000:
                self._headers.append((name, value))
            self._expect_reply("L", Steps.NR_HDR)
            return Header(name, value)
        if cmd == "N":
            self._expect_reply("N", Steps.NR_EOH)
            return EndOfHeaders()
        if cmd == "B":
            self._add_body(data)
            self._expect_reply("B", Steps.NR_BODY)
            return Body(len(data))
        if cmd == "E":
            if data:
                self._add_body(data)
            tx = Transaction(
                self._connect,
                self._helo,
                self._mail_from,
                tuple(self._rcpts),
                tuple(self._headers),
                bytes(self._body),
                dict(self._macros),
                self._truncated,
            )
            self._awaiting = "E"
            self._reset_message()
            return EndOfMessage(tx)
        if cmd == "A":
            self._reset_message()
            return Abort()
        if cmd == "Q":
            return Quit(False)
        if cmd == "K":
            self._reset_connection()
            return Quit(True)
        if cmd == "U":
            strings = _split_strings(data)
            self._expect_reply("U", Steps.NR_UNKN)
            return Unknown(strings[0] if strings else "")
        raise RemoteProtocolError(f"unknown milter command {cmd!r}")

    def _reset_connection_keep_macros(self) -> None:
        # CONNECT's macros arrive just before it: keep them, forget the previous session's others.
        macros = self._macros
        self._reset_connection()
        self._macros = macros

    def _add_size(self, n: int) -> None:
        self._size += n
        if self._size > self.max_message_bytes:
            self._truncated = True

    def _add_body(self, data: bytes) -> None:
        room = self.max_message_bytes - self._size
        self._add_size(len(data))
        if room > 0:
            self._body += data[:room]

    # -- output -----------------------------------------------------------------------------------

    def negotiate(self) -> bytes:
        """The answer to OPTNEG: our version, the actions we use (of those offered), macro lists."""
        if self._awaiting != "O":
            raise LocalProtocolError("negotiate() without a pending option negotiation")
        self._awaiting = None
        offered = self._offered
        self.version = min(MILTER_VERSION, offered.version)
        self.actions = self.wanted_actions & offered.actions
        # We want every event but decide only at end of message: ask the MTA not to wait for replies
        # to the others (fewer round trips for every SMTP session), and not to send unknown commands.
        self.steps = (Steps.NOUNKNOWN | self.no_reply) & offered.steps
        data = struct.pack(">III", self.version, int(self.actions), int(self.steps))
        if self.actions & Actions.SETSYMLIST:
            for stage, names in sorted(self.wanted_macros.items()):
                data += struct.pack(">I", stage) + _cstr(names)
        return packet(b"O", data)

    def send(self, reply: MilterReply) -> bytes:
        """The reply to the pending event (Continue for most; any reply for the end of message)."""
        if self._awaiting is None:
            raise LocalProtocolError("reply sent with no event waiting for one")
        if self._awaiting == "O":
            raise LocalProtocolError("option negotiation is answered with negotiate()")
        self._awaiting = None
        return _reply_bytes(reply)

    def end_of_message(self, modifications: Sequence[Modification], reply: MilterReply) -> bytes:
        """Modifications (each allowed by the negotiated actions) then the final reply."""
        if self._awaiting != "E":
            raise LocalProtocolError("end_of_message() outside end of message")
        out = bytearray()
        for m in modifications:
            needed = _NEEDED_ACTION[type(m)]
            if not self.actions & needed:
                raise LocalProtocolError(f"{type(m).__name__} needs the {needed!r} action, not negotiated")
            out += _modification_bytes(m)
        self._awaiting = None
        out += _reply_bytes(reply)
        return bytes(out)


def _reply_bytes(reply: MilterReply) -> bytes:
    if isinstance(reply, Continue):
        return packet(b"c")
    if isinstance(reply, Accept):
        return packet(b"a")
    if isinstance(reply, Discard):
        return packet(b"d")
    if isinstance(reply, TempFail):
        return packet(b"t")
    if isinstance(reply, Reject):
        return packet(b"r")
    # '%' would be expanded by the MTA's formatting; double it as libmilter's smfi_setreply asks.
    text = _clean(reply.text, 400).replace("%", "%%")
    line = " ".join(p for p in (reply.code, reply.status, text) if p)
    return packet(b"y", _cstr(line))


def _header_value(value: str) -> str:
    """Keep folding (libmilter's convention is LF + whitespace), and nothing that starts a new header."""
    lines = value.replace("\r\n", "\n").split("\n")
    cleaned = [_clean(line, 8000) for line in lines]
    return "\n\t".join(c for c in cleaned if c)[:16000]


def _modification_bytes(m: Modification) -> bytes:
    if isinstance(m, AddHeader):
        return packet(b"h", _cstr(_clean(m.name, 200)) + _cstr(_header_value(m.value)))
    if isinstance(m, InsertHeader):
        return packet(b"i", struct.pack(">I", m.index) + _cstr(_clean(m.name, 200)) + _cstr(_header_value(m.value)))
    if isinstance(m, ChangeHeader):
        return packet(b"m", struct.pack(">I", m.index) + _cstr(_clean(m.name, 200)) + _cstr(_header_value(m.value)))
    return packet(b"q", _cstr(_clean(m.reason, 400)))


# --- the MTA side, for tests and the bench --------------------------------------------------------


@dataclass
class MtaSide:
    """Build the packets an MTA sends and parse a filter's replies (tests, bench, fuzzing)."""

    version: int = 6
    actions: Actions = Actions.ADDHDRS | Actions.CHGHDRS | Actions.QUARANTINE | Actions.SETSYMLIST
    steps: Steps = Steps.NOUNKNOWN | Steps.NR_HDR | Steps.SKIP
    replies: list[tuple[str, bytes]] = field(default_factory=list)
    _buf: bytearray = field(default_factory=bytearray)

    def optneg(self) -> bytes:
        return packet(b"O", struct.pack(">III", self.version, int(self.actions), int(self.steps)))

    @staticmethod
    def macro(stage_cmd: str, macros: Mapping[str, str]) -> bytes:
        data = stage_cmd.encode() + b"".join(_cstr(k) + _cstr(v) for k, v in macros.items())
        return packet(b"D", data)

    @staticmethod
    def connect(host: str, address: str, port: int = 25, family: str = "4") -> bytes:
        return packet(b"C", _cstr(host) + family.encode() + struct.pack(">H", port) + _cstr(address))

    @staticmethod
    def helo(name: str) -> bytes:
        return packet(b"H", _cstr(name))

    @staticmethod
    def mail(addr: str, *args: str) -> bytes:
        return packet(b"M", b"".join(_cstr(a) for a in (addr, *args)))

    @staticmethod
    def rcpt(addr: str, *args: str) -> bytes:
        return packet(b"R", b"".join(_cstr(a) for a in (addr, *args)))

    @staticmethod
    def header(name: str, value: str) -> bytes:
        return packet(b"L", _cstr(name) + _cstr(value))

    @staticmethod
    def simple(cmd: str, data: bytes = b"") -> bytes:
        return packet(cmd.encode(), data)

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        """Parse filter replies; returns (command, data) pairs completed so far."""
        self._buf += data
        out = []
        while len(self._buf) >= 4:
            (n,) = struct.unpack_from(">I", self._buf)
            if len(self._buf) < 4 + n:
                break
            out.append((chr(self._buf[4]), bytes(self._buf[5 : 4 + n])))
            del self._buf[: 4 + n]
        self.replies.extend(out)
        return out
