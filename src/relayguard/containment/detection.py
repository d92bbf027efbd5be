"""From detection (issue 7) to containment: the outbound detector's outcome becomes escalations.

    newly compromised (SPRT crossed its upper bound, or a campaign member)  -> `on_compromised` (held)
    the sender's SPRT at or above half its upper bound                       -> `on_watch` (watched)

Each escalation carries the sequential test's numbers (log-LR, bounds, steps, reason) and the
customer's campaign ids as evidence. Whitelisted customers are never escalated (the state machine
refuses), and escalation never lowers a state.
"""

from __future__ import annotations

from typing import Any

from relayguard.checks.api import Updater
from relayguard.containment.service import Containment
from relayguard.containment.states import ContainmentState, Transition
from relayguard.message.facts import MessageFacts
from relayguard.outbound.detector import OutboundDetector, OutboundUpdater, Outcome, probability_from_verdict
from relayguard.scoring.verdict import Verdict


def sprt_evidence(detector: OutboundDetector, customer: str) -> dict[str, Any]:
    state = detector.state_of(customer)
    p = detector.sprt.params
    ev: dict[str, Any] = {
        "sprt": {
            "upper": round(p.upper, 4),
            "lower": round(p.lower, 4),
            "alpha": p.alpha,
            "beta": p.beta,
            "theta0": p.theta0,
            "theta1": p.theta1,
        }
    }
    if state is not None:
        s = state.sprt
        ev["sprt"].update(
            {
                "llr": round(s.llr, 4),
                "steps": s.steps,
                "restarts": s.restarts,
                "compromised_at": s.compromised_at,
                "reason": s.reason,
            }
        )
        ev["campaigns"] = list(state.campaigns)
        ev["counters"] = {"messages": state.messages}
    return ev


def apply_outcome(containment: Containment, detector: OutboundDetector, outcome: Outcome) -> list[Transition]:
    """Escalate every customer the outcome implicates; returns the transitions made."""
    s = containment.settings
    out: list[Transition] = []
    for customer in outcome.newly_compromised:
        ev = sprt_evidence(detector, customer)
        campaign = outcome.campaign if customer != outcome.identity.customer else None
        reason = f"campaign #{campaign}" if campaign is not None else "sequential test: compromised"
        target = ContainmentState(s.on_campaign if campaign is not None else s.on_compromised)
        tr = containment.escalate(customer, target, reason, ev)
        if tr is not None:
            out.append(tr)
    sender = outcome.identity.customer
    d = outcome.decision
    if (
        s.on_watch == "watched"
        and sender not in outcome.newly_compromised
        and d is not None
        and d.outcome == "continue"
        and d.llr >= d.upper / 2
    ):
        tr = containment.escalate(
            sender, ContainmentState.WATCHED, "sequential test leans compromised", sprt_evidence(detector, sender)
        )
        if tr is not None:
            out.append(tr)
    return out


class EscalatingUpdater(Updater):
    """The outbound detector's after-verdict update followed by containment's escalation, in one updater.

    Use it in place of `OutboundUpdater` when containment is on: the outcome of this very message is
    applied (no shared `last` read by another updater), and the same spam probability feeds the test.
    """

    name = "OUTBOUND"

    def __init__(self, containment: Containment, outbound: OutboundUpdater) -> None:
        self.containment = containment
        self.outbound = outbound

    async def update(self, facts: MessageFacts, verdict: Verdict) -> None:
        o = self.outbound
        p = (
            o.source.spam_probability(facts)
            if o.source is not None
            else probability_from_verdict(verdict, o.add_header)
        )
        outcome = o.detector.observe(facts, p)
        o.last = outcome
        apply_outcome(self.containment, o.detector, outcome)
