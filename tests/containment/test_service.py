"""The containment service on the embedded SQLite store: states, decisions, incidents, commands."""

from __future__ import annotations

from relayguard.containment.decisions import DecisionRecord, normalise_message_id
from relayguard.containment.listing import MemoryListings
from relayguard.containment.release import FakePostsuper
from relayguard.containment.service import Containment
from relayguard.containment.shared_state import MemorySharedState
from relayguard.containment.states import Actor, ContainmentState
from relayguard.containment.store_sqlite import SqliteStore
from relayguard.core.clock import ManualClock

from .conftest import make_containment

S = ContainmentState
SPRT = {"sprt": {"llr": 4.71, "upper": 4.595, "lower": -4.595, "steps": 5}, "campaigns": [7]}


def _held(c: Containment, customer: str = "login:bob") -> None:
    assert c.escalate(customer, S.HELD, "sequential test: compromised", SPRT) is not None


def test_escalation_opens_an_incident_with_the_numbers(containment: Containment) -> None:
    c = containment
    assert c.decide("login:bob").action.policy == "DUNNO"
    assert c.escalate("login:bob", S.WATCHED, "leans compromised", {"sprt": {"llr": 2.5}}) is not None
    assert c.store.current_incident("login:bob") is None  # watching is not containment
    _held(c)
    d = c.decide("login:bob", "m1")
    assert (d.state, d.action.policy, d.action.milter) == (S.HELD, "HOLD", "quarantine")
    inc = c.store.current_incident("login:bob")
    assert inc is not None and inc.status == "open" and inc.state == "held"
    assert inc.sprt["llr"] == 4.71
    assert [e.data["new"] for e in inc.transitions] == ["held"]
    assert inc.transitions[0].data["evidence"]["campaigns"] == [7]
    # detection never lowers, and repeating a state is no transition
    assert c.escalate("login:bob", S.THROTTLED, "x") is None
    assert c.escalate("login:bob", S.HELD, "x") is None
    assert [t.new for t in c.store.state_history("login:bob")] == [S.WATCHED, S.HELD]


def test_throttle_allowance_counts_each_message_once(store: SqliteStore, clock: ManualClock) -> None:
    c = make_containment(store, clock, throttle_per_hour=3)
    c.escalate("ip:192.0.2.9", S.THROTTLED, "burst")
    answers = []
    for i in range(5):
        for _rcpt in range(3):  # asked on every RCPT: one message
            answers.append(c.decide("ip:192.0.2.9", f"inst{i}").action.policy)
    assert answers == ["DUNNO"] * 9 + ["DEFER_IF_PERMIT"] * 6
    clock.advance(3601)
    assert c.decide("ip:192.0.2.9", "inst9").action.policy == "DUNNO"


def test_decision_log_lookups(containment: Containment, clock: ManualClock) -> None:
    c = containment
    _held(c)
    base = dict(customer="login:bob", client_ip="192.0.2.10", sasl_username="bob", state="held")
    c.record(
        DecisionRecord(
            t=clock.now(), action="HOLD", relay="relay1", queue_id="4AbCd1", message_id="<a1@x.example>", **base
        )
    )
    clock.advance(60)
    c.record(
        DecisionRecord(
            t=clock.now(), action="HOLD", relay="relay2", queue_id="4AbCd1", message_id="b2@x.example", **base
        )
    )
    assert [d.relay for d in c.store.by_message_id(" <a1@x.example> ")] == ["relay1"]
    assert len(c.store.by_queue_id("4AbCd1")) == 2
    assert [d.message_id for d in c.store.by_queue_id("4AbCd1", "relay2")] == ["b2@x.example"]
    near = c.store.by_client("192.0.2.10", clock.now() - 5, 30)
    assert [d.relay for d in near] == ["relay2"]
    assert c.store.by_client("192.0.2.11", clock.now()) == []
    assert c.shared.counters("login:bob")["action:hold"] == 2
    inc = c.store.current_incident("login:bob")
    assert inc is not None and inc.counters["messages"] == 2
    # retention
    clock.advance(c.settings.decision_retention + 1)
    assert c.purge() == 2
    assert c.store.by_queue_id("4AbCd1") == []


def test_normalise_message_id() -> None:
    assert normalise_message_id("<abc@Host> (comment)") == "abc@Host"
    assert normalise_message_id("  abc@host ") == "abc@host"
    assert normalise_message_id(None) == ""
    assert normalise_message_id("<unterminated") == "<unterminated"


