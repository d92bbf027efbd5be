"""SpamAssassin's spamc/spamd protocol (SPAMC/1.0 to 1.5), sans-I/O; shared framing with RSPAMC/1.3.

A request is one line `COMMAND SPAMC/x.y`, then (from 1.1 on) `Name: value` header lines and an empty
line, then the message: `Content-length` bytes of it, or everything up to the client's end of input
when there is no length (old clients). One request per connection: the server answers and closes.
Rspamd's legacy line protocol (`CHECK RSPAMC/1.3`, what Exim's `variant=rspamd` sends) has the same
framing, so this core parses both and reports which one it saw; `rspamc_legacy` writes its replies.

Replies follow spamd 4.0's byte layout exactly (which depends on the command and protocol version;
Exim's parser relies on it). Limits: first line 512 bytes, header block 16 KiB and 255 lines, message
`max_message_bytes` (also after zlib decompression: a small bomb cannot grow past it).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from relayguard.protocols.errors import NEED_DATA, LocalProtocolError, RemoteProtocolError, _NeedData

COMMANDS = frozenset({"CHECK", "SYMBOLS", "REPORT", "REPORT_IFSPAM", "PROCESS", "HEADERS", "PING", "TELL", "SKIP"})
MESSAGE_COMMANDS = COMMANDS - {"PING", "SKIP"}
MAX_FIRST_LINE = 512
MAX_HEADER_BYTES = 16384
MAX_HEADERS = 255


class ExitCode(IntEnum):
    """sysexits.h codes spamd answers with."""

    EX_OK = 0
    EX_USAGE = 64
    EX_DATAERR = 65
    EX_NOUSER = 67
    EX_UNAVAILABLE = 69
    EX_SOFTWARE = 70
    EX_IOERR = 74
    EX_TEMPFAIL = 75
    EX_PROTOCOL = 76
    EX_TIMEOUT = 79


class SpamdProtocolError(RemoteProtocolError):
    """A bad request; `code` is what to answer (the text sent is generic, never this message)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.EX_PROTOCOL) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Request:
    command: str
    protocol: str  # "SPAMC" or "RSPAMC"
    version: tuple[int, int]
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    pass


def _parse_version(text: str) -> tuple[int, int]:
    major, sep, minor = text.partition(".")
    if not sep or not major.isdigit() or not minor.isdigit() or len(major) > 2 or len(minor) > 2:
        raise SpamdProtocolError(f"bad protocol version {text[:20]!r}")
    return int(major), int(minor)


