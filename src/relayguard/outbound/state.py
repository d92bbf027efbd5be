"""Per-customer state behind a narrow interface: memory (tests, simulation) or SQLite (the default on a
single relay). A Redis implementation for a fleet of relays belongs to the containment issue (8).

A state is read, changed and written back by the one after-verdict updater; the pre-filter only reads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from relayguard.outbound.sprt import SprtState
from relayguard.outbound.windows import Baseline, CustomerWindows


@dataclass
class CustomerState:
    windows: CustomerWindows
    baseline: Baseline
    sprt: SprtState = field(default_factory=SprtState)
    # exact body hash (hex) -> last time this customer sent it: copies are not fresh evidence
    bodies: dict[str, float] = field(default_factory=dict)
    campaigns: list[int] = field(default_factory=list)  # campaigns this customer took part in
    messages: int = 0

    @property
    def compromised(self) -> bool:
        return self.sprt.compromised_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "windows": self.windows.to_dict(),
            "baseline": self.baseline.to_dict(),
            "sprt": self.sprt.to_dict(),
            "bodies": self.bodies,
            "campaigns": self.campaigns,
            "messages": self.messages,
        }


class StateFactory:
    """Creates and decodes states with the configured window sizes."""

    def __init__(self, horizon: float, max_events: int, max_distinct: int, halflife_hours: float) -> None:
        self.horizon = horizon
        self.max_events = max_events
        self.max_distinct = max_distinct
        self.halflife_hours = halflife_hours

    def new(self) -> CustomerState:
        return CustomerState(
            CustomerWindows(self.horizon, self.max_events, self.max_distinct), Baseline(self.halflife_hours)
        )

    def from_dict(self, d: dict[str, Any]) -> CustomerState:
        return CustomerState(
            CustomerWindows.from_dict(d["windows"], self.horizon, self.max_events, self.max_distinct),
            Baseline.from_dict(d["baseline"], self.halflife_hours),
            SprtState.from_dict(d["sprt"]),
            {str(k): float(v) for k, v in d.get("bodies", {}).items()},
            [int(c) for c in d.get("campaigns", [])],
            int(d.get("messages", 0)),
        )


class StateStore(Protocol):
    def get(self, customer: str) -> CustomerState | None: ...

    def put(self, customer: str, state: CustomerState) -> None: ...

    def customers(self) -> list[str]: ...


class MemoryStateStore:
    """Bounded LRU of live objects: nothing to encode, nothing to install."""

    def __init__(self, max_customers: int = 1_000_000) -> None:
        self._d: OrderedDict[str, CustomerState] = OrderedDict()
        self.max_customers = max_customers

    def get(self, customer: str) -> CustomerState | None:
        s = self._d.get(customer)
        if s is not None:
            self._d.move_to_end(customer)
        return s

    def put(self, customer: str, state: CustomerState) -> None:
        self._d[customer] = state
        self._d.move_to_end(customer)
        while len(self._d) > self.max_customers:
            self._d.popitem(last=False)

    def customers(self) -> list[str]:
        return list(self._d)


class SqliteStateStore:
    """One JSON row per customer; survives restarts of a single relay."""

    def __init__(self, path: str | Path, factory: StateFactory) -> None:
        self.factory = factory
        p = Path(path)
        if str(p) != ":memory:":
            p.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(p), check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outbound_customer (customer TEXT PRIMARY KEY, state TEXT NOT NULL)"
            )

    def get(self, customer: str) -> CustomerState | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM outbound_customer WHERE customer = ?", (customer,)).fetchone()
        if row is None:
            return None
        return self.factory.from_dict(json.loads(row[0]))

    def put(self, customer: str, state: CustomerState) -> None:
        text = json.dumps(state.to_dict(), separators=(",", ":"))
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO outbound_customer (customer, state) VALUES (?, ?) "
                "ON CONFLICT(customer) DO UPDATE SET state = excluded.state",
                (customer, text),
            )

    def customers(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT customer FROM outbound_customer ORDER BY customer")]

    def close(self) -> None:
        self._db.close()