def test_evidence_is_redacted(store: SqliteStore, clock: ManualClock) -> None:
    c = make_containment(
        store, clock, redact_recipients="hash", redact_body="excerpt", excerpt_chars=10, max_evidence=2
    )
    assert not c.add_evidence("login:bob", subject="s", body="b")  # no incident yet
    _held(c)
    rcpts = ("victim@example.org", "other@example.net")
    for i in range(3):
        c.add_evidence(
            "login:bob",
            message_id=f"<m{i}@x>",
            queue_id="Q1",
            rcpt_to=rcpts,
            subject="Cheap pills",
            body="Buy now at http://spam.example/ please",
            verdict="spam 17",
            action="HOLD",
        )
    inc = c.store.current_incident("login:bob")
    assert inc is not None
    assert len(inc.evidence) == 2  # max_evidence
    data = inc.evidence[0].data
    assert data["body"] == "Buy now at"
    assert data["message_id"] == "m0@x"
    assert all("victim" not in r and r.endswith(("@example.org", "@example.net")) for r in data["rcpt_to"])
    store2 = SqliteStore(":memory:")
    c2 = make_containment(store2, clock, redact_recipients="drop", redact_body="drop")
    _held(c2)
    c2.add_evidence("login:bob", rcpt_to=rcpts, body="secret")
    inc2 = c2.store.current_incident("login:bob")
    assert inc2 is not None
    assert "rcpt_to" not in inc2.evidence[0].data and "body" not in inc2.evidence[0].data
    assert inc2.evidence[0].data["rcpt_count"] == 2


def test_complaints_dedupe_and_block(containment: Containment, clock: ManualClock) -> None:
    c = containment
    listings = c.listings
    assert isinstance(listings, MemoryListings)
    c.record(DecisionRecord(t=clock.now(), customer="sub:S-1", action="DUNNO", client_ip="127.0.3.7"))
    inc = c.attach_complaint("sub:S-1", {"feedback_type": "abuse", "message_id": "m1@x", "source_ip": "127.0.3.7"})
    assert len(inc.complaints) == 1 and inc.status == "open"
    inc = c.attach_complaint("sub:S-1", {"feedback_type": "abuse", "message_id": "m1@x", "source_ip": "127.0.3.7"})
    assert len(inc.complaints) == 1  # the same complaint twice counts once
    c.attach_complaint("sub:S-1", {"key": "fbl-2", "message_id": "m2@x"})
    assert c.decide("sub:S-1").state is S.NORMAL
    inc = c.attach_complaint("sub:S-1", {"key": "fbl-3", "message_id": "m3@x"})  # block_after_complaints = 3
    assert c.decide("sub:S-1").action.policy == "REJECT"
    assert inc.state == "blocked"
    entry = listings.listed("exploited", "127.0.3.7", clock.now())
    assert entry is not None and "sub:S-1" in entry.reason and entry.expires_at == clock.now() + 7 * 86400
    assert any(e.data.get("action") == "listed" for e in inc.actions)
    # the operator releases: unblocked, delisted
    c.command("release", "sub:S-1", actor="cli:test")
    c.poll()
    assert c.decide("sub:S-1").state is S.NORMAL
    assert listings.listed("exploited", "127.0.3.7", clock.now()) is None


