"""Detection (issue 7) into containment: the detector's outcomes become escalations with the SPRT's numbers."""

from __future__ import annotations

from outbound.helpers import facts as base_facts
from relayguard.containment.detection import apply_outcome
from relayguard.containment.service import Containment
from relayguard.containment.states import ContainmentState
from relayguard.core.clock import ManualClock
from relayguard.message.facts import MessageFacts
from relayguard.outbound.detector import OutboundDetector
from relayguard.outbound.settings import OutboundSettings

S = ContainmentState


def facts(body: str, sasl: str, subject: str) -> MessageFacts:
    return base_facts(
        body, sasl=sasl, subject=subject, mail_from=sasl, from_hdr=f"<{sasl}>", ip="127.0.4.2",
        rcpt=("v@example.org",), helo="pc",
    )


def test_spam_stream_is_watched_then_held_and_release_restarts_the_test(
    containment: Containment, clock: ManualClock
) -> None:
    c = containment
    det = OutboundDetector(OutboundSettings(), clock)
    c.on_release.append(det.release)
    customer = "login:zombie@isp.example"
    states = []
    for i in range(8):
        clock.advance(60)
        f = facts(f"unique spam text number {i} buy cheap watches now {i * 7919}", "zombie@isp.example", f"offer {i}")
        apply_outcome(c, det, det.observe(f, 0.98))
        states.append(c.decide(customer).state)
        if states[-1] is S.HELD:
            break
    assert S.WATCHED in states and states[-1] is S.HELD
    assert len(states) <= 6  # SPOT's defaults: a handful of confident spam verdicts
    inc = c.store.current_incident(customer)
    assert inc is not None
    assert inc.sprt["llr"] >= inc.sprt["upper"] > 0 and "SPRT" in inc.sprt["reason"]
    held = next(e for e in inc.transitions if e.data["new"] == "held")
    assert held.data["actor"] == "detection" and held.data["evidence"]["sprt"]["alpha"] == 0.01
    # the abuse desk releases: the detector's test starts again from zero
    c.command("release", customer)
    c.poll()
    st = det.state_of(customer)
    assert st is not None and not st.compromised and st.sprt.llr == 0.0
    assert c.decide(customer).state is S.NORMAL
    # an honest neighbour is never touched
    for i in range(5):
        clock.advance(300)
        apply_outcome(c, det, det.observe(facts(f"lunch on friday {i}", "honest@isp.example", "lunch"), 0.02))
    assert c.decide("login:honest@isp.example").state is S.NORMAL


async def test_pipeline_detection_then_containment(containment: Containment, clock: ManualClock, settings) -> None:  # type: ignore[no-untyped-def]
    """In the pipeline: the detector's verdict stream escalates the customer, and the containment check
    then quarantines (milter: Postfix hold queue) the customer's next message."""
    from relayguard.containment.check import ContainmentCheck, ContainmentUpdater
    from relayguard.containment.detection import EscalatingUpdater
    from relayguard.core.actions import Action
    from relayguard.outbound.detector import OutboundUpdater
    from relayguard.pipeline import Pipeline

    class Spammy:
        def spam_probability(self, facts: MessageFacts) -> float:
            return 0.98

    c = containment
    det = OutboundDetector(OutboundSettings(suspect_action=Action.NO_ACTION), clock)
    pipe = Pipeline(
        settings, [ContainmentCheck(c)], [EscalatingUpdater(c, OutboundUpdater(det, Spammy())), ContainmentUpdater(c)]
    )
    actions = []
    for i in range(10):
        clock.advance(30)
        v = await pipe.process(facts(f"different spam body {i} {i * 104729}", "bot@isp.example", f"s{i}"))
        actions.append(v.action)
        if v.action is Action.QUARANTINE:
            break
    assert actions[-1] is Action.QUARANTINE and len(actions) <= 7
    inc = c.store.current_incident("login:bot@isp.example")
    assert inc is not None and inc.state == "held" and inc.evidence  # the held message is evidence
