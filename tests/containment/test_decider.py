"""The policy decider and the pipeline check/updater over the containment service."""

from __future__ import annotations

from relayguard.config import Settings
from relayguard.containment.check import ContainmentCheck, ContainmentUpdater
from relayguard.containment.decider import ContainmentDecider
from relayguard.containment.service import Containment
from relayguard.containment.states import ContainmentState
from relayguard.core.actions import Action
from relayguard.message.facts import Envelope
from relayguard.message.parse import parse_message
from relayguard.pipeline import Pipeline
from relayguard.protocols.policy import PolicyAction, PolicyRequest

S = ContainmentState


def req(state: str, instance: str, **attrs: str) -> PolicyRequest:
    base = {
        "request": "smtpd_access_policy",
        "protocol_state": state,
        "instance": instance,
        "client_address": "127.0.3.4",
        "sasl_username": "alice",
        "sender": "alice@isp.example",
    }
    base.update(attrs)
    return PolicyRequest(base)


def test_policy_decider_per_state(containment: Containment) -> None:
    c = containment
    dec = ContainmentDecider(c)
    assert dec.decide(req("RCPT", "i1", recipient="a@example.org")).action is PolicyAction.DUNNO
    assert (
        dec.decide(req("END-OF-MESSAGE", "i1", queue_id="4ABCDEF12", recipient_count="1")).action is PolicyAction.DUNNO
    )
    c.escalate("login:alice", S.HELD, "sequential test")
    r = dec.decide(req("RCPT", "i2", recipient="a@example.org"))
    assert r.action is PolicyAction.HOLD and r.to_bytes().startswith(b"action=HOLD Held")
    dec.decide(req("RCPT", "i2", recipient="b@example.org"))
    dec.decide(req("END-OF-MESSAGE", "i2", queue_id="4BCDEF123", recipient_count="2"))
    held = c.store.held_unreleased("login:alice", c.relay)
    assert [(d.queue_id, d.rcpt_count, d.client_ip, d.sasl_username) for d in held] == [
        ("4BCDEF123", 2, "127.0.3.4", "alice")
    ]
    c.escalate("login:alice", S.BLOCKED, "complaints")
    assert dec.decide(req("RCPT", "i3", recipient="a@example.org")).action is PolicyAction.REJECT
    assert dec.decide(req("RCPT", "i3", recipient="b@example.org")).action is PolicyAction.REJECT
    rejected = c.store.decisions_for("login:alice", action="REJECT")
    assert len(rejected) == 1  # one record per message, not per recipient
    # another customer (no SASL: keyed by address) is unaffected; whitelisted answers DUNNO, never OK
    assert dec.decide(req("RCPT", "i4", sasl_username="", client_address="127.0.5.5")).action is PolicyAction.DUNNO
    c.command("whitelist", "login:alice")
    c.poll()
    assert dec.decide(req("RCPT", "i5")).action is PolicyAction.DUNNO
    assert dec.decide(req("CONNECT", "i6")).action is PolicyAction.DUNNO


def test_throttle_through_policy(store, clock) -> None:  # type: ignore[no-untyped-def]
    from .conftest import make_containment

    c = make_containment(store, clock, throttle_per_hour=2)
    c.escalate("ip:127.0.3.4", S.THROTTLED, "burst")
    dec = ContainmentDecider(c)
    out = [dec.decide(req("RCPT", f"m{i}", sasl_username="")).action.value for i in range(4)]
    assert out == ["DUNNO", "DUNNO", "DEFER_IF_PERMIT", "DEFER_IF_PERMIT"]


RAW = (
    b"From: Alice <alice@isp.example>\r\nTo: v@example.org\r\nSubject: Cheap meds\r\n"
    b"Message-ID: <abc123@isp.example>\r\n\r\nBuy now http://spam.example/\r\n"
)


async def test_pipeline_check_and_updater(containment: Containment, settings: Settings) -> None:
    c = containment
    env = Envelope(
        mail_from="alice@isp.example",
        rcpt_to=("v@example.org", "w@example.net"),
        client_ip="127.0.3.4",
        sasl_username="alice",
        queue_id="7QQQWWW1",
        relay="relay1",
    )
    facts = parse_message(RAW, settings, env)
    pipe = Pipeline(settings, [ContainmentCheck(c)], [ContainmentUpdater(c)])
    v = await pipe.process(facts)
    assert v.action is not Action.QUARANTINE
    assert c.store.by_message_id("abc123@isp.example")[0].action == "DUNNO"
    c.escalate("login:alice", S.HELD, "sequential test")
    v = await pipe.process(facts)
    assert v.action is Action.QUARANTINE and "CONTAINMENT_HELD" in v.symbols
    recs = c.store.by_queue_id("7QQQWWW1", "relay1")
    assert [r.action for r in recs] == ["DUNNO", "HOLD"]
    inc = c.store.current_incident("login:alice")
    assert inc is not None and inc.evidence[0].data["subject"] == "Cheap meds"
    assert inc.evidence[0].data["rcpt_to"] == ["*@example.net", "*@example.org"]
    c.escalate("login:alice", S.BLOCKED, "complaints")
    v = await pipe.process(facts)
    assert v.action is Action.REJECT and v.message is not None and v.message.startswith("5.7.1")


def test_background_recorder(containment: Containment) -> None:
    c = containment
    c.escalate("login:alice", S.HELD, "sequential test")
    dec = ContainmentDecider(c, background=True)
    for i in range(50):
        assert dec.decide(req("RCPT", f"b{i}")).action is PolicyAction.HOLD
        dec.decide(req("END-OF-MESSAGE", f"b{i}", queue_id=f"5B{i:08X}"))
    assert dec.recorder is not None
    dec.recorder.flush()
    assert len(c.store.held_unreleased("login:alice", c.relay)) == 50
    dec.recorder.close()


def test_decision_is_reused_only_while_the_state_is_unchanged(containment: Containment) -> None:
    c = containment
    first = c.decide("login:carol", "m1")
    assert c.decide("login:carol", "m2") is first  # same state record: the same decision, not a new one
    c.escalate("login:carol", S.HELD, "sequential test")
    held = c.decide("login:carol", "m3")
    assert held.state is S.HELD and held.action.policy == "HOLD"
    c.command("release", "login:carol")
    c.poll()
    assert c.decide("login:carol", "m4").state is S.NORMAL


def test_background_recorder_batches_what_arrives_within_linger(containment: Containment) -> None:
    from relayguard.containment.decider import Recorder
    from relayguard.containment.decisions import DecisionRecord

    c = containment
    calls: list[int] = []
    record_many = c.record_many

    def counting(items):  # type: ignore[no-untyped-def]
        calls.append(len(items))
        record_many(items)

    c.record_many = counting  # type: ignore[method-assign]
    rec = Recorder(c, linger=0.5)
    for i in range(50):
        rec.submit(
            DecisionRecord(t=1.0, customer="login:dave", action="DUNNO", relay=c.relay, queue_id=f"Q{i}"), f"m{i}"
        )
    rec.close()  # writes what is queued before it returns
    assert sum(calls) == 50 and len(calls) <= 2  # one transaction (two if the writer woke up in between)
    assert len(c.store.decisions_for("login:dave")) == 50