def test_release_each_relay_releases_its_own_queue_ids(tmp_path, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(tmp_path / "shared.sqlite3")  # stands for the fleet's shared store
    shared = MemorySharedState(clock=clock)
    released: list[str] = []
    r1 = make_containment(store, clock, shared, relay="relay1")
    r2 = make_containment(store, clock, shared, relay="relay2")
    r1.on_release.append(released.append)
    _held(r1)
    for relay, qid in (("relay1", "1A2B3C4D5E"), ("relay2", "9F8E7D6C5B"), ("relay1", "AAAABBBBCC")):
        r1.record(
            DecisionRecord(t=clock.now(), customer="login:bob", action="HOLD", relay=relay, queue_id=qid, state="held")
        )
    r1.record(DecisionRecord(t=clock.now(), customer="login:carol", action="HOLD", relay="relay1", queue_id="CCCCCCCC"))
    cid = r2.command("release", "login:bob", actor="cli:test", reason="customer cleaned the PC")
    assert cid == 1
    res1, res2 = r1.poll(), r2.poll()
    assert sorted(res1[0].released) == ["1A2B3C4D5E", "AAAABBBBCC"]
    assert res2[0].released == ["9F8E7D6C5B"]
    assert [r.applied for r in (res1[0], res2[0])] == [True, False]  # one state change for the fleet
    assert isinstance(r1.postsuper, FakePostsuper) and "CCCCCCCC" not in r1.postsuper.released
    assert r1.decide("login:bob").state is S.NORMAL
    assert released == ["login:bob"]  # the detector's hook (reset its test) ran once
    inc = store.current_incident("login:bob")
    assert inc is not None
    kinds = [(e.kind, e.data.get("action") or e.data.get("new")) for e in inc.timeline]
    assert ("transition", "normal") in kinds and kinds.count(("action", "released")) == 2
    assert r1.poll() == [] and r2.poll() == []  # a command is applied once
    assert store.held_unreleased("login:bob", "relay1") == []


def test_whitelist_block_close_and_reversibility(containment: Containment) -> None:
    c = containment
    c.command("whitelist", "login:news", reason="newsletter sender, verified")
    c.poll()
    assert c.decide("login:news").action.policy == "DUNNO"
    assert c.escalate("login:news", S.HELD, "sequential test") is None  # detection cannot touch it
    c.command("unwhitelist", "login:news")
    c.command("block", "login:spammer", reason="confirmed botnet")
    c.command("unwhitelist", "login:spammer")  # must not release a blocked customer
    c.poll()
    assert c.decide("login:news").state is S.NORMAL
    assert c.decide("login:spammer").action.policy == "REJECT"
    inc = c.store.current_incident("login:spammer")
    assert inc is not None
    c.command("close", "login:spammer", args={"incident": inc.id})
    c.poll()
    closed = c.store.get_incident(inc.id)
    assert closed is not None and closed.status == "closed"
    assert c.decide("login:spammer").state is S.BLOCKED  # closing an incident does not change the state
    hist = [(t.old, t.new, t.actor) for t in c.store.state_history("login:news")]
    assert hist == [(S.NORMAL, S.WHITELISTED, Actor.OPERATOR), (S.WHITELISTED, S.NORMAL, Actor.OPERATOR)]


def test_restart_restores_states_from_the_store(store: SqliteStore, clock: ManualClock) -> None:
    c = make_containment(store, clock)
    _held(c)
    c.escalate("login:x", S.BLOCKED, "manual", actor=Actor.OPERATOR)
    fresh = make_containment(store, clock)  # a new process: empty memory
    assert fresh.decide("login:bob").state is S.NORMAL
    assert fresh.warm() == 2
    assert fresh.decide("login:bob").action.policy == "HOLD"
    assert fresh.decide("login:x").action.policy == "REJECT"


def test_block_after_held(store: SqliteStore, clock: ManualClock) -> None:
    c = make_containment(store, clock, block_after_held=3)
    _held(c)
    for i in range(3):
        c.record(
            DecisionRecord(t=clock.now(), customer="login:bob", action="HOLD", queue_id=f"Q{i}XXXX", state="held"),
            message_key=f"k{i}",
        )
    assert c.decide("login:bob").state is S.BLOCKED


async def test_agent_applies_commands(containment: Containment) -> None:
    import asyncio

    from relayguard.containment.agent import ContainmentAgent

    agent = ContainmentAgent(containment, interval=0.05)
    task = asyncio.create_task(agent.run())
    containment.command("block", "login:late")
    for _ in range(200):
        if containment.decide("login:late").state is S.BLOCKED:
            break
        await asyncio.sleep(0.02)
    agent.stop()
    await task
    assert containment.decide("login:late").state is S.BLOCKED


def test_commands_queued_while_a_relay_is_down_still_apply(store: SqliteStore, clock: ManualClock) -> None:
    c = make_containment(store, clock)
    c.command("block", "login:a")
    c.poll()
    # the relay stops; the abuse desk releases meanwhile; the relay starts again
    cli = make_containment(store, clock, relay="cli")
    cli.command("release", "login:a")
    restarted = make_containment(store, clock)  # same relay name, same store, empty memory
    restarted.warm()
    assert restarted.decide("login:a").state is S.BLOCKED
    assert [r.command.kind for r in restarted.poll()] == ["release"]
    assert restarted.decide("login:a").state is S.NORMAL
    # a relay never seen before starts at the newest command, not at the start of history
    newcomer = make_containment(store, clock, relay="relay9")
    assert newcomer.poll() == []
