"""Verdicts from an Rspamd or SpamAssassin the operator already runs, each as a check.

Each has a time budget (its `timeout`, also applied to every socket operation); when the peer is down,
slow or answers nonsense the check raises and the pipeline emits `RSPAMD_FAIL` / `SPAMD_FAIL`: a
failed lookup is never a silent "ham".
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from relayguard.checks.api import Check, CheckContext, Hit, SymbolDef
from relayguard.message.facts import MessageFacts

GROUP = "external"
_MAX_REPLY = 1 << 20
_SPAM_ACTIONS = {"reject", "add header", "rewrite subject", "soft reject"}


class PeerError(Exception):
    """The peer answered something we cannot use."""


def _score_factor(score: float) -> float:
    # The configured weight (1.0 by default) times the peer's own score; never negative for a spam hit.
    return round(max(score, 0.0), 3)


class RspamdCheck(Check):
    """Rspamd's HTTP protocol: POST /checkv2 with the message, envelope in headers."""

    name = "RSPAMD"
    symbols = (
        SymbolDef("RSPAMD_SPAM", GROUP, "Rspamd says spam (factor: Rspamd's score)"),
        SymbolDef("RSPAMD_HAM", GROUP, "Rspamd says not spam"),
    )

    def __init__(self, url: str, timeout: float = 5.0, client: httpx.AsyncClient | None = None) -> None:
        self.url = url.rstrip("/") + "/checkv2"
        self.timeout = timeout
        self._client = client

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        env = facts.envelope
        headers: dict[str, str] = {}
        if env.client_ip:
            headers["IP"] = env.client_ip
        if env.helo:
            headers["Helo"] = env.helo
        if env.mail_from is not None:
            headers["From"] = env.mail_from
        if env.sasl_username:
            headers["User"] = env.sasl_username
        if env.queue_id:
            headers["Queue-Id"] = env.queue_id
        if env.client_rdns:
            headers["Hostname"] = env.client_rdns
        # Rspamd takes one Rcpt header per recipient; httpx accepts a list of tuples for repeats.
        hlist = list(headers.items()) + [("Rcpt", r) for r in env.rcpt_to]
        async with asyncio.timeout(self.timeout):
            r = await self._http().post(self.url, content=facts.raw, headers=hlist)
        if r.status_code != 200:
            raise PeerError(f"rspamd answered HTTP {r.status_code}")
        return [parse_rspamd_reply(r.content)]


def parse_rspamd_reply(body: bytes) -> Hit:
    if len(body) > _MAX_REPLY:
        raise PeerError("rspamd reply too large")
    try:
        data = json.loads(body)
    except ValueError as e:
        raise PeerError(f"rspamd reply is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise PeerError("rspamd reply is not an object")
    score, required, action = data.get("score"), data.get("required_score"), data.get("action")
    if not isinstance(score, int | float) or isinstance(score, bool) or not isinstance(action, str):
        raise PeerError("rspamd reply without score or action")
    symbols = data.get("symbols")
    top: list[str] = []
    if isinstance(symbols, dict):
        scored = [(float(v.get("score", 0)), str(k)) for k, v in symbols.items()
                  if isinstance(v, dict) and isinstance(v.get("score", 0), int | float)]
        top = [k for s, k in sorted(scored, reverse=True)[:5] if s > 0]
    req = f"/{required}" if isinstance(required, int | float) else ""
    opts = (f"score={score}{req}", f"action={action}", *top)
    if action in _SPAM_ACTIONS:
        return Hit("RSPAMD_SPAM", opts, factor=_score_factor(float(score)))
    return Hit("RSPAMD_HAM", opts)


@dataclass(frozen=True, slots=True)
class SpamdReply:
    is_spam: bool
    score: float
    threshold: float
    symbols: tuple[str, ...]


_STATUS = re.compile(rb"^SPAMD/(\d+)\.(\d+) +(\d+) +(\S.*)$")
_SPAM_HDR = re.compile(rb"^Spam: *(True|False|Yes|No) *; *(-?\d+(?:\.\d+)?) */ *(-?\d+(?:\.\d+)?) *$", re.I)


def parse_spamd_reply(data: bytes) -> SpamdReply:
    """Parse a spamd SYMBOLS reply (status line, headers, blank line, comma-separated symbols)."""
    if len(data) > _MAX_REPLY:
        raise PeerError("spamd reply too large")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    m = _STATUS.match(lines[0]) if lines else None
    if not m:
        raise PeerError("spamd reply without a status line")
    if m.group(3) != b"0":
        raise PeerError(f"spamd error {m.group(3).decode()} {m.group(4).decode('latin-1')[:60]}")
    spam: SpamdReply | None = None
    for line in lines[1:]:
        sm = _SPAM_HDR.match(line.strip())
        if sm:
            spam = SpamdReply(sm.group(1).lower() in (b"true", b"yes"), float(sm.group(2)), float(sm.group(3)), ())
    if spam is None:
        raise PeerError("spamd reply without a Spam: header")
    names = tuple(s.strip() for s in body.decode("latin-1").split(",") if s.strip())
    return SpamdReply(spam.is_spam, spam.score, spam.threshold, names)


def parse_address(text: str) -> tuple[str, int] | str:
    """`host:port`, `[v6]:port` or `unix:/path`."""
    if text.startswith("unix:"):
        return text[5:]
    from relayguard.config.schema import parse_hostport

    return parse_hostport(text, 783)


class SpamdCheck(Check):
    """SpamAssassin's spamd protocol (SPAMC/1.5 SYMBOLS), one connection per message."""

    name = "SPAMD"
    symbols = (
        SymbolDef("SPAMD_SPAM", GROUP, "SpamAssassin says spam (factor: its score)"),
        SymbolDef("SPAMD_HAM", GROUP, "SpamAssassin says not spam"),
    )

    def __init__(self, address: str, timeout: float = 10.0, user: str = "") -> None:
        self.address = parse_address(address)
        self.timeout = timeout
        self.user = user

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        async with asyncio.timeout(self.timeout):
            reply = await self._ask(facts.raw)
        opts = (f"score={reply.score}/{reply.threshold}", *reply.symbols[:8])
        if reply.is_spam:
            return [Hit("SPAMD_SPAM", opts, factor=_score_factor(reply.score))]
        return [Hit("SPAMD_HAM", opts)]

    async def _ask(self, raw: bytes) -> SpamdReply:
        if isinstance(self.address, str):
            reader, writer = await asyncio.open_unix_connection(self.address)
        else:
            reader, writer = await asyncio.open_connection(*self.address)
        try:
            head = f"SYMBOLS SPAMC/1.5\r\nContent-length: {len(raw)}\r\n"
            if self.user:
                head += f"User: {self.user}\r\n"
            writer.write(head.encode() + b"\r\n" + raw)
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            data = await reader.read(_MAX_REPLY + 1)
            while len(data) <= _MAX_REPLY:
                more = await reader.read(_MAX_REPLY + 1 - len(data))
                if not more:
                    break
                data += more
        finally:
            writer.close()
        return parse_spamd_reply(data)
