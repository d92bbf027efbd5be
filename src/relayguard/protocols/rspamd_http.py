"""Rspamd's HTTP protocol v2 (`POST /checkv2`), as a pure mapping: request headers in, JSON reply out.

Request headers (all optional): IP, Helo, Hostname, From, Rcpt (repeatable), User, Queue-Id, Settings-ID,
Deliver-To, Pass. The body is the message. The reply is what `rspamc` and Rspamd's proxy/milter read:
score, required_score, action, symbols (name, score, metric_score, description, options), messages
(`smtp_message`), message-id, thresholds and the `milter` block (add_headers / remove_headers, and
`reject: discard|quarantine`) that Rspamd's proxy turns into milter actions.

No I/O here and no relayguard types beyond plain values: the front end supplies the verdict's numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relayguard.protocols.errors import RemoteProtocolError

MAX_RCPTS = 10_000
MAX_HEADER_VALUE = 2048
KNOWN_HEADERS = ("ip", "helo", "hostname", "from", "rcpt", "user", "queue-id", "settings-id", "deliver-to", "pass")


@dataclass(frozen=True, slots=True)
class CheckRequest:
    ip: str | None = None
    helo: str | None = None
    hostname: str | None = None
    mail_from: str | None = None
    rcpt: tuple[str, ...] = ()
    user: str | None = None
    queue_id: str | None = None
    settings_id: str | None = None
    deliver_to: str | None = None
    pass_all: bool = False


def _one(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = headers.get(name) or headers.get(name.lower())
    if not values:
        return None
    v = values[0].strip()
    if len(v) > MAX_HEADER_VALUE:
        raise RemoteProtocolError(f"header {name} longer than {MAX_HEADER_VALUE}")
    return v or None


def _addr(v: str | None) -> str | None:
    return v.strip().strip("<>") if v is not None else None


def parse_check_headers(headers: Mapping[str, Sequence[str]]) -> CheckRequest:
    """`headers` maps lower-case names to every value sent (HTTP allows repeats: Rcpt does)."""
    rcpts: list[str] = []
    for v in headers.get("rcpt", ()):
        # rspamc sends one Rcpt header per recipient; some clients join them with commas.
        for part in v.split(","):
            a = _addr(part)
            if a and len(a) > MAX_HEADER_VALUE:
                raise RemoteProtocolError(f"recipient longer than {MAX_HEADER_VALUE}")
            if a:
                rcpts.append(a)
            if len(rcpts) > MAX_RCPTS:
                raise RemoteProtocolError(f"more than {MAX_RCPTS} recipients")
    ip = _one(headers, "ip")
    if ip is not None and ip.lower().startswith("ipv6:"):
        ip = ip[5:]
    pass_v = _one(headers, "pass")
    return CheckRequest(
        ip=ip,
        helo=_one(headers, "helo"),
        hostname=_one(headers, "hostname"),
        mail_from=_addr(_one(headers, "from")),
        rcpt=tuple(rcpts),
        user=_one(headers, "user"),
        queue_id=_one(headers, "queue-id"),
        settings_id=_one(headers, "settings-id"),
        deliver_to=_addr(_one(headers, "deliver-to")),
        pass_all=pass_v is not None and pass_v.lower() == "all",
    )


@dataclass(frozen=True, slots=True)
class SymbolOut:
    name: str
    score: float
    description: str = ""
    options: tuple[str, ...] = ()


def milter_block(
    add_headers: Sequence[tuple[str, str]], remove_headers: Sequence[str] = (), reject: str | None = None
) -> dict[str, object]:
    """Rspamd's `milter` reply block. Headers with the same name keep their order (`order` field)."""
    block: dict[str, object] = {}
    adds: dict[str, object] = {}
    for i, (name, value) in enumerate(add_headers):
        entry = {"value": value, "order": i}
        prev = adds.get(name)
        if prev is None:
            adds[name] = entry
        elif isinstance(prev, list):
            prev.append(entry)
        else:
            adds[name] = [prev, entry]
    if adds:
        block["add_headers"] = adds
    if remove_headers:
        # 0 = remove every instance of the header.
        block["remove_headers"] = {name: 0 for name in remove_headers}
    if reject in ("discard", "quarantine"):
        block["reject"] = reject
    return block


def check_reply(
    *, score: float, required_score: float, action: str, symbols: Sequence[SymbolOut],
    thresholds: Mapping[str, float], message_id: str | None = None, smtp_message: str | None = None,
    milter: Mapping[str, object] | None = None, time_real: float = 0.0, skipped: bool = False,
) -> dict[str, object]:  # fmt: skip
    reply: dict[str, object] = {
        "is_skipped": skipped,
        "score": round(score, 3),
        "required_score": round(required_score, 3),
        "action": action,
        "thresholds": {k: round(v, 3) for k, v in thresholds.items()},
        "symbols": {
            s.name: {
                "name": s.name,
                "score": round(s.score, 3),
                "metric_score": round(s.score, 3),
                "description": s.description,
                **({"options": list(s.options)} if s.options else {}),
            }
            for s in symbols
        },
        "messages": {"smtp_message": smtp_message} if smtp_message else {},
        "time_real": round(time_real, 6),
        "milter": dict(milter or {}),
    }
    if message_id is not None:
        reply["message-id"] = message_id.strip("<> ")
    return reply


def error_reply(text: str) -> dict[str, object]:
    return {"error": text}
