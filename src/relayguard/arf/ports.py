"""What the ARF code needs from the rest of relayguard, as small Protocols, and the adapters.

The ARF package never imports containment or detection at module level: it codes against these
Protocols, and `adapters_from_settings` wires the real ones (the decision log and incidents of
`relayguard.containment`, the outbound detector and its identity resolver) when they are there.

* `DecisionLookup`: the decision log's three lookups (Message-ID, queue id, client address near a time).
* `IdentityLookup`: who held a client address at a time (leases with history, static assignments):
  the answer for a complaint about a dynamic address that changed hands since.
* `ComplaintSink`: where a matched complaint goes (the customer's incident; detection as evidence).
* `MessageCounts`: messages sent, for complaint rates (optional).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("relayguard.arf")


@dataclass(frozen=True, slots=True)
class Trace:
    """One decision the relay took about one message: who sent it, through which relay, when."""

    customer: str
    t: float
    relay: str = ""
    queue_id: str = ""
    message_id: str = ""
    client_ip: str = ""


class DecisionLookup(Protocol):
    def by_message_id(self, message_id: str) -> Sequence[Trace]: ...

    def by_queue_id(self, queue_id: str, relay: str | None = None) -> Sequence[Trace]: ...

    def by_client(self, client_ip: str, t: float, slack: float) -> Sequence[Trace]:
        """Decisions for this client address within `slack` seconds of `t`, nearest first."""
        ...


class IdentityLookup(Protocol):
    def holder(self, ip: str, t: float) -> str | None:
        """The customer that held `ip` at time `t` (lease or static assignment); None if unknown."""
        ...


class ComplaintSink(Protocol):
    def complaint(self, customer: str, complaint: Any, t: float) -> None:
        """A complaint traced to `customer` (`complaint` is an `ingest.Complaint`)."""
        ...


class MessageCounts(Protocol):
    def messages(self, customer: str, since: float) -> int | None: ...

    def relay_messages(self, relay: str, since: float) -> int | None: ...


# ---------------------------------------------------------------------------------------------------
# Adapters
# ---------------------------------------------------------------------------------------------------


def _trace(rec: Any) -> Trace:
    """A containment DecisionRecord (or anything with its attributes) as a Trace."""
    return Trace(
        customer=str(rec.customer),
        t=float(rec.t),
        relay=str(getattr(rec, "relay", "") or ""),
        queue_id=str(getattr(rec, "queue_id", "") or ""),
        message_id=str(getattr(rec, "message_id", "") or ""),
        client_ip=str(getattr(rec, "client_ip", "") or ""),
    )


class DecisionLogLookup:
    """`relayguard.containment.decisions.DecisionLog` (duck-typed) as a DecisionLookup + MessageCounts."""

    def __init__(self, decision_log: Any) -> None:
        self.log = decision_log

    def by_message_id(self, message_id: str) -> Sequence[Trace]:
        return [_trace(r) for r in self.log.by_message_id(message_id)]

    def by_queue_id(self, queue_id: str, relay: str | None = None) -> Sequence[Trace]:
        return [_trace(r) for r in self.log.by_queue_id(queue_id, relay)]

    def by_client(self, client_ip: str, t: float, slack: float) -> Sequence[Trace]:
        return [_trace(r) for r in self.log.by_client(client_ip, t, slack)]

    def messages(self, customer: str, since: float) -> int | None:
        count = getattr(self.log, "count_decisions", None)
        if count is not None:
            return int(count(customer=customer, since=since))
        fn = getattr(self.log, "decisions_for", None)
        return None if fn is None else len(fn(customer, since, limit=1_000_000))

    def relay_messages(self, relay: str, since: float) -> int | None:
        count = getattr(self.log, "count_decisions", None)
        return None if count is None else int(count(relay=relay, since=since))


class ResolverIdentity:
    """`relayguard.outbound.identity.IdentityResolver` as an IdentityLookup (lease and static only).

    The resolver's last resort (`ip:<addr>`) is not an answer here: a complaint about an address we
    cannot tie to a subscriber stays unmatched rather than inventing a customer.
    """

    def __init__(self, resolver: Any) -> None:
        self.resolver = resolver

    def holder(self, ip: str, t: float) -> str | None:
        from relayguard.message.facts import Envelope

        ident = self.resolver.resolve(Envelope(client_ip=ip), t)
        return str(ident.customer) if ident.source in ("lease", "static") else None


class IncidentSink:
    """Complaints into `Containment.attach_complaint(customer, complaint, t)` (issue 8)."""

    def __init__(self, containment: Any) -> None:
        self.containment = containment

    def complaint(self, customer: str, complaint: Any, t: float) -> None:
        self.containment.attach_complaint(customer, complaint, t)


class DetectorSink:
    """A complaint as strong evidence in the customer's sequential test (OutboundDetector).

    One complaint adds `llr` to the customer's log-likelihood ratio, as a message step would; with
    SPOT's defaults (upper bound ln 99 = 4.6) a complaint and a couple of spam verdicts, or two
    complaints, find the customer compromised.
    """

    def __init__(self, detector: Any, llr: float = 3.0) -> None:
        self.detector = detector
        self.llr = llr

    def complaint(self, customer: str, complaint: Any, t: float) -> None:
        from relayguard.outbound.sprt import Evidence

        d = self.detector
        state = d.store.get(customer) or d.factory.new()
        was = state.compromised
        detail = f"{getattr(complaint, 'feedback_type', 'abuse')} report from {getattr(complaint, 'reporter', '?')}"
        decision = d.sprt.step(state.sprt, t, [Evidence("complaint", self.llr, detail)])
        d.store.put(customer, state)
        if decision.outcome == "compromised" and not was:
            log.warning("customer %s compromised after a complaint: %s", customer, decision.explanation)


class CallbackSink:
    """Any callable(customer, complaint, t) as a sink (tests, plugins)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def complaint(self, customer: str, complaint: Any, t: float) -> None:
        self.fn(customer, complaint, t)
