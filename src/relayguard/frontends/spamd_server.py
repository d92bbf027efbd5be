"""asyncio server for spamc/spamd (SPAMC/1.0-1.5) and Rspamd's legacy `CHECK RSPAMC/1.3` on one port.

The first line says which protocol it is (`... SPAMC/x.y` or `... RSPAMC/x.y`), so both share a port:
point spamc and Exim's default spamd variant, or Exim's `variant=rspamd`, at the same address.

"Spam" here means the verdict's action is one of add header, rewrite subject, soft reject, reject,
quarantine or discard; the threshold reported is the add-header score (the lowest that flags).

Fail modes: when scanning fails, `accept` answers "not spam" (score 0, PROCESS returns the message
unchanged); `tempfail` answers EX_TEMPFAIL (75) so spamc -x / the MTA defers. Never an exception's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field

from relayguard.core.actions import Action
from relayguard.frontends.listen import InFlight
from relayguard.frontends.result_headers import is_spam, result_headers
from relayguard.frontends.result_headers import spam_threshold as actions_threshold
from relayguard.frontends.scan import LearnUnavailable, ScanFailed, Scanner
from relayguard.frontends.settings import FailMode, SpamdSettings
from relayguard.message.facts import Envelope
from relayguard.protocols import rspamc_legacy as legacy
from relayguard.protocols import spamd as sp
from relayguard.protocols.errors import NEED_DATA
from relayguard.scoring.verdict import Verdict

log = logging.getLogger("relayguard.frontends.spamd")


def spam_threshold(scanner: Scanner) -> float:
    return actions_threshold(scanner.settings.actions)


def report_text(verdict: Verdict, hostname: str, threshold: float) -> str:
    lines = [
        f'Spam detection software, running on the system "{hostname}",',
        "has "
        + ("identified this incoming email as possible spam." if is_spam(verdict) else "checked this incoming email."),
        "",
        f"Content analysis details:   ({verdict.score:.1f} points, {threshold:.1f} required)",
        "",
        " pts rule name              description",
        "---- ---------------------- --------------------------------------------------",
    ]
    for name, s in sorted(verdict.symbols.items(), key=lambda kv: -kv[1].score):
        desc = s.description or ""
        if s.options:
            desc = (desc + " [" + ", ".join(s.options[:3]) + "]").strip()
        lines.append(f"{s.score:4.1f} {name:<22} {desc[:60]}")
    return "\r\n".join(lines) + "\r\n"


def processed_message(
    raw: bytes, verdict: Verdict, subject_prefix: str, authserv: str, user: str | None, required: float | None = None
) -> bytes:
    """The message with our result headers on top (and the Subject tagged for rewrite subject)."""
    crlf = b"\r\n" in raw[:4096]
    nl = b"\r\n" if crlf else b"\n"
    if verdict.action is Action.REWRITE_SUBJECT:
        head, sep, body = raw.partition(nl + nl)
        out_lines = []
        done = False
        for line in head.split(nl):
            if not done and line.lower().startswith(b"subject:"):
                line = b"Subject: " + subject_prefix.encode() + line[8:].lstrip()
                done = True
            out_lines.append(line)
        raw = nl.join(out_lines) + sep + body
    added = b""
    for name, value in result_headers(verdict, authserv, user, required):
        value_b = value.replace("\r\n", "\n").replace("\n", "\n").encode("utf-8", "replace")
        added += name.encode() + b": " + value_b.replace(b"\n", nl) + nl
    return added + raw


@dataclass
class SpamdService:
    scanner: Scanner
    settings: SpamdSettings
    subject_prefix: str = "***SPAM*** "
    idle_timeout: float = 300.0
    inflight: InFlight = field(default_factory=InFlight)
    hostname: str = field(default_factory=socket.gethostname)
    requests: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = sp.SpamdConnection(self.settings.max_message_bytes)
        self.inflight.begin()
        try:
            while True:
                try:
                    event = conn.next_event()
                except sp.SpamdProtocolError as exc:
                    log.warning("spamd protocol error: %s", exc)
                    if conn.protocol == "RSPAMC":
                        writer.write(legacy.error_reply(int(exc.code), "protocol error"))
                    else:
                        writer.write(sp.error_reply(exc.code))
                    break
                if event is NEED_DATA:
                    data = await asyncio.wait_for(reader.read(65536), self.idle_timeout)
                    try:
                        conn.receive_data(data)
                    except sp.SpamdProtocolError as exc:
                        log.warning("spamd protocol error: %s", exc)
                        writer.write(sp.error_reply(exc.code))
                        break
                    continue
                if isinstance(event, sp.Request):
                    self.requests += 1
                    reply = await self._answer(event)
                    if reply:
                        writer.write(reply)
                break
            await writer.drain()
        except TimeoutError:
            log.info("spamd client idle for %.0fs: closed", self.idle_timeout)
        except (ConnectionError, OSError) as exc:
            log.info("spamd connection lost: %s", exc)
        finally:
            self.inflight.end()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, req: sp.Request) -> bytes:
        if req.protocol == "RSPAMC":
            return await self._answer_legacy(req)
        if req.command == "PING":
            return sp.pong_reply()
        if req.command == "SKIP":
            return b""
        if req.command == "TELL":
            return self._tell(req)
        threshold = spam_threshold(self.scanner)
        env = Envelope(protocol="spamd")
        try:
            verdict = await self.scanner.scan(req.body, env)
        except ScanFailed:
            if self.settings.fail_mode is FailMode.TEMPFAIL:
                return sp.error_reply(sp.ExitCode.EX_TEMPFAIL)
            return sp.check_reply(req, False, 0.0, threshold, processed=req.body)
        authserv = self.hostname
        return sp.check_reply(
            req, is_spam(verdict), verdict.score, threshold,
            symbols=sorted(verdict.symbols), report=report_text(verdict, self.hostname, threshold),
            processed=processed_message(req.body, verdict, self.subject_prefix, authserv, None, threshold)
            if req.command in ("PROCESS", "HEADERS") else b"",
        )  # fmt: skip

    def _tell(self, req: sp.Request) -> bytes:
        try:
            klass, sets, removes = sp.tell_headers(req)
        except sp.SpamdProtocolError as exc:
            return sp.error_reply(exc.code)
        did_set: list[str] = []
        did_remove: list[str] = []
        try:
            if "local" in sets:
                self.scanner.learn(req.body, klass == "spam")
                did_set.append("local")
            if "local" in removes:
                self.scanner.learn(req.body, None)
                did_remove.append("local")
        except LearnUnavailable:
            return sp.error_reply(sp.ExitCode.EX_UNAVAILABLE)
        except ScanFailed:
            return sp.error_reply(sp.ExitCode.EX_TEMPFAIL)
        # "remote" (reporting to Razor/Pyzor-like networks) does not exist here: not done, not claimed.
        return sp.tell_reply(did_set, did_remove)

    async def _answer_legacy(self, req: sp.Request) -> bytes:
        if req.command == "PING":
            return legacy.pong_reply()
        if req.command not in legacy.COMMANDS:
            return legacy.error_reply(int(sp.ExitCode.EX_PROTOCOL), "unknown command")
        e = legacy.envelope(req)
        env = Envelope(
            mail_from=e.mail_from,
            rcpt_to=e.rcpt_to,
            helo=e.helo,
            client_ip=e.ip,
            client_rdns=e.hostname,
            sasl_username=e.user,
            queue_id=e.queue_id,
            protocol="rspamc",
        )
        reject = self.scanner.settings.actions.reject
        try:
            verdict = await self.scanner.scan(req.body, env)
        except ScanFailed:
            if self.settings.fail_mode is FailMode.TEMPFAIL:
                return legacy.check_reply(False, 0.0, reject, reject, str(Action.SOFT_REJECT), {})
            return legacy.check_reply(False, 0.0, reject, reject, str(Action.NO_ACTION), {})
        symbols = {n: (s.score, s.options) for n, s in sorted(verdict.symbols.items())}
        return legacy.check_reply(
            is_spam(verdict),
            verdict.score,
            verdict.required_score,
            reject,
            str(verdict.action),
            symbols,
        )
