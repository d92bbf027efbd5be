"""Fixtures: a containment service on SQLite with a manual clock, a private redis-server, and PostgreSQL
(the one at 127.0.0.1:5432 when it answers, else a private cluster from the Debian packages)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relayguard.containment.listing import MemoryListings
from relayguard.containment.release import FakePostsuper
from relayguard.containment.service import Containment
from relayguard.containment.settings import ContainmentSettings
from relayguard.containment.shared_state import MemorySharedState
from relayguard.containment.store_sqlite import SqliteStore
from relayguard.core.clock import ManualClock

T0 = 1_790_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def make_containment(
    store: SqliteStore,
    clock: ManualClock,
    shared: object | None = None,
    relay: str = "relay1",
    commands: object | None = None,
    **settings: object,
) -> Containment:
    cs = ContainmentSettings(**settings)  # type: ignore[arg-type]
    return Containment(
        cs,
        store,
        shared or MemorySharedState(clock=clock),  # type: ignore[arg-type]
        clock=clock,
        relay=relay,
        commands=commands,  # type: ignore[arg-type]
        postsuper=FakePostsuper(),
        listings=MemoryListings(),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "containment.sqlite3")
    yield s
    s.close()


@pytest.fixture
def containment(store: SqliteStore, clock: ManualClock) -> Containment:
    return make_containment(store, clock)


# ------------------------------------------------------------------------------------------ redis