class SpamdConnection:
    """Parses one request (spamd answers one request per connection)."""

    def __init__(self, max_message_bytes: int = 50 << 20) -> None:
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()
        self._eof = False
        self._state = "line"  # line -> headers -> body -> done
        self._command = ""
        self._protocol = ""
        self._version = (0, 0)
        self._headers: list[tuple[str, str]] = []
        self._length: int | None = None
        self._done = False

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data after end of input")
            return
        if not data:
            self._eof = True
            return
        self._buf += data
        limit = self.max_message_bytes + MAX_HEADER_BYTES + MAX_FIRST_LINE
        if len(self._buf) > limit:
            raise SpamdProtocolError(f"more than {limit} bytes sent", ExitCode.EX_DATAERR)

    @property
    def command(self) -> str:
        return self._command

    @property
    def protocol(self) -> str:
        """ "SPAMC" or "RSPAMC" once the first line is read ("" before)."""
        return self._protocol

    def next_event(self) -> Request | ConnectionClosed | _NeedData:
        if self._done:
            raise LocalProtocolError("next_event after the request")
        if self._state == "line":
            i = self._buf.find(b"\n")
            if i < 0:
                if len(self._buf) > MAX_FIRST_LINE:
                    raise SpamdProtocolError("request line too long")
                if self._eof:
                    if self._buf:
                        raise SpamdProtocolError("closed before the end of the request line")
                    self._done = True
                    return ConnectionClosed()
                return NEED_DATA
            if i > MAX_FIRST_LINE:
                raise SpamdProtocolError("request line too long")
            line = bytes(self._buf[:i]).rstrip(b"\r").decode("ascii", "replace")
            del self._buf[: i + 1]
            self._first_line(line)
        if self._state == "headers" and not self._read_headers():
            return NEED_DATA
        if self._state == "body":
            body = self._read_body()
            if body is None:
                return NEED_DATA
            self._done = True
            return Request(self._command, self._protocol, self._version, tuple(self._headers), body)
        raise LocalProtocolError(f"unexpected state {self._state}")  # pragma: no cover

    def _first_line(self, line: str) -> None:
        command, sep, proto = line.partition(" ")
        name, slash, version = proto.strip().partition("/")
        if not sep or not slash or name not in ("SPAMC", "RSPAMC"):
            raise SpamdProtocolError(f"not a spamc request line: {line[:60]!r}")
        self._protocol = name
        self._version = _parse_version(version)
        command = command.upper()
        if name == "SPAMC" and command not in COMMANDS:
            raise SpamdProtocolError(f"unknown command {command[:20]!r}")
        if name == "RSPAMC" and not command.isalpha():
            raise SpamdProtocolError(f"bad command {command[:20]!r}")
        self._command = command
        # SPAMC/1.0 has no headers; PING and SKIP have a header block only from 1.5 on.
        no_headers = name == "SPAMC" and (
            self._version <= (1, 0) or (command in ("PING", "SKIP") and self._version < (1, 5))
        )
        self._state = "body" if no_headers else "headers"
        if no_headers and command in ("PING", "SKIP"):
            self._length = 0

    def _read_headers(self) -> bool:
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                if len(self._buf) > MAX_HEADER_BYTES:
                    raise SpamdProtocolError("header line too long")
                if self._eof:
                    raise SpamdProtocolError("closed during headers")
                return False
            line = bytes(self._buf[:i]).rstrip(b"\r")
            del self._buf[: i + 1]
            if not line:
                break
            if len(self._headers) >= MAX_HEADERS:
                raise SpamdProtocolError("too many headers")
            name, sep, value = line.decode("utf-8", "replace").partition(":")
            if not sep or not name or " " in name:
                raise SpamdProtocolError("header not in 'Name: value' format")
            self._headers.append((name, value.strip()))
        self._state = "body"
        if self._command in ("PING", "SKIP"):
            self._length = 0
            return True
        clen = next((v for k, v in self._headers if k.lower() == "content-length"), None)
        if clen is not None:
            if not clen.isdigit() or len(clen) > 12:
                raise SpamdProtocolError("bad Content-length")
            self._length = int(clen)
            if self._length > self.max_message_bytes:
                raise SpamdProtocolError("message larger than the configured maximum", ExitCode.EX_DATAERR)
        compress = next((v for k, v in self._headers if k.lower() == "compress"), None)
        if compress is not None:
            if compress.strip().lower() != "zlib":
                raise SpamdProtocolError("unsupported Compress")
            if clen is None:
                raise SpamdProtocolError("Compress requires Content-length", ExitCode.EX_UNAVAILABLE)
        return True

    def _read_body(self) -> bytes | None:
        if self._length is not None:
            if len(self._buf) < self._length:
                if self._eof:
                    raise SpamdProtocolError("Content-length mismatch: closed before the whole message")
                return None
            body = bytes(self._buf[: self._length])
            del self._buf[: self._length]
        else:
            if not self._eof:
                if len(self._buf) > self.max_message_bytes:
                    raise SpamdProtocolError("message larger than the configured maximum", ExitCode.EX_DATAERR)
                return None
            body = bytes(self._buf)
            self._buf.clear()
        if any(k.lower() == "compress" for k, _ in self._headers):
            body = self._inflate(body)
        return body

    def _inflate(self, data: bytes) -> bytes:
        d = zlib.decompressobj()
        try:
            out = d.decompress(data, self.max_message_bytes + 1)
        except zlib.error:
            raise SpamdProtocolError("bad zlib data") from None
        if len(out) > self.max_message_bytes or d.unconsumed_tail:
            raise SpamdProtocolError("message larger than the configured maximum", ExitCode.EX_DATAERR)
        return out


# --- replies (spamd 4.0's layout) -----------------------------------------------------------------


def format_score(score: float) -> str:
    return f"{score:.1f}"


def spam_header(command: str, spam: bool, score: float, threshold: float) -> str:
    flag = ("Yes" if spam else "No") if command == "REPORT_IFSPAM" else "True" if spam else "False"
    return f"Spam: {flag} ; {format_score(score)} / {threshold:2.1f}"


