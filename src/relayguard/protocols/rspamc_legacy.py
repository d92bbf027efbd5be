"""Rspamd's legacy line protocol (`CHECK RSPAMC/1.3`), as Exim's `spamd_address = ... variant=rspamd` speaks it.

Framing is spamd's (see `spamd.SpamdConnection`, which recognises `RSPAMC/x.y`); this module maps the
request headers Exim sends (Queue-Id, From, Recipient-Number, Rcpt, Helo, Hostname, IP, User) and
writes the reply Exim parses with
`sscanf("RSPAMD/%7s 0 EX_OK\\r\\nMetric: default; %7s %lf / %lf / %lf\\r\\n%n")` then `Action: `:

    RSPAMD/1.3 0 EX_OK
    Metric: default; True; 16.20 / 15.00 / 15.00
    Action: reject
    Symbol: NAME(1.50); option1,option2
    Message-ID: <...>

Exim does not half-close its side and reads the reply to the end: the server closes after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relayguard.protocols.spamd import Request

COMMANDS = frozenset({"CHECK", "SYMBOLS", "PING"})


@dataclass(frozen=True, slots=True)
class LegacyEnvelope:
    queue_id: str | None
    mail_from: str | None
    rcpt_to: tuple[str, ...]
    helo: str | None
    hostname: str | None
    ip: str | None
    user: str | None


def _addr(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip().strip("<>")


def envelope(request: Request) -> LegacyEnvelope:
    return LegacyEnvelope(
        queue_id=request.header("Queue-Id"),
        mail_from=_addr(request.header("From")),
        rcpt_to=tuple(a for a in (_addr(r) for r in request.header_all("Rcpt")) if a is not None)[:10_000],
        helo=request.header("Helo"),
        hostname=request.header("Hostname"),
        ip=request.header("IP"),
        user=request.header("User"),
    )


def _line(text: str) -> str:
    return " ".join("".join(c if c >= " " else " " for c in text).split())


def check_reply(
    spam: bool, score: float, required: float, reject: float, action: str,
    symbols: Mapping[str, tuple[float, Sequence[str]]], message_id: str | None = None,
) -> bytes:  # fmt: skip
    lines = [
        "RSPAMD/1.3 0 EX_OK",
        f"Metric: default; {'True' if spam else 'False'}; {score:.2f} / {required:.2f} / {reject:.2f}",
        f"Action: {_line(action)}",
    ]
    for name, (sym_score, options) in symbols.items():
        opts = ",".join(_line(o) for o in options)
        lines.append(f"Symbol: {_line(name)}({sym_score:.2f})" + (f"; {opts}" if opts else ""))
    if message_id:
        lines.append(f"Message-ID: {_line(message_id)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")


def pong_reply() -> bytes:
    return b"RSPAMD/1.3 0 PONG\r\n\r\n"


def error_reply(code: int, text: str) -> bytes:
    return f"RSPAMD/1.3 {code} {_line(text)}\r\n\r\n".encode()
