"""The ISP's relay in the demo: one decision path, reached two ways.

`build_isp` wires what `relayguard serve` would run at the smarthost, plus detection: the default
content checks and the classifier (inbound network checks left out: the relay's own customers are not
judged by where mail came from on the Internet), containment's pre-filter, and after the verdict the
decision log (`ContainmentUpdater`) and outbound detection feeding containment (`EscalatingUpdater`).

* `EmbeddedRelay` calls that pipeline directly, in process, with the envelope Postfix would report
  and the Received header Postfix would write; its hold queue and delivered mail are dictionaries, and
  it is containment's `Postsuper` (a release moves mail from hold to delivered).
* `PostfixRelay` puts the same pipeline behind relayguard's milter in front of a private Postfix on
  loopback (`demo.postfix`); customers submit over SMTP with SASL from their own 127.0.1.x address; the
  hold queue is Postfix's, a release is `postsuper -H`, and an aiosmtpd sink stands for the Internet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import smtplib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from relayguard.checks.api import Check
from relayguard.config.schema import Settings
from relayguard.containment.check import ContainmentCheck, ContainmentUpdater
from relayguard.containment.decisions import normalise_message_id
from relayguard.containment.detection import EscalatingUpdater
from relayguard.containment.service import Containment
from relayguard.core.actions import Action
from relayguard.demo.world import Customer, Submission, split_message
from relayguard.message.facts import Envelope
from relayguard.message.parse import parse_message
from relayguard.outbound.detector import OutboundDetector, OutboundUpdater
from relayguard.pipeline import Pipeline

log = logging.getLogger("relayguard.demo")

RELAY_HOST = "relay.isp.example"
RELAY_NAME = "relay1"


@dataclass(frozen=True)
class Reply:
    """What the customer's mail client was told."""

    code: int
    text: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.code < 300


class Relay(Protocol):
    mode: str

    async def submit(self, sub: Submission, customer: Customer) -> Reply: ...

    async def settle(self) -> bool:
        """Wait until everything accepted and not held has left the relay; False on timeout."""
        ...

    def delivered(self) -> dict[str, bytes]:
        """Message-ID (normalised) -> the message as it reached the Internet."""
        ...

    def deliveries(self) -> int:
        """How many messages reached the Internet, duplicates counted."""
        ...

    def held_queue_ids(self) -> set[str]: ...

    def close(self) -> None: ...


def relay_pipeline(settings: Settings, containment: Containment, detector: OutboundDetector, verdicts: Any) -> Pipeline:
    from relayguard.app.build import default_checks
    from relayguard.outbound.verdicts import ClassifierVerdicts

    checks: list[Check] = [
        c for c in default_checks(settings) if not type(c).__module__.startswith("relayguard.inbound")
    ]
    if isinstance(verdicts, ClassifierVerdicts):
        # one model and one classify() per message text for the pipeline's check and for detection
        for c in checks:
            if c.name == "CLASSIFIER" and hasattr(c, "classifier"):
                c.classifier = verdicts
    return Pipeline(
        settings,
        [*checks, ContainmentCheck(containment)],
        # the decision log first, so it records the state the message was decided in
        [ContainmentUpdater(containment), EscalatingUpdater(containment, OutboundUpdater(detector, verdicts))],
    )


def postfix_received(customer: Customer, queue_id: str, rcpt: str, t: float) -> bytes:
    """The Received header Postfix writes for an authenticated submission (the embedded relay's stand-in)."""
    return (
        f"Received: from {customer.helo} (unknown [{customer.address}])\n"
        f"\t(Authenticated sender: {customer.login})\n"
        f"\tby {RELAY_HOST} (Postfix) with ESMTPSA id {queue_id}\n"
        f"\tfor <{rcpt}>; {email.utils.formatdate(t)}\n"
    ).encode()


def message_id_of(data: bytes) -> str:
    headers, _ = split_message(data)
    for h in headers:
        name, _, value = h.partition(b":")
        if name.strip().lower() == b"message-id":
            return normalise_message_id(value.decode("latin-1").strip())
    return ""


