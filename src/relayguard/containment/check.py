"""Containment on the pipeline (milter, spamd, HTTP front ends), as Rspamd's ratelimit is split:

* `ContainmentCheck`, a pre-filter that only reads: a throttled (over allowance), held or blocked
  customer's message gets CONTAINMENT_<STATE> with the forced action (soft reject -> milter tempfail,
  quarantine -> milter quarantine / Postfix hold queue, reject -> 550), and SHARED_STATE_FAIL when the
  shared state was unreachable and the decision was made locally;
* `ContainmentUpdater`, after the verdict: the decision log (Message-ID, queue id, relay, customer,
  client, login, verdict, action) and the evidence of an open incident. It cannot change the verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from relayguard.checks.api import Hit, Stage, SymbolDef, SyncCheck, Updater
from relayguard.containment.decider import Identify, default_identify
from relayguard.containment.decisions import DecisionRecord
from relayguard.containment.service import Containment
from relayguard.containment.shared_state import SHARED_STATE_FAIL
from relayguard.containment.states import ContainmentState
from relayguard.core.actions import Action
from relayguard.message.facts import MessageFacts
from relayguard.scoring.verdict import Verdict

log = logging.getLogger("relayguard.containment")

GROUP = "containment"
SYMBOLS = {
    ContainmentState.WATCHED: SymbolDef("CONTAINMENT_WATCHED", GROUP, "The sending customer is being watched"),
    ContainmentState.THROTTLED: SymbolDef("CONTAINMENT_THROTTLED", GROUP, "The sending customer is throttled"),
    ContainmentState.HELD: SymbolDef("CONTAINMENT_HELD", GROUP, "The sending customer's mail is held"),
    ContainmentState.BLOCKED: SymbolDef("CONTAINMENT_BLOCKED", GROUP, "The sending customer is blocked"),
    ContainmentState.WHITELISTED: SymbolDef("CONTAINMENT_WHITELISTED", GROUP, "The sending customer is whitelisted"),
}

# The core action as the decision log spells it (policy-service words, so one vocabulary for all front ends)
POLICY_WORD = {
    Action.QUARANTINE: "HOLD",
    Action.REJECT: "REJECT",
    Action.SOFT_REJECT: "DEFER_IF_PERMIT",
    Action.GREYLIST: "DEFER_IF_PERMIT",
    Action.DISCARD: "DISCARD",
}


def message_key(facts: MessageFacts) -> str:
    env = facts.envelope
    if env.queue_id:
        return f"{env.relay or ''}:{env.queue_id}"
    return facts.header("Message-ID") or ""


class ContainmentCheck(SyncCheck):
    name = "CONTAINMENT"
    stage = Stage.PRE
    symbols = (*SYMBOLS.values(), SHARED_STATE_FAIL)

    def __init__(self, containment: Containment, identify: Identify | None = None) -> None:
        self.containment = containment
        self.identify = identify or default_identify()

    def evaluate(self, facts: MessageFacts) -> Sequence[Hit]:
        env = facts.envelope
        if not env.sasl_username and not env.client_ip:
            return ()  # not an outbound submission (a file scan, an unknown client)
        c = self.containment
        t = c.clock.now()
        d = c.decide(self.identify(env, t), message_key(facts), t)
        hits: list[Hit] = []
        sym = SYMBOLS.get(d.state)
        if sym is not None:
            act = d.action
            hits.append(
                Hit(
                    sym.name,
                    (d.customer, d.reason[:200]) if d.reason else (d.customer,),
                    1.0,
                    act.pipeline,
                    act.text or None,
                )
            )
        if d.degraded:
            hits.append(Hit(SHARED_STATE_FAIL.name, (d.customer,)))
        return hits


class ContainmentUpdater(Updater):
    name = "CONTAINMENT"

    def __init__(self, containment: Containment, identify: Identify | None = None) -> None:
        self.containment = containment
        self.identify = identify or default_identify()

    async def update(self, facts: MessageFacts, verdict: Verdict) -> None:
        env = facts.envelope
        if not env.sasl_username and not env.client_ip:
            return
        c = self.containment
        t = c.clock.now()
        customer = self.identify(env, t)
        state = c.shared.get_state(customer).state
        action = POLICY_WORD.get(verdict.action, "DUNNO")
        symbols = tuple(sorted(verdict.symbols))
        verdict_text = f"{verdict.action.value} score={verdict.score:.2f}"
        c.record(
            DecisionRecord(
                t=t,
                customer=customer,
                action=action,
                # this relayguard's relay name, as the policy path writes it: a release finds held mail by it
                # (the MTA's own {j} name is often the same; one relayguard serves one Postfix)
                relay=c.relay,
                queue_id=env.queue_id or "",
                message_id=facts.header("Message-ID") or "",
                client_ip=env.client_ip or "",
                sasl_username=env.sasl_username or "",
                verdict=verdict_text,
                state=state.value,
                mail_from=env.mail_from or "",
                rcpt_count=len(env.rcpt_to),
                symbols=symbols,
            ),
            message_key=message_key(facts),
        )
        if state.contained or action != "DUNNO":
            c.add_evidence(
                customer,
                t=t,
                message_id=facts.header("Message-ID") or "",
                queue_id=env.queue_id or "",
                mail_from=env.mail_from or "",
                rcpt_to=env.rcpt_to,
                subject=facts.header("Subject") or "",
                body=facts.text or facts.html_text,
                verdict=verdict_text,
                action=action,
                symbols=symbols,
            )
