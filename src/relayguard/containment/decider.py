"""Containment as a Postfix policy decider (`relayguard.frontends.decider.PolicyDecider`).

Configure Postfix to ask at RCPT and at END-OF-MESSAGE (the queue id is known only there, and a held
message needs it to be released):

    smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:10040, ...
    smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:10040

At RCPT the customer's state gives the action (the first recipient decides for the whole message;
later ones get the same answer). At END-OF-MESSAGE, or at once when the message is refused, the
decision is written to the decision log with the queue id. Whitelisted customers get DUNNO, never OK.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from relayguard.containment.decisions import DecisionRecord
from relayguard.containment.service import Containment, Decision
from relayguard.message.facts import Envelope
from relayguard.outbound.identity import IdentityResolver
from relayguard.protocols.policy import DUNNO, PolicyAction, PolicyReply, PolicyRequest

log = logging.getLogger("relayguard.containment")

Identify = Callable[[Envelope, float], str]

LAST_MEMO = 200_000  # customers whose last pending entry is shared (cleared when full)
_DECIDED_STATES = frozenset({"RCPT", "END-OF-MESSAGE", "DATA"})
_REFUSALS = frozenset({PolicyAction.REJECT, PolicyAction.DEFER_IF_PERMIT, PolicyAction.DEFER})


def envelope_of(request: PolicyRequest) -> Envelope:
    a = request.attrs
    return Envelope(
        mail_from=a.get("sender") or None,
        rcpt_to=(a["recipient"],) if a.get("recipient") else (),
        helo=a.get("helo_name") or None,
        client_ip=a.get("client_address") or None,
        client_rdns=a.get("client_name") or None,
        sasl_username=a.get("sasl_username") or None,
        queue_id=a.get("queue_id") or None,
        protocol="policy",
    )


def default_identify(resolver: IdentityResolver | None = None) -> Identify:
    """The outbound identity (SASL login, lease, static assignment, address) as containment's key."""
    r = resolver or IdentityResolver()
    return lambda env, t: r.resolve(env, t).customer


