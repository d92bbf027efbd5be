"""`Containment`: the one object front ends, detection, the CLI and ARF talk to.

* hot path (every message): `decide(customer, message_key)` reads the customer's shared state (one Redis
  round trip; two for a throttled customer) and answers a `FrontEndAction` in every front end's words;
* after the verdict: `record(...)` writes the decision log, counts the message once, adds evidence to an
  open incident;
* detection: `escalate(customer, state, reason, evidence)` (only ever up), fed by `detection.py`;
* operators: `command(kind, customer)` queues release / whitelist / unwhitelist / block / hold /
  throttle / close; every relay's `poll()` applies them (one relay claims the state change, each relay
  releases its own held queue ids);
* ARF (issue 9): `attach_complaint(customer, complaint)`.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from relayguard.containment.commands import Command, CommandQueue
from relayguard.containment.decisions import DecisionLog, DecisionRecord
from relayguard.containment.incidents import (
    Incident,
    IncidentEvent,
    IncidentStore,
    Redaction,
    complaint_data,
    complaint_key,
    evidence_event,
)
from relayguard.containment.listing import Listings, listable
from relayguard.containment.release import Postsuper, release_held
from relayguard.containment.settings import ContainmentSettings
from relayguard.containment.shared_state import SHARED_STATE_FAIL, SharedState, StateRecord
from relayguard.containment.states import (
    Actor,
    ContainmentState,
    FrontEndAction,
    Transition,
    TransitionError,
    action_for,
    log_transition,
    make_transition,
)
from relayguard.core.clock import Clock, SystemClock

log = logging.getLogger("relayguard.containment")

THROTTLE_WINDOW = 3600.0
DECISION_MEMO = 200_000  # customers whose last decision is kept for reuse (cleared when full)

_COMMAND_TARGET = {
    "release": ContainmentState.NORMAL,
    "whitelist": ContainmentState.WHITELISTED,
    "unwhitelist": ContainmentState.NORMAL,
    "block": ContainmentState.BLOCKED,
    "hold": ContainmentState.HELD,
    "throttle": ContainmentState.THROTTLED,
}


class Store(DecisionLog, IncidentStore, CommandQueue, Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Decision:
    customer: str
    state: ContainmentState
    action: FrontEndAction
    symbols: tuple[str, ...] = ()
    since: float = 0.0
    reason: str = ""

    @property
    def degraded(self) -> bool:
        return SHARED_STATE_FAIL.name in self.symbols


@dataclass
class CommandResult:
    command: Command
    applied: bool  # this relay made the state change (claimed it)
    transition: Transition | None = None
    released: list[str] = field(default_factory=list)
    error: str = ""


class Containment:
    def __init__(
        self,
        settings: ContainmentSettings,
        store: Store,
        shared: SharedState,
        *,
        clock: Clock | None = None,
        relay: str = "",
        commands: CommandQueue | None = None,
        postsuper: Postsuper | None = None,
        listings: Listings | None = None,
        on_release: Sequence[Callable[[str], object]] = (),
    ) -> None:
        self.settings = settings
        self.store = store
        self.shared = shared
        self.clock: Clock = clock or SystemClock()
        self.relay = relay or settings.relay or socket.gethostname()
        self.commands: CommandQueue = commands or store
        self.postsuper = postsuper
        self.listings = listings
        self.on_release = list(on_release)
        self.redaction = Redaction(settings.redact_recipients, settings.redact_body, settings.excerpt_chars)
        self.cursor = self._start_cursor()
        # customer -> (the state record a decision was made from, that decision): see decide()
        self._decisions: dict[str, tuple[StateRecord, Decision]] = {}

    def _start_cursor(self) -> int | None:
        """Where this relay's command polling starts: where it stopped last time (commands queued while it
        was down still apply), or, for a relay never seen, at the newest command (not at history).
        None when the queue cannot be read yet (Redis down at start): the first poll that can, decides."""
        try:
            saved = self.commands.get_cursor(self.relay)
            return saved if saved is not None else self.commands.last_command_id()
        except Exception as e:
            log.warning("containment: cannot read the command cursor yet (%s); will retry at the next poll", e)
            return None

    # ------------------------------------------------------------------ hot path

    def decide(self, customer: str, message_key: str = "", t: float | None = None) -> Decision:
        """The action for one message of `customer`. `message_key` identifies the message for the
        throttle allowance (the policy `instance`, a queue id or Message-ID): asked again, it counts once."""
        now = self.clock.now() if t is None else t
        rec, adm = self.shared.lookup(customer, message_key, now, THROTTLE_WINDOW, self.settings.throttle_per_hour)
        degraded = self.shared.degraded
        if adm is None and not degraded:
            # The same state record gives the same decision: reuse it (most customers' record never changes).
            memo = self._decisions.get(customer)
            if memo is not None and memo[0] is rec:
                return memo[1]
        over = adm is not None and not adm.allowed
        s = self.settings
        act = action_for(
            rec.state, over_throttle=over, defer_text=s.defer_text, hold_text=s.hold_text, reject_text=s.reject_text
        )
        d = Decision(customer, rec.state, act, (SHARED_STATE_FAIL.name,) if degraded else (), rec.since, rec.reason)
        if adm is None and not degraded:
            if len(self._decisions) >= DECISION_MEMO:
                self._decisions.clear()
            self._decisions[customer] = (rec, d)
        return d

    # ------------------------------------------------------------------ after the verdict

    def record(self, rec: DecisionRecord, message_key: str = "") -> int:
        """Log one decision; count it once per message; keep counters of an open incident current."""
        rid = self.store.add_decision(rec)
        self.shared.count(rec.customer, self._key(rec, message_key), rec.t, self._amounts(rec))
        self._after_record(rec)
        return rid

    def record_many(self, items: Sequence[tuple[DecisionRecord, str]]) -> None:
        """`record` for a batch: one transaction in the store, one round trip to the shared state."""
        if not items:
            return
        self.store.add_decisions([rec for rec, _ in items])
        self.shared.count_many([(r.customer, self._key(r, k), r.t, self._amounts(r)) for r, k in items])
        for rec, _ in items:
            self._after_record(rec)

    @staticmethod
    def _key(rec: DecisionRecord, message_key: str) -> str:
        return message_key or rec.message_id or (f"{rec.relay}:{rec.queue_id}" if rec.queue_id else "")

    @staticmethod
    def _amounts(rec: DecisionRecord) -> dict[str, int]:
        return {"messages": 1, f"action:{rec.action.lower()}": 1}

    def _after_record(self, rec: DecisionRecord) -> None:
        state = ContainmentState(rec.state) if rec.state else ContainmentState.NORMAL
        if not state.contained:
            return
        counters = self.shared.counters(rec.customer)
        iid = self.store.open_incident_id(rec.customer)
        if iid is not None:
            self.store.update_incident(iid, counters=counters)
        held_limit = self.settings.block_after_held
        if held_limit and state is ContainmentState.HELD:
            n = counters.get("action:hold", 0)
            if n >= held_limit:
                self.escalate(
                    rec.customer, ContainmentState.BLOCKED, f"{n} messages held", {"counters": {"held": n}}, t=rec.t
                )

    def add_evidence(
        self,
        customer: str,
        *,
        t: float | None = None,
        message_id: str = "",
        queue_id: str = "",
        mail_from: str = "",
        rcpt_to: tuple[str, ...] = (),
        subject: str = "",
        body: str = "",
        verdict: str = "",
        action: str = "",
        symbols: tuple[str, ...] = (),
        force: bool = False,
    ) -> bool:
        """Add an evidence message (redacted) to the customer's open incident; False when there is none,
        or it already holds `max_evidence` messages. `force` opens an incident (detection's first proof)."""
        now = self.clock.now() if t is None else t
        iid = self.store.open_incident_id(customer)
        if iid is None:
            if not force:
                return False
            iid = self.store.open_incident(customer, now, self.shared.get_state(customer).state.value, "evidence").id
        if self.store.count_events(iid, "evidence") >= self.settings.max_evidence:
            return False
        ev = evidence_event(
            now,
            redaction=self.redaction,
            message_id=message_id,
            queue_id=queue_id,
            relay=self.relay,
            mail_from=mail_from,
            rcpt_to=rcpt_to,
            subject=subject,
            body=body,
            verdict=verdict,
            action=action,
            symbols=symbols,
        )
        return self.store.add_event(iid, ev)

    # ------------------------------------------------------------------ transitions

    def escalate(
        self,
        customer: str,
        target: ContainmentState,
        reason: str,
        evidence: Mapping[str, Any] | None = None,
        *,
        actor: Actor = Actor.DETECTION,
        t: float | None = None,
    ) -> Transition | None:
        """Move `customer` to `target` if `actor` may; None when not allowed or already there.

        Compare-and-set against the shared state, so racing relays make one transition between them.
        """
        now = self.clock.now() if t is None else t
        for _ in range(8):
            cur = self.shared.get_state(customer)
            try:
                tr = make_transition(customer, cur.state, target, now, actor, reason, dict(evidence or {}), self.relay)
            except TransitionError as e:
                log.debug("containment: customer=%s %s", customer, e)
                return None
            if self.shared.transition(customer, cur.state, target, now, reason):
                self._after(tr)
                return tr
        log.warning("containment: customer=%s state kept changing under us; gave up moving to %s", customer, target)
        return None

    def _after(self, tr: Transition) -> None:
        log_transition(tr)
        self.store.record_state(tr)
        inc: Incident | None
        if tr.new.contained:
            inc = self.store.open_incident(tr.customer, tr.t, tr.new.value, tr.reason)
        else:
            inc = self.store.current_incident(tr.customer)
        if inc is not None:
            self.store.add_event(inc.id, IncidentEvent(tr.t, "transition", tr.to_dict(), tr.relay))
            sprt = tr.evidence.get("sprt")
            self.store.update_incident(
                inc.id,
                state=tr.new.value,
                sprt=sprt if isinstance(sprt, Mapping) else None,
                counters=self.shared.counters(tr.customer),
            )
        if tr.new is ContainmentState.BLOCKED:
            self._list(tr.customer, tr.t, tr.reason, inc)
        elif tr.old is ContainmentState.BLOCKED:
            self._delist(tr.customer, inc, tr.t)
        if tr.new is ContainmentState.NORMAL:
            for fn in self.on_release:
                try:
                    fn(tr.customer)
                except Exception:
                    log.exception("containment: release hook failed for customer=%s", tr.customer)

    # ------------------------------------------------------------------ listing

    def client_addresses(self, customer: str, since: float) -> list[str]:
        seen: dict[str, None] = {}
        for d in self.store.decisions_for(customer, since=since, limit=10_000):
            entry = listable(d.client_ip) if d.client_ip else None
            if entry is not None:
                seen.setdefault(entry, None)
        return list(seen)

    def _list(self, customer: str, t: float, reason: str, inc: Incident | None) -> None:
        s = self.settings
        if self.listings is None or not s.list_on_block:
            return
        addrs = self.client_addresses(customer, t - s.listing_ttl)
        evidence = f"incident:{inc.id}" if inc is not None else ""
        for a in addrs:
            try:
                self.listings.add(
                    s.listing_zone,
                    a,
                    f"relayguard: {customer} blocked: {reason}"[:255],
                    t + s.listing_ttl,
                    s.listing_value,
                    evidence,
                )
            except Exception:
                # listing is for the peers; a failure must not undo the block (the incident says so)
                log.exception("containment: customer=%s could not list %s in %s", customer, a, s.listing_zone)
        if addrs:
            log.warning("containment: customer=%s listed in %s: %s", customer, s.listing_zone, " ".join(addrs))
            if inc is not None:
                self.store.add_event(
                    inc.id,
                    IncidentEvent(
                        t,
                        "action",
                        {
                            "action": "listed",
                            "zone": s.listing_zone,
                            "addresses": addrs,
                            "expires_at": t + s.listing_ttl,
                        },
                        self.relay,
                    ),
                )

    def _delist(self, customer: str, inc: Incident | None, t: float) -> None:
        s = self.settings
        if self.listings is None:
            return
        addrs = self.client_addresses(customer, t - s.listing_ttl)
        for a in addrs:
            try:
                self.listings.remove(s.listing_zone, a)
            except Exception:
                log.exception("containment: customer=%s could not delist %s from %s", customer, a, s.listing_zone)
        if addrs and inc is not None:
            self.store.add_event(
                inc.id,
                IncidentEvent(
                    t, "action", {"action": "delisted", "zone": s.listing_zone, "addresses": addrs}, self.relay
                ),
            )

    # ------------------------------------------------------------------ operators

    def command(
        self,
        kind: str,
        customer: str,
        *,
        actor: str = "operator",
        reason: str = "",
        args: Mapping[str, Any] | None = None,
    ) -> int:
        """Queue a command for every relay; returns its id."""
        cmd = Command(kind, customer, self.clock.now(), actor, reason, dict(args or {}))
        cid = self.commands.push_command(cmd)
        log.info("containment: queued command id=%d %s customer=%s by=%s", cid, kind, customer, actor)
        return cid

    def poll(self, limit: int = 100) -> list[CommandResult]:
        """Apply commands issued since the last poll (call every `poll_interval` seconds)."""
        if self.cursor is None:
            self.cursor = self._start_cursor()
            if self.cursor is None:
                return []
        out = []
        for cmd in self.commands.commands_after(self.cursor, limit):
            self.cursor = max(self.cursor, cmd.id)
            try:
                out.append(self.apply(cmd))
            except Exception as e:  # one bad command must not stop the others
                log.exception("containment: command id=%d %s failed", cmd.id, cmd.kind)
                out.append(CommandResult(cmd, False, error=str(e)))
        if out:
            self.commands.set_cursor(self.relay, self.cursor)
        return out

    def apply(self, cmd: Command) -> CommandResult:
        now = self.clock.now()
        res = CommandResult(cmd, False)
        # The state change is made once for the fleet (claimed); releasing is each relay's own work.
        if self.shared.claim(f"cmd:{cmd.id}:{cmd.t!r}", now):
            res.applied = True
            reason = cmd.reason or f"{cmd.kind} by {cmd.actor}"
            if cmd.kind == "close":
                inc = self._incident_for(cmd)
                if inc is not None and inc.status == "open":
                    self.store.add_event(
                        inc.id,
                        IncidentEvent(
                            now, "action", {"action": "closed", "by": cmd.actor, "reason": cmd.reason}, self.relay
                        ),
                    )
                    self.store.close_incident(inc.id, now)
                    log.info("containment: incident %d of customer=%s closed by %s", inc.id, cmd.customer, cmd.actor)
            elif cmd.kind == "unwhitelist" and not self._whitelisted(cmd.customer):
                pass  # only lifts a whitelisting; never releases a contained customer by accident
            else:
                target = _COMMAND_TARGET[cmd.kind]
                evidence = {"command": cmd.id, "by": cmd.actor}
                res.transition = self.escalate(cmd.customer, target, reason, evidence, actor=Actor.OPERATOR, t=now)
        if cmd.kind == "release" and self.postsuper is not None:
            res.released = release_held(self.store, self.postsuper, cmd.customer, self.relay, now)
            inc = self.store.current_incident(cmd.customer) or self._latest_incident(cmd.customer)
            if inc is not None and res.released:
                self.store.add_event(
                    inc.id,
                    IncidentEvent(
                        now, "action", {"action": "released", "queue_ids": res.released, "by": cmd.actor}, self.relay
                    ),
                )
        return res

    def _whitelisted(self, customer: str) -> bool:
        return self.shared.get_state(customer).state is ContainmentState.WHITELISTED

    def _latest_incident(self, customer: str) -> Incident | None:
        incs = self.store.list_incidents(customer=customer, limit=1)
        return self.store.get_incident(incs[0].id) if incs else None

    def _incident_for(self, cmd: Command) -> Incident | None:
        iid = cmd.args.get("incident")
        if isinstance(iid, int):
            return self.store.get_incident(iid)
        return self.store.current_incident(cmd.customer)

    # ------------------------------------------------------------------ complaints (issue 9)

    def attach_complaint(self, customer: str, complaint: object, t: float | None = None) -> Incident:
        """Attach an abuse complaint (an ARF report object, a dataclass or a mapping) to the customer's
        incident, opening one if needed. Duplicates (same `key`/`id`, or same content) count once.
        `block_after_complaints` distinct complaints block the customer."""
        now = self.clock.now() if t is None else t
        data = complaint_data(complaint)
        key = complaint_key(data)
        inc = self.store.current_incident(customer)
        if inc is None:
            inc = self.store.open_incident(customer, now, self.shared.get_state(customer).state.value, "complaint")
        added = self.store.add_event(inc.id, IncidentEvent(now, "complaint", data, self.relay), dedupe_key=key)
        if added:
            self.shared.count(customer, f"complaint:{key}", now, {"complaints": 1})
            n = self.store.count_events(inc.id, "complaint")
            limit = self.settings.block_after_complaints
            log.warning("containment: customer=%s complaint %d attached to incident %d", customer, n, inc.id)
            if limit and n >= limit:
                self.escalate(customer, ContainmentState.BLOCKED, f"{n} complaints", {"complaints": n}, t=now)
        got = self.store.get_incident(inc.id)
        assert got is not None
        return got

    # ------------------------------------------------------------------ housekeeping

    def purge(self, t: float | None = None) -> int:
        now = self.clock.now() if t is None else t
        return self.store.purge_decisions(now - self.settings.decision_retention)

    def close(self) -> None:
        """Close the store and the listings store (the shared state's connections close with the process)."""
        closer = getattr(self.listings, "close", None)
        if callable(closer):
            closer()
        self.store.close()

    def warm(self) -> int:
        """Copy the store's recorded states into an empty (memory) shared state after a restart."""
        n = 0
        for customer, (state, since) in self.store.states().items():
            cur = self.shared.get_state(customer)
            st = ContainmentState(state)
            if (
                cur.state is ContainmentState.NORMAL
                and st is not ContainmentState.NORMAL
                and self.shared.transition(customer, ContainmentState.NORMAL, st, since, "restored from store")
            ):
                n += 1
        return n