class EmbeddedRelay:
    mode = "embedded"

    def __init__(self, settings: Settings, pipeline: Pipeline, containment: Containment) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.containment = containment
        self._delivered: dict[str, bytes] = {}
        self.hold: dict[str, bytes] = {}  # queue id -> message
        self._deliveries = 0
        self._n = 0
        containment.postsuper = self

    async def submit(self, sub: Submission, customer: Customer) -> Reply:
        self._n += 1
        qid = f"{self._n:05X}D{sub.seq:04X}"
        raw = postfix_received(customer, qid, sub.rcpt_to[0], time.time()) + sub.data
        env = Envelope(
            mail_from=sub.mail_from,
            rcpt_to=sub.rcpt_to,
            helo=customer.helo,
            client_ip=customer.address,
            client_rdns=None,
            sasl_username=customer.login,
            queue_id=qid,
            relay=RELAY_HOST,
            protocol="ESMTPSA",
        )
        facts = dataclasses.replace(parse_message(raw, self.settings), envelope=env)
        verdict = await self.pipeline.process(facts)
        act = verdict.action
        log.debug("embedded relay: %s from %s: %s score %.2f %s", sub.message_id, customer.login, act.value,
                  verdict.score, " ".join(sorted(verdict.symbols)))  # fmt: skip
        # what relayguard's milter answers Postfix for each action (frontends/milter_server.py): greylist
        # means nothing at end of data and is accepted; discard drops the message (the accounting will say)
        if act is Action.QUARANTINE:
            self.hold[qid] = raw
            return Reply(250, f"2.0.0 Ok: queued as {qid} (on hold)")
        if act is Action.REJECT:
            return Reply(550, f"5.7.1 {verdict.message or 'Message rejected as spam'}")
        if act is Action.SOFT_REJECT:
            return Reply(451, f"4.7.1 {verdict.message or 'Try again later'}")
        if act is Action.DISCARD:
            return Reply(250, f"2.0.0 Ok: queued as {qid}")
        self._deliver(raw)
        return Reply(250, f"2.0.0 Ok: queued as {qid}")

    def _deliver(self, raw: bytes) -> None:
        self._delivered[message_id_of(raw)] = raw
        self._deliveries += 1

    def release(self, queue_ids: Any) -> list[str]:
        """containment's `Postsuper`: held mail leaves, byte for byte as it was held."""
        out = []
        for q in queue_ids:
            raw = self.hold.pop(q, None)
            if raw is not None:
                self._deliver(raw)
                out.append(q)
        return out

    async def settle(self) -> bool:
        return True

    def delivered(self) -> dict[str, bytes]:
        return dict(self._delivered)

    def deliveries(self) -> int:
        return self._deliveries

    def held_queue_ids(self) -> set[str]:
        return set(self.hold)

    def close(self) -> None:
        pass


class _LoopThread:
    """An asyncio loop on its own thread: the milter server there, the submitting clients here."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="demo-milter", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class PostfixRelay:
    mode = "postfix"

    def __init__(self, root: Path, settings: Settings, pipeline: Pipeline, containment: Containment,
                 customers: list[Customer]) -> None:  # fmt: skip
        from relayguard.containment.release import PostsuperCli
        from relayguard.demo.postfix import PostfixInstance, Sink
        from relayguard.frontends.listen import open_stream_server
        from relayguard.frontends.milter_server import MilterService
        from relayguard.frontends.scan import Scanner
        from relayguard.frontends.settings import ListenAddress, MilterSettings

        self.containment = containment
        self.sink = Sink()
        self.loop = _LoopThread()
        self.server: Any = None
        self.pf: Any = None
        try:
            self.sink.start()
            service = MilterService(Scanner(settings, pipeline), MilterSettings())
            self.server = self.loop.run(open_stream_server(ListenAddress("127.0.0.1", 0), service.handle))
            port = int(self.server.sockets[0].getsockname()[1])
            users = {c.login: c.password for c in customers}
            self.pf = PostfixInstance(
                root, self.sink.port, milter=f"inet:127.0.0.1:{port}", users=users, hostname=RELAY_HOST,
                extra={"disable_mime_output_conversion": "yes", "smtp_line_length_limit": "0"},
            )  # fmt: skip
            root.mkdir(parents=True, exist_ok=True)
            self.pf.start()
        except BaseException:
            self.close()
            raise
        containment.postsuper = PostsuperCli(config_dir=str(self.pf.config))

    def _send(self, sub: Submission, customer: Customer) -> Reply:
        try:
            with smtplib.SMTP("127.0.0.1", self.pf.smtp_port, local_hostname=customer.helo,
                              source_address=(customer.address, 0), timeout=60) as s:  # fmt: skip
                s.login(customer.login, customer.password)
                s.sendmail(sub.mail_from, list(sub.rcpt_to), sub.data)
                return Reply(250, "2.0.0 Ok")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = next(iter(e.recipients.values()))
            return Reply(code, text.decode(errors="replace"))
        except smtplib.SMTPResponseException as e:
            err = e.smtp_error
            return Reply(e.smtp_code, err.decode(errors="replace") if isinstance(err, bytes) else str(err))

    async def submit(self, sub: Submission, customer: Customer) -> Reply:
        return await asyncio.to_thread(self._send, sub, customer)

    async def settle(self) -> bool:
        return bool(await asyncio.to_thread(self.pf.wait_queue_empty, 60.0))

    def delivered(self) -> dict[str, bytes]:
        return {message_id_of(m.content): m.content for m in list(self.sink.messages)}

    def deliveries(self) -> int:
        return len(self.sink.messages)

    def held_queue_ids(self) -> set[str]:
        return {str(e["queue_id"]) for e in self.pf.held()}

    def log(self) -> str:
        return str(self.pf.log()) if self.pf is not None else ""

    def close(self) -> None:
        if self.pf is not None:
            self.pf.stop()
        if self.server is not None:
            self.loop.loop.call_soon_threadsafe(self.server.close)
        self.loop.stop()
        self.sink.stop()