class Recorder:
    """Writes decisions on a worker thread, so the decision log and counters never delay a reply.

    The queue is bounded; when it is full the caller waits (back-pressure) rather than lose a record:
    a HOLD without its record could not be released by customer.
    """

    def __init__(
        self, containment: Containment, max_queue: int = 10_000, batch: int = 256, linger: float = 0.02
    ) -> None:
        self.containment = containment
        self.batch = batch
        # A batch waits up to `linger` seconds for more records: a commit costs about as much as a dozen
        # rows (SQLite, on the development machine), so a busy relay commits a few dozen times a second
        # rather than once per message; the records are in the log `linger` later at most.
        self.linger = linger
        self.queue: queue.Queue[tuple[DecisionRecord, str] | None] = queue.Queue(max_queue)
        self.thread = threading.Thread(target=self._run, name="containment-recorder", daemon=True)
        self.thread.start()

    def submit(self, rec: DecisionRecord, key: str) -> None:
        self.queue.put((rec, key))

    def _run(self) -> None:
        while True:
            batch: list[tuple[DecisionRecord, str]] = []
            item = self.queue.get()
            stop = item is None
            if item is not None:
                batch.append(item)
            # whatever queues up meanwhile (for up to `linger`) goes in the same transaction and round trip
            deadline = time.monotonic() + self.linger
            while not stop and len(batch) < self.batch:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        break
                    try:
                        more = self.queue.get(timeout=wait)
                    except queue.Empty:
                        break
                if more is None:
                    stop = True
                else:
                    batch.append(more)
            try:
                self.containment.record_many(batch)
            except Exception:
                log.exception("containment: could not record %d decisions", len(batch))
            finally:
                for _ in range(len(batch) + (1 if stop else 0)):
                    self.queue.task_done()
            if stop:
                return

    def flush(self) -> None:
        self.queue.join()

    def close(self, timeout: float = 60.0) -> None:
        """Write everything queued, then stop the thread (idempotent)."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join(timeout)
        if self.thread.is_alive():
            n = self.queue.qsize()
            log.error("containment: decision writer still busy after %.0fs; %d decisions queued", timeout, n)


class ContainmentDecider:
    def __init__(
        self,
        containment: Containment,
        identify: Identify | None = None,
        max_pending: int = 50_000,
        background: bool = False,
        resolver: IdentityResolver | None = None,
    ) -> None:
        self.containment = containment
        r = resolver or IdentityResolver()
        self.identify = identify or default_identify(r)
        # Without a custom `identify`, the hot path asks the resolver directly (no Envelope per message).
        self._resolver = r if identify is None else None
        self.max_pending = max_pending
        # background=True: the END-OF-MESSAGE reply does not wait for the decision-log write
        self.recorder = Recorder(containment) if background else None
        # instance -> (decision, reply, recorded): one decision and one log record per message
        self._pending: OrderedDict[str, tuple[Decision, PolicyReply, bool]] = OrderedDict()
        # customer -> the pending entry of its last message: while the decision is the same object (see
        # Containment.decide), messages share one entry, so a busy relay allocates nothing per message
        # that outlives it (nothing for the garbage collector to walk again and again)
        self._last: dict[str, tuple[Decision, PolicyReply, bool]] = {}

    def _reply(self, d: Decision) -> PolicyReply:
        act = d.action
        if act.policy == "DUNNO":
            return DUNNO
        return PolicyReply(PolicyAction(act.policy), act.text)

    def decide(self, request: PolicyRequest) -> PolicyReply:
        a = request.attrs
        state = a.get("protocol_state", "")
        if state not in _DECIDED_STATES:
            return DUNNO
        instance = a.get("instance", "")
        c = self.containment
        t = c.clock.now()
        pending = self._pending
        known = pending.get(instance) if instance else None
        if known is None:
            login = a.get("sasl_username", "")
            address = a.get("client_address", "")
            if not login and not address:
                return DUNNO  # the request names nobody
            resolver = self._resolver
            if resolver is not None:
                customer = resolver.customer(login, address, t)
            else:
                customer = self.identify(envelope_of(request), t)
            d = c.decide(customer, instance, t)
            last = self._last.get(customer)
            if last is not None and last[0] is d:
                known = last  # the same decision as this customer's last message: share its entry
            else:
                known = (d, self._reply(d), False)
                if len(self._last) >= LAST_MEMO:
                    self._last.clear()
                self._last[customer] = known
            if instance:
                pending[instance] = known
                if len(pending) > self.max_pending:
                    pending.popitem(last=False)
        d, reply, recorded = known
        if state == "END-OF-MESSAGE":
            pending.pop(instance, None)
            if not recorded:
                self._record(request, d, reply, t)
        elif not recorded and reply is not DUNNO and reply.action in _REFUSALS:
            # refused at RCPT: there will be no END-OF-MESSAGE, record now (without a queue id)
            if instance:
                pending[instance] = (d, reply, True)
            self._record(request, d, reply, t)
        return reply

    def flush(self) -> None:
        """Wait until every decision handed to the background writer is in the store."""
        if self.recorder is not None:
            self.recorder.flush()

    def close(self) -> None:
        """Write what is queued and stop the background writer (shutdown: nothing queued is lost)."""
        if self.recorder is not None:
            self.recorder.close()

    def _record(self, request: PolicyRequest, d: Decision, reply: PolicyReply, t: float) -> None:
        a = request.attrs
        try:
            rcpts = int(a.get("recipient_count") or 0)
        except ValueError:
            rcpts = 0
        rec = DecisionRecord(
            t=t,
            customer=d.customer,
            action=reply.action.value,
            relay=self.containment.relay,
            queue_id=a.get("queue_id", ""),
            client_ip=a.get("client_address", ""),
            sasl_username=a.get("sasl_username", ""),
            verdict=f"state={d.state.value}",
            state=d.state.value,
            mail_from=a.get("sender", ""),
            rcpt_count=rcpts,
            symbols=d.symbols,
        )
        if self.recorder is not None:
            self.recorder.submit(rec, request.instance)
            return
        try:
            self.containment.record(rec, message_key=request.instance)
        except Exception:
            # the log is after the decision: failing to write it must not turn into a tempfail
            log.exception("containment: could not record the decision for customer=%s", d.customer)
