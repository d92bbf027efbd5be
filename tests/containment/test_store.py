"""One suite for both stores: SQLite (embedded) and PostgreSQL (a throwaway database on a real server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayguard.containment.commands import Command
from relayguard.containment.decisions import DecisionRecord
from relayguard.containment.incidents import IncidentEvent
from relayguard.containment.service import Store
from relayguard.containment.states import Actor, ContainmentState, make_transition
from relayguard.containment.store_sqlite import SqliteStore
from relayguard.core.clock import ManualClock

from .conftest import T0, make_containment


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "c.sqlite3")
    else:
        from relayguard.containment.store_postgres import PostgresStore

        s = PostgresStore(request.getfixturevalue("pg_dsn"))
    yield s
    s.close()


def test_decisions(any_store: Store) -> None:
    s = any_store
    ids = [
        s.add_decision(
            DecisionRecord(
                t=T0 + i,
                customer="login:a",
                action="HOLD" if i % 2 else "DUNNO",
                relay=f"r{i % 2}",
                queue_id=f"QID{i}AA",
                message_id=f"<m{i}@x>",
                client_ip="2001:db8::1",
                sasl_username="a",
                symbols=("SHARED_STATE_FAIL",) if i == 3 else (),
            )
        )
        for i in range(6)
    ]
    assert ids == sorted(ids)
    m = s.by_message_id("m3@x")
    assert len(m) == 1 and m[0].symbols == ("SHARED_STATE_FAIL",) and m[0].id == ids[3]
    assert [d.queue_id for d in s.held_unreleased("login:a", "r1")] == ["QID1AA", "QID3AA", "QID5AA"]
    s.mark_released([ids[1], ids[3]], T0 + 100)
    assert [d.queue_id for d in s.held_unreleased("login:a", "r1")] == ["QID5AA"]
    assert s.by_queue_id("QID1AA")[0].released_at == T0 + 100
    assert [d.t for d in s.by_client("2001:db8::1", T0 + 2.2, 1.0)] == [T0 + 2, T0 + 3]
    assert len(s.decisions_for("login:a", action="HOLD", relay="r1")) == 3
    assert [d.t for d in s.decisions_for("login:a", limit=2)] == [T0 + 5, T0 + 4]
    assert s.count_decisions(relay="r1") == 3 and s.count_decisions(customer="login:a", since=T0 + 4) == 2
    assert s.count_decisions(action="DUNNO", relay="r1") == 0
    s.add_decisions(
        [
            DecisionRecord(
                t=T0 + 10 + i,
                customer="login:b",
                action="HOLD",
                relay="r1",
                queue_id=f"B{i}XXXX",
                message_id=f"<b{i}@x>",
                symbols=("X",),
            )
            for i in range(50)
        ]
    )
    assert s.count_decisions(customer="login:b") == 50
    assert s.by_message_id("b7@x")[0].queue_id == "B7XXXX" and s.by_message_id("b7@x")[0].symbols == ("X",)
    assert s.purge_decisions(T0 + 3) == 3
    assert len(s.decisions_for("login:a")) == 3


def test_incidents(any_store: Store) -> None:
    s = any_store
    inc = s.open_incident("login:a", T0, "held", "sequential test")
    again = s.open_incident("login:a", T0 + 1, "blocked", "other")
    assert again.id == inc.id and again.reason == "sequential test"  # one open incident per customer
    assert s.add_event(inc.id, IncidentEvent(T0 + 2, "complaint", {"k": 1}, "r1"), dedupe_key="c1")
    assert not s.add_event(inc.id, IncidentEvent(T0 + 3, "complaint", {"k": 1}, "r1"), dedupe_key="c1")
    assert s.add_event(inc.id, IncidentEvent(T0 + 1, "evidence", {"subject": "hi ünïcode"}))
    assert s.has_event_key(inc.id, "c1") and not s.has_event_key(inc.id, "c2")
    assert s.count_events(inc.id, "complaint") == 1
    s.update_incident(inc.id, state="blocked", counters={"messages": 3}, sprt={"llr": 4.7})
    got = s.get_incident(inc.id)
    assert got is not None
    assert (got.state, got.counters, got.sprt) == ("blocked", {"messages": 3}, {"llr": 4.7})
    assert [e.kind for e in got.timeline] == ["evidence", "complaint"]
    assert got.evidence[0].data["subject"] == "hi ünïcode"
    listed = s.list_incidents("open")
    assert [i.id for i in listed] == [inc.id] and listed[0].counters["events"] == {"complaint": 1, "evidence": 1}
    s.close_incident(inc.id, T0 + 10)
    assert s.current_incident("login:a") is None
    new = s.open_incident("login:a", T0 + 20, "held", "again")
    assert new.id != inc.id
    assert [i.status for i in s.list_incidents(None, "login:a")] == ["open", "closed"]


def test_states_and_commands(any_store: Store) -> None:
    s = any_store
    S = ContainmentState
    s.record_state(make_transition("c1", S.NORMAL, S.HELD, T0, Actor.DETECTION, "x", {"sprt": {"llr": 5}}))
    s.record_state(make_transition("c2", S.NORMAL, S.WHITELISTED, T0, Actor.OPERATOR, "y"))
    s.record_state(make_transition("c1", S.HELD, S.NORMAL, T0 + 5, Actor.OPERATOR, "released"))
    assert s.states() == {"c2": ("whitelisted", T0)}
    assert s.state_of("c1") is None
    hist = s.state_history("c1")
    assert [(t.old, t.new) for t in hist] == [(S.NORMAL, S.HELD), (S.HELD, S.NORMAL)]
    assert hist[0].evidence == {"sprt": {"llr": 5}}
    assert s.last_command_id() == 0
    ids = [s.push_command(Command("block", f"c{i}", T0, "cli:x", "r", {"n": i})) for i in range(3)]
    assert s.last_command_id() == ids[-1]
    after = s.commands_after(ids[0])
    assert [(c.customer, c.args, c.id) for c in after] == [("c1", {"n": 1}, ids[1]), ("c2", {"n": 2}, ids[2])]
    assert s.get_cursor("relay1") is None
    s.set_cursor("relay1", ids[1])
    s.set_cursor("relay1", ids[2])
    s.set_cursor("relay2", ids[0])
    assert (s.get_cursor("relay1"), s.get_cursor("relay2")) == (ids[2], ids[0])


def test_service_on_postgres_from_two_relays(pg_dsn: str) -> None:
    """A fleet: two relays' services on one PostgreSQL, racing to open one customer's incident."""
    from relayguard.containment.shared_state import MemorySharedState
    from relayguard.containment.store_postgres import PostgresStore

    clock = ManualClock(T0)
    stores = [PostgresStore(pg_dsn) for _ in range(2)]
    try:
        shared = MemorySharedState(clock=clock)
        relays = [make_containment(st, clock, shared, relay=f"relay{i}") for i, st in enumerate(stores)]  # type: ignore[arg-type]
        barrier = threading.Barrier(2)
        incs = []

        def open_one(i: int) -> None:
            barrier.wait()
            incs.append(stores[i].open_incident("login:z", T0, "held", f"relay{i}"))

        threads = [threading.Thread(target=open_one, args=(i,)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert incs[0].id == incs[1].id
        relays[0].attach_complaint("login:z", {"key": "k1"})
        relays[1].attach_complaint("login:z", {"key": "k1"})
        inc = stores[1].current_incident("login:z")
        assert inc is not None and len(inc.complaints) == 1
    finally:
        for st in stores:
            st.close()
