"""Shared state in a real redis-server: two relay instances see one customer; Redis down -> local."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peers import RedisServer
from relayguard.containment.commands import Command
from relayguard.containment.shared_state import (
    SHARED_STATE_FAIL,
    Bounds,
    MemorySharedState,
    RedisSharedState,
    ResilientSharedState,
)
from relayguard.containment.states import ContainmentState
from relayguard.containment.store_sqlite import SqliteStore
from relayguard.core.clock import ManualClock

from .conftest import T0, make_containment

S = ContainmentState


def _shared(srv: RedisServer, clock: ManualClock, **bounds: object) -> ResilientSharedState:
    primary = RedisSharedState.from_url(srv.url, "rgtest:", Bounds(**bounds), timeout=0.5)  # type: ignore[arg-type]
    return ResilientSharedState(primary, retry=5.0, clock=clock)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_state_semantics(backend: str, redis_server: RedisServer, clock: ManualClock) -> None:
    """Both backends behave alike: compare-and-set, idempotent counting, bounded ids, commands."""
    b = dict(max_ids=20, dedupe_ttl=3600.0, state_ttl=86400.0)
    s = _shared(redis_server, clock, **b) if backend == "redis" else MemorySharedState(Bounds(**b), clock)  # type: ignore[arg-type]
    t = clock.now()
    assert s.get_state("c").state is S.NORMAL
    assert s.transition("c", S.NORMAL, S.HELD, t, "why")
    assert not s.transition("c", S.NORMAL, S.BLOCKED, t, "lost the race")
    rec = s.get_state("c")
    assert (rec.state, rec.since, rec.reason) == (S.HELD, t, "why")
    assert s.count("c", "m1", t, {"messages": 1, "bytes": 500})
    assert not s.count("c", "m1", t, {"messages": 1, "bytes": 500})
    assert s.counters("c") == {"messages": 1, "bytes": 500}
    assert s.count_many([("e", "a", t, {"n": 1}), ("e", "a", t, {"n": 1}), ("f", "a", t, {"n": 2})]) == [
        True,
        False,
        True,
    ]
    assert (s.counters("e"), s.counters("f")) == ({"n": 1}, {"n": 2})
    # bounded: 30 distinct ids, only 20 remembered; the oldest may count again (that is the bound)
    for i in range(30):
        s.count("c", f"id{i}", t + i, {"messages": 1})
    assert not s.count("c", "id29", t + 40, {"messages": 1})
    assert s.count("c", "id0", t + 40, {"messages": 1})
    # throttle admission
    adm = [s.admit("c", f"x{i % 4}", t, 3600, 3) for i in range(8)]
    assert [a.allowed for a in adm] == [True, True, True, False, True, True, True, False]
    assert s.put_blob("c", "sprt", '{"llr": 1.5}', t) is None
    assert s.get_blob("c", "sprt") == '{"llr": 1.5}'
    assert s.claim("tok", t) and not s.claim("tok", t)
    assert s.last_command_id() == 0
    ids = [s.push_command(Command("release", f"c{i}", t)) for i in range(3)]
    assert ids == [1, 2, 3]
    assert [c.customer for c in s.commands_after(1)] == ["c1", "c2"]
    assert s.get_cursor("r1") is None
    s.set_cursor("r1", 2)
    assert s.get_cursor("r1") == 2
    assert s.transition("c", S.HELD, S.NORMAL, t, "released")
    assert s.get_state("c").state is S.NORMAL
    # the one-round-trip hot path: state, plus admission only when throttled
    assert s.lookup("d", "k1", t, 3600, 1) == (s.get_state("d"), None)
    assert s.transition("d", S.NORMAL, S.THROTTLED, t, "burst")
    rec, adm = s.lookup("d", "k1", t, 3600, 1)
    assert rec.state is S.THROTTLED and rec.reason == "burst" and adm is not None and adm.allowed
    assert s.lookup("d", "k1", t, 3600, 1)[1].allowed  # type: ignore[union-attr]
    assert not s.lookup("d", "k2", t, 3600, 1)[1].allowed  # type: ignore[union-attr]


def test_two_relays_on_one_redis_see_one_customer(
    redis_server: RedisServer, tmp_path: Path, clock: ManualClock
) -> None:
    sa, sb = _shared(redis_server, clock), _shared(redis_server, clock)
    a = make_containment(SqliteStore(tmp_path / "a.sqlite3"), clock, sa, "relayA", sa, throttle_per_hour=4)
    b = make_containment(SqliteStore(tmp_path / "b.sqlite3"), clock, sb, "relayB", sb, throttle_per_hour=4)
    assert a.escalate("login:eve", S.THROTTLED, "burst") is not None
    assert b.escalate("login:eve", S.THROTTLED, "burst") is None  # already there: one transition
    # the allowance is shared: 4 messages per hour across both relays, each message once
    got = []
    for i in range(4):
        first, second = (a, b) if i % 2 else (b, a)  # the same message asked on both relays
        got += [first.decide("login:eve", f"msg{i}").action.policy, second.decide("login:eve", f"msg{i}").action.policy]
    assert got == ["DUNNO"] * 8
    assert b.decide("login:eve", "msg5").action.policy == "DEFER_IF_PERMIT"
    assert a.decide("login:eve", "msg5").action.policy == "DEFER_IF_PERMIT"
    # B escalates; A sees it on the next message
    assert b.escalate("login:eve", S.HELD, "sequential test", {"sprt": {"llr": 5.0}}) is not None
    assert a.decide("login:eve", "msg6").action.policy == "HOLD"
    # a command queued through one relay reaches the other
    b.command("release", "login:eve", actor="cli:test")
    res = a.poll() + b.poll()
    assert sorted(r.applied for r in res) == [False, True]
    assert a.decide("login:eve").state is S.NORMAL and b.decide("login:eve").state is S.NORMAL
    # counting across relays is idempotent per message id
    assert a.shared.count("login:eve", "same", clock.now(), {"messages": 1})
    assert not b.shared.count("login:eve", "same", clock.now(), {"messages": 1})


def test_redis_down_decides_locally(
    redis_server: RedisServer, tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    shared = _shared(redis_server, clock)
    c = make_containment(SqliteStore(tmp_path / "c.sqlite3"), clock, shared)
    c.escalate("login:mallory", S.HELD, "sequential test")
    d = c.decide("login:mallory", "m1")
    assert d.action.policy == "HOLD" and not d.degraded
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="relayguard.containment"):
        d1 = c.decide("login:mallory", "m2")
        d2 = c.decide("login:other", "m3")
    assert d1.action.policy == "HOLD"  # the last state seen still applies
    assert SHARED_STATE_FAIL.name in d1.symbols and d1.degraded
    assert d2.action.policy == "DUNNO" and d2.degraded
    fails = [r for r in caplog.records if "SHARED_STATE_FAIL" in r.getMessage()]
    assert len(fails) == 1  # one log line per outage, not one per message
    # escalation while down is decided locally too
    assert c.escalate("login:other", S.HELD, "sequential test") is not None
    assert c.decide("login:other").action.policy == "HOLD"
    # Redis back (same port): after the retry interval the relay uses it again
    redis_server.start()
    clock.advance(6)
    with caplog.at_level(logging.WARNING, logger="relayguard.containment"):
        d3 = c.decide("login:mallory", "m4")
    # Redis came back empty (no persistence): the states known locally were carried over to it
    assert not d3.degraded and d3.state is S.HELD
    assert any("2 local states carried over" in r.getMessage() for r in caplog.records)
    other = RedisSharedState.from_url(redis_server.url, "rgtest:")
    assert other.get_state("login:other").state is S.HELD


def test_a_release_made_during_an_outage_wins(redis_server: RedisServer, clock: ManualClock) -> None:
    a, b = _shared(redis_server, clock), _shared(redis_server, clock)
    t = clock.now()
    assert a.transition("login:z", S.NORMAL, S.HELD, t, "sequential test")
    a._down(ConnectionError("simulated partition"))  # relay A loses Redis, keeps its mirror (held)
    assert a.get_state("login:z").state is S.HELD and a.degraded
    assert b.transition("login:z", S.HELD, S.NORMAL, t + 1, "released by the abuse desk")
    clock.advance(10)
    assert a.get_state("login:z").state is S.NORMAL and not a.degraded  # Redis's record wins


ops = st.lists(
    st.tuples(
        st.sampled_from(["admit", "count", "transition"]),
        st.sampled_from(["c1", "c2"]),
        st.sampled_from(["m1", "m2", "m3", "m4", ""]),
        st.integers(0, 7200),
        st.sampled_from(list(S)),
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_redis_and_memory_agree(redis_server: RedisServer, program: list[tuple[str, str, str, int, S]]) -> None:
    """Differential: the Lua scripts and the in-memory backend give the same answers to any sequence."""
    clock = ManualClock(T0)
    prefix = "diff" + secrets.token_hex(4) + ":"
    bounds = Bounds(state_ttl=86400.0, dedupe_ttl=3600.0, max_ids=3)
    red = RedisSharedState.from_url(redis_server.url, prefix, bounds)
    mem = MemorySharedState(bounds, clock)
    t = T0
    for op, customer, mid, dt, state in sorted(program, key=lambda p: p[3]):
        t = max(t + 1, T0 + dt)  # strictly increasing: Redis breaks score ties by name, memory by age
        clock.set(t)
        if op == "admit":
            assert red.admit(customer, mid, t, 1800, 2) == mem.admit(customer, mid, t, 1800, 2) or mid == ""
        elif op == "count":
            assert red.count(customer, mid, t, {"n": 1}) == mem.count(customer, mid, t, {"n": 1})
            assert red.counters(customer) == mem.counters(customer)
        else:
            cur = mem.get_state(customer).state
            assert red.get_state(customer).state is cur
            assert red.transition(customer, cur, state, t, "r") == mem.transition(customer, cur, state, t, "r")


def test_detector_state_shared_by_two_relays(redis_server: RedisServer, clock: ManualClock) -> None:
    """The outbound detector's per-customer state (SPRT, windows) in Redis: relay B continues A's test."""
    from relayguard.containment.outbound_state import SharedOutboundStore
    from relayguard.outbound.detector import OutboundDetector
    from relayguard.outbound.settings import OutboundSettings

    def detector() -> OutboundDetector:
        d = OutboundDetector(OutboundSettings(), clock)
        d.store = SharedOutboundStore(_shared(redis_server, clock), d.factory, clock)
        return d

    a, b = detector(), detector()
    st0 = a.factory.new()
    st0.sprt.llr = 2.5
    st0.messages = 7
    a.store.put("login:q", st0)
    got = b.store.get("login:q")
    assert got is not None and got.sprt.llr == 2.5 and got.messages == 7
    assert b.store.get("login:none") is None
    _shared(redis_server, clock).put_blob("login:bad", "outbound", "{not json", clock.now())
    assert a.store.get("login:bad") is None  # corrupt state: start afresh, never crash


def test_cli_and_two_processes_on_one_redis(redis_server: RedisServer, tmp_path: Path) -> None:
    """The real thing across processes: `relayguard incidents block` (a process) queues in Redis, this
    relayguard (relay A) applies it, and another relayguard process (relay B) refuses the customer's mail."""
    import subprocess
    import sys

    from relayguard.config import load_config
    from relayguard.containment.factory import build

    def cfg(name: str) -> Path:
        p = tmp_path / f"{name}.toml"
        p.write_text(
            f'[storage]\ndata_dir = "{tmp_path / name}"\nredis_url = "{redis_server.url}"\n\n'
            f'[containment]\nrelay = "{name}"\nshared_state = "redis"\nlist_on_block = false\n'
        )
        return p

    a = build(load_config(cfg("relayA")))
    assert a.decide("login:carol").state is S.NORMAL
    cli = [sys.executable, "-c", "from relayguard.app.cli import main; main()"]
    r = subprocess.run(
        [*cli, "incidents", "block", "login:carol", "--config", str(cfg("cli")), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    res = a.poll()  # relay A applies the command (claims the state change for the fleet)
    assert [(x.command.kind, x.applied) for x in res] == [("block", True)]
    relay_b = (
        "import sys; from relayguard.config import load_config; from relayguard.containment.factory import build;"
        "c = build(load_config(sys.argv[1])); print(c.decide('login:carol').action.policy, len(c.poll()))"
    )
    r = subprocess.run([sys.executable, "-c", relay_b, str(cfg("relayB"))], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["REJECT", "0"]  # relay B, another process, sees it; nothing left to apply
    a.close()


def _wait_for(pred: Any, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_state_cache_is_invalidated_by_any_relay(redis_server: RedisServer, tmp_path: Path, clock: ManualClock) -> None:
    from relayguard.containment.state_cache import CachedSharedState

    # a long ttl: only the pub/sub invalidation can make relay A see relay B's change
    ca = CachedSharedState(_shared(redis_server, clock), ttl=3600.0, retry=0.0)
    cb = CachedSharedState(_shared(redis_server, clock), ttl=3600.0, retry=0.0)
    a = make_containment(SqliteStore(tmp_path / "a.sqlite3"), clock, ca, "relayA", ca, throttle_per_hour=1)
    b = make_containment(SqliteStore(tmp_path / "b.sqlite3"), clock, cb, "relayB", cb, throttle_per_hour=1)
    try:
        assert _wait_for(lambda: ca.ready() and cb.ready())  # subscribed to invalidations
        assert a.decide("login:carol", "m1").state is S.NORMAL
        misses = ca.misses
        assert a.decide("login:carol", "m2").state is S.NORMAL and ca.misses == misses  # served from the cache
        assert b.escalate("login:carol", S.HELD, "sequential test") is not None
        assert _wait_for(lambda: a.decide("login:carol").action.policy == "HOLD")
        # throttled customers always ask Redis: their allowance is shared
        assert a.escalate("login:dave", S.THROTTLED, "burst") is not None
        assert a.decide("login:dave", "d1").action.policy == "DUNNO"
        assert b.decide("login:dave", "d2").action.policy == "DEFER_IF_PERMIT"
        assert a.decide("login:dave", "d3").action.policy == "DEFER_IF_PERMIT"
        # the relay's own change is visible at once, without waiting for the echo
        a.command("release", "login:carol")
        a.poll()
        assert a.decide("login:carol").state is S.NORMAL
    finally:
        ca.close()
        cb.close()


def test_state_cache_off_while_redis_is_down(redis_server: RedisServer, tmp_path: Path, clock: ManualClock) -> None:
    from relayguard.containment.state_cache import CachedSharedState

    cs = CachedSharedState(_shared(redis_server, clock), ttl=3600.0, retry=0.0)
    c = make_containment(SqliteStore(tmp_path / "c.sqlite3"), clock, cs)
    try:
        c.escalate("login:erin", S.HELD, "sequential test")
        assert c.decide("login:erin").action.policy == "HOLD"
        redis_server.stop()
        # the subscription breaks: the cache empties and the resilient layer answers, marked degraded
        assert _wait_for(lambda: c.decide("login:erin").degraded)
        d = c.decide("login:erin")
        assert d.action.policy == "HOLD" and SHARED_STATE_FAIL.name in d.symbols
        # Redis back: answers come from it again (the held state carried over), then from the cache again
        redis_server.start()
        clock.advance(6)
        assert _wait_for(lambda: not c.decide("login:erin").degraded)
        assert c.decide("login:erin").action.policy == "HOLD"
        assert _wait_for(cs.ready)
        hits = cs.hits
        c.decide("login:erin")
        c.decide("login:erin")
        assert cs.hits > hits
    finally:
        cs.close()
