from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from outbound.helpers import facts
from relayguard.config import load_config_text
from relayguard.core.actions import Action
from relayguard.core.clock import ManualClock
from relayguard.outbound.detector import OutboundCheck, OutboundDetector, OutboundUpdater, probability_from_verdict
from relayguard.outbound.settings import OutboundSettings
from relayguard.pipeline import Pipeline

SPAM = "cheap meds online pharmacy no prescription needed order now best prices guaranteed discreet shipping"
HAMS = [
    "the meeting moved to thursday afternoon please bring the quarterly numbers and the draft",
    "thanks for the photos from the weekend the kids loved the lake and the boat ride",
    "can you send me the invoice for october so I can file it before the end of the month",
    "reminder the choir practice is cancelled this week because the hall is being painted",
]


class Fixed:
    def __init__(self, p: dict[str, float]) -> None:
        self.p = p

    def spam_probability(self, f):  # type: ignore[no-untyped-def]
        return self.p.get(f.text.split()[0], 0.02)


def test_spam_stream_is_found_and_explained() -> None:
    clock = ManualClock(1_000_000.0)
    det = OutboundDetector(OutboundSettings(), clock)
    rng = random.Random(3)
    outs = []
    for i in range(6):
        clock.advance(30)
        body = SPAM + f" ref{rng.randrange(10**6)} id{i}"
        outs.append(det.observe(facts(body, sasl="bot", rcpt=(f"x{i}@d{i}.example",)), 0.97))
    found = [i for i, o in enumerate(outs) if o.newly_compromised]
    assert found and found[0] <= 3
    st = det.state_of("login:bot")
    assert st is not None and st.compromised and "content" in (st.sprt.reason or "")
    rep = det.customer_report("login:bot")
    assert rep is not None and [w["window"] for w in rep["windows"]] == [600.0, 3600.0, 86400.0]  # type: ignore[index]
    assert rep["windows"][1]["messages"] == 6 and rep["sprt"]["compromised_at"] is not None  # type: ignore[index]
    assert det.customer_report("login:nobody") is None
    hits = det.precheck(facts("anything at all from this customer now", sasl="bot"))
    assert hits[0].symbol == "OUTBOUND_SUSPECT" and hits[0].force_action is Action.QUARANTINE


def test_newsletter_copies_are_one_observation() -> None:
    clock = ManualClock(0.0)
    det = OutboundDetector(OutboundSettings(), clock)
    # A spammy-looking but honest newsletter to 500 recipients within minutes.
    for i in range(500):
        clock.advance(2)
        o = det.observe(facts(SPAM, sasl="shop", rcpt=(f"r{i}@d{i % 50}.example",)), 0.6)
        assert not o.newly_compromised
    st = det.state_of("login:shop")
    assert st is not None and not st.compromised and st.sprt.steps + st.sprt.restarts <= 2


def test_ham_sender_with_bursts_is_not_flagged() -> None:
    clock = ManualClock(0.0)
    det = OutboundDetector(OutboundSettings(), clock)
    for i in range(300):
        clock.advance(5)
        body = HAMS[i % 4] + f" item {i}"
        det.observe(facts(body, sasl="school", rcpt=(f"p{i}@d{i}.example",)), 0.1)
    st = det.state_of("login:school")
    assert st is not None and not st.compromised


def test_campaign_across_customers_flags_slow_senders() -> None:
    clock = ManualClock(0.0)
    det = OutboundDetector(OutboundSettings(campaign_k=3), clock)
    rng = random.Random(5)
    # Three slow bots, one message an hour each, classifier unsure (p=0.6).
    newly: set[str] = set()
    for _hour in range(3):
        for bot in ("b1", "b2", "b3"):
            clock.advance(1200)
            o = det.observe(facts(SPAM + f" x{rng.randrange(10**6)}", sasl=bot), 0.6)
            newly.update(o.newly_compromised)
    assert newly == {"login:b1", "login:b2", "login:b3"}
    m = det.precheck(facts(SPAM + " another variant", sasl="innocent"))
    assert [h.symbol for h in m] == ["CAMPAIGN_MATCH"]


def test_identity_from_lease_in_detector() -> None:
    clock = ManualClock(2000.0)
    det = OutboundDetector(OutboundSettings(), clock)
    det.identity.leases.load_lines(
        ["Acct-Status-Type=Start User-Name=c1 Framed-IP-Address=203.0.113.5 Event-Timestamp=1000"]
    )
    o = det.observe(facts(ip="203.0.113.5"), 0.1)
    assert o.identity.customer == "sub:c1" and o.identity.source == "lease"


def test_login_from_many_networks() -> None:
    clock = ManualClock(0.0)
    det = OutboundDetector(OutboundSettings(login_networks_suspect=3), clock)
    for i in range(4):
        clock.advance(10)
        det.observe(facts(HAMS[0] + str(i), sasl="stolen", ip=f"198.51.{100 + i}.7"), 0.1)
    hits = det.precheck(facts(sasl="stolen", ip="198.51.100.7"))
    assert "LOGIN_MANY_NETWORKS" in [h.symbol for h in hits]


def test_probability_from_verdict_is_monotone() -> None:
    from relayguard.scoring.verdict import Verdict

    ps = [probability_from_verdict(Verdict(s, 15.0, Action.NO_ACTION, {})) for s in (-5.0, 0.0, 6.0, 15.0)]
    assert ps == sorted(ps) and ps[2] == 0.5


async def test_through_the_pipeline() -> None:
    settings = load_config_text("")
    clock = ManualClock(0.0)
    det = OutboundDetector(OutboundSettings(), clock)
    pipe = Pipeline(settings, [OutboundCheck(det)], [OutboundUpdater(det, Fixed({"cheap": 0.98}))])
    actions = []
    for i in range(8):
        clock.advance(60)
        v = await pipe.process(facts(SPAM + f" n{i * 7919}", sasl="bot"))
        actions.append(v.action)
    assert actions[0] is Action.NO_ACTION
    assert actions[-1] is Action.QUARANTINE
    v = await pipe.process(facts(HAMS[0], sasl="someone-else"))
    assert v.action is Action.NO_ACTION


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 0.2),  # content verdicts of a normal customer (at most theta0)
            st.integers(1, 600),  # seconds to the next message
            st.integers(1, 50),  # recipients
            st.integers(0, 3),  # which body (copies included)
        ),
        min_size=1,
        max_size=60,
    )
)
def test_ham_verdicts_never_contain_a_customer_whatever_the_behaviour(
    stream: list[tuple[float, int, int, int]],
) -> None:
    clock = ManualClock(0.0)
    det = OutboundDetector(OutboundSettings(), clock)
    for i, (p, dt, n, body) in enumerate(stream):
        clock.advance(dt)
        rcpt = tuple(f"r{i}.{k}@d{i}-{k}.example" for k in range(n))
        det.observe(facts(HAMS[body] + f" {i % 2}", sasl="busy", rcpt=rcpt, mail_from=f"s{i}@x{i}.example"), p)
    st_ = det.state_of("login:busy")
    assert st_ is not None and not st_.compromised
