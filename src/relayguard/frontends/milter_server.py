"""asyncio milter server: the whole pipeline at end of message, the verdict as milter actions.

Verdict action -> milter reply (docs/frontends.md has the table):
  no action, greylist, add header -> accept, with the result headers added
  rewrite subject                 -> accept, Subject prefixed, result headers added
  soft reject                     -> 451 4.7.1 (the client keeps the message and retries)
  reject                          -> 550 5.7.1 with the verdict's text
  quarantine                      -> SMFIR_QUARANTINE: Postfix puts the message in its hold queue
  discard                         -> SMFIR_DISCARD
A failure to scan answers per `fail_mode`: 451 4.3.0 (tempfail) or accept without headers. Never a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from dataclasses import dataclass, field

from relayguard.core.actions import Action
from relayguard.frontends.listen import InFlight
from relayguard.frontends.result_headers import result_headers, spam_threshold
from relayguard.frontends.scan import ScanFailed, Scanner
from relayguard.frontends.settings import FailMode, MilterSettings
from relayguard.message.facts import Envelope
from relayguard.protocols import milter as m
from relayguard.protocols.errors import NEED_DATA, ProtocolError
from relayguard.scoring.verdict import Verdict

log = logging.getLogger("relayguard.frontends.milter")

# Texts from configuration may carry their own enhanced status code ("5.7.1 blocked ..."); it must
# not be sent twice, and it wins over the default when its class matches the reply's.
_ENHANCED = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}(?=\s)")


def _reply(code: str, status: str, text: str) -> m.ReplyCode:
    found = _ENHANCED.match(text)
    if found is not None:
        rest = text[found.end() :].strip()
        if found.group(1) == code[0] and rest:
            return m.ReplyCode(code, found.group(0), rest)
    return m.ReplyCode(code, status, text)


TEMPFAIL_REPLY = m.ReplyCode("451", "4.3.0", "Temporary failure in message scanning, try again later")
# Headers we add; a copy the client sent in is removed so a forged one cannot pass for ours.
OUR_HEADERS = ("X-Spamd-Result", "X-Spam-Status", "X-Spam-Flag")


def envelope_of(tx: m.Transaction) -> Envelope:
    conn = tx.connect
    client_ip = tx.macro("client_addr") or (conn.address if conn and conn.family in "46" else None)
    rdns = tx.macro("client_name") or (conn.hostname if conn else None)
    if rdns and rdns.startswith("[") and rdns.endswith("]"):
        rdns = None  # Postfix's "[address]" form means: no reverse name
    return Envelope(
        mail_from=(tx.mail_from or "").strip("<>") if tx.mail_from is not None else None,
        rcpt_to=tuple(r.strip("<>") for r in tx.rcpt_to),
        helo=tx.helo,
        client_ip=client_ip,
        client_rdns=rdns,
        sasl_username=tx.macro("auth_authen") or None,
        queue_id=tx.macro("i"),
        relay=tx.macro("j"),
        protocol="milter",
    )


def verdict_reply(
    verdict: Verdict,
    tx: m.Transaction,
    settings: MilterSettings,
    subject_prefix: str,
    hostname: str,
    spam_required: float | None = None,
) -> tuple[list[m.Modification], m.MilterReply]:
    env_user = tx.macro("auth_authen") or None
    mods: list[m.Modification] = []
    authserv = settings.authserv_id or tx.macro("j") or hostname
    if settings.add_headers:
        # Remove copies of our headers (and A-R claiming our authserv-id) the sender put in.
        counts: dict[str, int] = {}
        removals: list[m.Modification] = []
        for name, value in tx.headers:
            key = name.lower()
            counts[key] = counts.get(key, 0) + 1
            forged = key in {h.lower() for h in OUR_HEADERS} or (
                key == "authentication-results" and value.strip().lower().startswith(authserv.lower())
            )
            if forged:
                removals.append(m.ChangeHeader(name, counts[key], ""))
        # Delete from the last to the first so earlier indexes stay valid.
        mods.extend(reversed(removals))
        hdrs = result_headers(verdict, authserv, env_user, spam_required)
        # Authentication-Results goes on top (RFC 8601 §5: above the trace headers it describes).
        for name, value in hdrs:
            if name == "Authentication-Results":
                mods.append(m.InsertHeader(0, name, value))
            else:
                mods.append(m.AddHeader(name, value))
    action = verdict.action
    text = verdict.message or ""
    if action is Action.REJECT:
        return mods, _reply("550", "5.7.1", text or "Message rejected as spam")
    if action is Action.SOFT_REJECT:
        return mods, _reply("451", "4.7.1", text or "Try again later")
    if action is Action.DISCARD:
        return [], m.Discard()
    if action is Action.QUARANTINE:
        mods.append(m.Quarantine(text or f"relayguard: score {verdict.score:.2f}"))
        return mods, m.Accept()
    if action is Action.REWRITE_SUBJECT:
        subject = next((v for n, v in tx.headers if n.lower() == "subject"), None)
        if subject is not None:
            mods.append(m.ChangeHeader("Subject", 1, subject_prefix + subject.strip()))
        else:
            mods.append(m.AddHeader("Subject", subject_prefix.strip()))
    return mods, m.Accept()


@dataclass
class MilterService:
    scanner: Scanner
    settings: MilterSettings
    subject_prefix: str = "***SPAM*** "
    idle_timeout: float = 300.0
    inflight: InFlight = field(default_factory=InFlight)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    busy: set[asyncio.StreamWriter] = field(default_factory=set)  # in the middle of a message
    messages: int = 0
    hostname: str = field(default_factory=socket.gethostname)
    stopping: bool = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        conn = m.MilterConnection(max_message_bytes=self.settings.max_message_bytes)
        in_message = False
        try:
            while True:
                event = conn.next_event()
                if event is NEED_DATA:
                    # Replies are written as events come; flush them once per read, not once per event.
                    await writer.drain()
                    if self.stopping and not conn.in_message:
                        return  # shutdown: close between messages, never in the middle of one
                    data = await asyncio.wait_for(reader.read(65536), self.idle_timeout)
                    conn.receive_data(data)
                    continue
                if isinstance(event, m.OptionNegotiation):
                    writer.write(conn.negotiate())
                    log.debug(
                        "milter negotiated: version %d, actions %r, steps %r (MTA offered %r)",
                        conn.version,
                        conn.actions,
                        conn.steps,
                        event.steps,
                    )
                elif isinstance(event, m.MailFrom):
                    if not in_message:
                        self.inflight.begin()
                        self.busy.add(writer)
                        in_message = True
                    if conn.awaiting_reply:
                        writer.write(conn.send(m.Continue()))
                elif isinstance(event, m.EndOfMessage):
                    writer.write(await self._end_of_message(conn, event.transaction))
                    if in_message:
                        self.inflight.end()
                        self.busy.discard(writer)
                        in_message = False
                elif isinstance(event, m.Abort):
                    if in_message:
                        self.inflight.end()
                        self.busy.discard(writer)
                        in_message = False
                elif isinstance(event, m.Quit | m.ConnectionClosed):
                    if isinstance(event, m.Quit) and event.new_connection:
                        continue
                    await writer.drain()
                    return
                elif conn.awaiting_reply:
                    writer.write(conn.send(m.Continue()))
        except ProtocolError as exc:
            log.warning("milter protocol error: %s", exc)
        except TimeoutError:
            log.info("milter connection idle for %.0fs: closed", self.idle_timeout)
        except (ConnectionError, OSError) as exc:
            log.info("milter connection lost: %s", exc)
        finally:
            if in_message:
                self.inflight.end()
            self.busy.discard(writer)
            self.writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _end_of_message(self, conn: m.MilterConnection, tx: m.Transaction) -> bytes:
        self.messages += 1
        env = envelope_of(tx)
        raw = tx.raw_message(leading_space=bool(conn.steps & m.Steps.HDR_LEADSPC))
        try:
            verdict = await self.scanner.scan(raw, env)
            mods, reply = verdict_reply(
                verdict, tx, self.settings, self.subject_prefix, self.hostname,
                spam_threshold(self.scanner.settings.actions),
            )  # fmt: skip
            # Drop what the MTA did not allow us (e.g. an MTA without CHGHDRS): the verdict still applies.
            allowed = [x for x in mods if conn.actions & m._NEEDED_ACTION[type(x)]]
            if len(allowed) != len(mods):
                log.warning(
                    "MTA did not negotiate every action we need; %d modifications dropped", len(mods) - len(allowed)
                )
            log.info("milter %s: %s score=%.2f", env.queue_id or "-", verdict.action, verdict.score)
            return conn.end_of_message(allowed, reply)
        except Exception as exc:
            if not isinstance(exc, ScanFailed):
                log.exception("milter: building the reply failed")
            if self.settings.fail_mode is FailMode.TEMPFAIL:
                return conn.end_of_message([], TEMPFAIL_REPLY)
            return conn.end_of_message([], m.Accept())

    def close_idle(self) -> None:
        for w in list(self.writers - self.busy):
            w.close()

    def close_all(self) -> None:
        for w in list(self.writers):
            w.close()