def check_reply(
    request: Request, spam: bool, score: float, threshold: float, *,
    symbols: Sequence[str] = (), report: str = "", processed: bytes = b"",
) -> bytes:  # fmt: skip
    """The reply to CHECK / SYMBOLS / REPORT / REPORT_IFSPAM / PROCESS / HEADERS, byte for byte as spamd."""
    cmd, v = request.command, request.version
    hdr = spam_header(cmd, spam, score, threshold).encode()
    if cmd in ("PROCESS", "HEADERS"):
        body = processed
        if cmd == "HEADERS":
            end = body.find(b"\r\n\r\n")
            sep = 4
            if end < 0:
                end, sep = body.find(b"\n\n"), 2
            if end >= 0:
                body = body[: end + sep]
        if v >= (1, 3):
            return b"SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\n%s\r\n\r\n%s" % (len(body), hdr, body)
        if v >= (1, 2):
            return b"SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\n\r\n%s" % (len(body), body)
        return b"SPAMD/1.0 0 EX_OK\r\n" + body
    head = b"SPAMD/1.1 0 EX_OK\r\n"
    if cmd == "CHECK":
        return head + hdr + b"\r\n\r\n"
    if cmd == "SYMBOLS":
        text = ",".join(symbols) + ("\r\n" if v < (1, 3) else "")
    elif cmd == "REPORT" or (cmd == "REPORT_IFSPAM" and spam):
        text = report
    elif cmd == "REPORT_IFSPAM":
        text = ""
    else:
        raise LocalProtocolError(f"check_reply for {cmd}")
    body = text.encode("utf-8", "replace")
    if v >= (1, 3):
        return head + b"Content-length: %d\r\n%s\r\n\r\n%s" % (len(body), hdr, body)
    return head + hdr + b"\r\n\r\n" + body


def pong_reply() -> bytes:
    return b"SPAMD/1.5 0 PONG\r\n"


def tell_reply(did_set: Sequence[str] = (), did_remove: Sequence[str] = ()) -> bytes:
    hdr = ""
    if did_set:
        hdr += "DidSet: " + ",".join(did_set) + "\r\n"
    if did_remove:
        hdr += "DidRemove: " + ",".join(did_remove) + "\r\n"
    return ("SPAMD/1.1 0 EX_OK\r\n" + hdr + "\r\n\r\n").encode()


_ERROR_TEXT: Mapping[ExitCode, str] = {
    ExitCode.EX_PROTOCOL: "Bad header line: (protocol error)",
    ExitCode.EX_DATAERR: "Bad message: (too large or malformed)",
    ExitCode.EX_UNAVAILABLE: "Service Unavailable: (not available)",
    ExitCode.EX_TEMPFAIL: "Temporary failure: (try again later)",
    ExitCode.EX_TIMEOUT: "Timeout: (try again later)",
    ExitCode.EX_SOFTWARE: "Internal error",
}


def error_reply(code: ExitCode) -> bytes:
    """A fixed text per code: nothing of the failure's detail reaches the client."""
    return f"SPAMD/1.0 {int(code)} {_ERROR_TEXT.get(code, 'Error')}\r\n".encode()


def tell_headers(request: Request) -> tuple[str | None, set[str], set[str]]:
    """(Message-class, Set targets, Remove targets) of a TELL request; checked like spamd does."""
    klass = request.header("Message-class")
    if klass is not None and klass not in ("spam", "ham"):
        raise SpamdProtocolError("bad Message-class")
    sets = {s.strip() for v in request.header_all("Set") for s in v.split(",") if s.strip()}
    removes = {s.strip() for v in request.header_all("Remove") for s in v.split(",") if s.strip()}
    for t in sets | removes:
        if t not in ("local", "remote"):
            raise SpamdProtocolError("bad Set/Remove target")
    if sets & removes:
        raise SpamdProtocolError("cannot set and remove the same target")
    if "local" in sets and klass is None:
        raise SpamdProtocolError("Set: local needs Message-class")
    return klass, sets, removes


def encode_request(
    command: str, body: bytes, version: str = "1.5", headers: Mapping[str, str] | None = None,
    protocol: str = "SPAMC",
) -> bytes:  # fmt: skip
    """A request as spamc writes it (tests, bench)."""
    out = f"{command} {protocol}/{version}\r\n"
    hdrs = dict(headers or {})
    if command not in ("PING", "SKIP"):
        hdrs.setdefault("Content-length", str(len(body)))
    for k, v in hdrs.items():
        out += f"{k}: {v}\r\n"
    return out.encode() + b"\r\n" + body
