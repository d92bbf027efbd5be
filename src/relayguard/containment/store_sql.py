"""The decision log, incidents, state history and command queue in SQL, shared by SQLite and PostgreSQL.

Both dialects take the same statements; the subclasses supply the connection, the placeholder and the
few DDL words that differ. JSON goes in TEXT columns so one schema serves both.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from relayguard.containment.commands import Command
from relayguard.containment.decisions import DecisionRecord, normalise_message_id
from relayguard.containment.incidents import Incident, IncidentEvent
from relayguard.containment.states import ContainmentState, Transition

SCHEMA_VERSION = 1
KEEP_COMMANDS = 10_000

# {ID} = auto-increment primary key, {REAL} = double; everything else is common SQL.
DDL = (
    """CREATE TABLE IF NOT EXISTS rg_decision (
        id {ID}, t {REAL} NOT NULL, customer TEXT NOT NULL, action TEXT NOT NULL, relay TEXT NOT NULL,
        queue_id TEXT NOT NULL, message_id TEXT NOT NULL, client_ip TEXT NOT NULL, sasl_username TEXT NOT NULL,
        verdict TEXT NOT NULL, state TEXT NOT NULL, mail_from TEXT NOT NULL, rcpt_count INTEGER NOT NULL,
        symbols TEXT NOT NULL, released_at {REAL})""",
    "CREATE INDEX IF NOT EXISTS rg_decision_mid ON rg_decision (message_id)",
    "CREATE INDEX IF NOT EXISTS rg_decision_qid ON rg_decision (queue_id, relay)",
    "CREATE INDEX IF NOT EXISTS rg_decision_client ON rg_decision (client_ip, t)",
    "CREATE INDEX IF NOT EXISTS rg_decision_customer ON rg_decision (customer, t)",
    "CREATE INDEX IF NOT EXISTS rg_decision_t ON rg_decision (t)",
    """CREATE TABLE IF NOT EXISTS rg_incident (
        id {ID}, customer TEXT NOT NULL, status TEXT NOT NULL, opened_at {REAL} NOT NULL, closed_at {REAL},
        state TEXT NOT NULL, reason TEXT NOT NULL, counters TEXT NOT NULL, sprt TEXT NOT NULL)""",
    # One open incident per customer, even with many relays racing to open it.
    "CREATE UNIQUE INDEX IF NOT EXISTS rg_incident_open ON rg_incident (customer) WHERE status = 'open'",
    """CREATE TABLE IF NOT EXISTS rg_incident_event (
        id {ID}, incident_id BIGINT NOT NULL, t {REAL} NOT NULL, kind TEXT NOT NULL, relay TEXT NOT NULL,
        data TEXT NOT NULL, dedupe_key TEXT)""",
    "CREATE INDEX IF NOT EXISTS rg_incident_event_inc ON rg_incident_event (incident_id, t)",
    "CREATE UNIQUE INDEX IF NOT EXISTS rg_incident_event_key ON rg_incident_event (incident_id, dedupe_key) "
    "WHERE dedupe_key IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS rg_customer_state (
        customer TEXT PRIMARY KEY, state TEXT NOT NULL, since {REAL} NOT NULL, reason TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS rg_transition (
        id {ID}, customer TEXT NOT NULL, t {REAL} NOT NULL, old TEXT NOT NULL, new TEXT NOT NULL,
        actor TEXT NOT NULL, reason TEXT NOT NULL, evidence TEXT NOT NULL, relay TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS rg_transition_customer ON rg_transition (customer, t)",
    """CREATE TABLE IF NOT EXISTS rg_command (
        id {ID}, body TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS rg_command_cursor (relay TEXT PRIMARY KEY, cursor BIGINT NOT NULL)",
)

_DECISION_COLS = (
    "t, customer, action, relay, queue_id, message_id, client_ip, sasl_username, verdict, state, mail_from, "
    "rcpt_count, symbols, released_at, id"
)
_INCIDENT_COLS = "id, customer, status, opened_at, closed_at, state, reason, counters, sprt"


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), sort_keys=True, default=str)


def _decision(row: Sequence[Any]) -> DecisionRecord:
    return DecisionRecord(
        float(row[0]),
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        int(row[11]),
        tuple(json.loads(row[12])),
        None if row[13] is None else float(row[13]),
        int(row[14]),
    )


def _incident(row: Sequence[Any]) -> Incident:
    return Incident(
        int(row[0]),
        row[1],
        row[2],
        float(row[3]),
        row[5],
        row[6],
        None if row[4] is None else float(row[4]),
        json.loads(row[7]),
        json.loads(row[8]),
    )


class SqlStore(ABC):
    """DecisionLog + IncidentStore + CommandQueue over a DB-API connection, serialised by one lock."""

    placeholder = "?"
    id_type = "INTEGER PRIMARY KEY AUTOINCREMENT"
    real_type = "REAL"

    def __init__(self) -> None:
        self._lock = threading.RLock()

    # --- dialect plumbing -------------------------------------------------------------------------

    @abstractmethod
    def _run(self, sql: str, params: Sequence[Any] = (), fetch: bool = False) -> list[tuple[Any, ...]]:
        """Execute one statement in its own transaction; rows when `fetch`."""

    @abstractmethod
    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Execute one statement for many parameter rows in a single transaction."""

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(self._sql(sql), params, True)

    def _x(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(self._sql(sql), params, False)

    def _create(self) -> None:
        for stmt in DDL:
            self._run(stmt.format(ID=self.id_type, REAL=self.real_type))

    # --- DecisionLog ------------------------------------------------------------------------------

    _INSERT_DECISION = (
        "INSERT INTO rg_decision (t, customer, action, relay, queue_id, message_id, client_ip, sasl_username, "
        "verdict, state, mail_from, rcpt_count, symbols, released_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def add_decisions(self, recs: Sequence[DecisionRecord]) -> None:
        """Many decisions in one transaction (the background writer's batches)."""
        if recs:
            self._run_many(self._sql(self._INSERT_DECISION), [self._decision_row(r) for r in recs])

    @staticmethod
    def _decision_row(rec: DecisionRecord) -> tuple[Any, ...]:
        return (
            rec.t,
            rec.customer,
            rec.action,
            rec.relay,
            rec.queue_id,
            normalise_message_id(rec.message_id),
            rec.client_ip,
            rec.sasl_username,
            rec.verdict,
            rec.state,
            rec.mail_from,
            rec.rcpt_count,
            json.dumps(list(rec.symbols)),
            rec.released_at,
        )

    def add_decision(self, rec: DecisionRecord) -> int:
        rows = self._q(self._INSERT_DECISION + " RETURNING id", self._decision_row(rec))
        return int(rows[0][0])

    def by_message_id(self, message_id: str) -> list[DecisionRecord]:
        mid = normalise_message_id(message_id)
        if not mid:
            return []
        rows = self._q(f"SELECT {_DECISION_COLS} FROM rg_decision WHERE message_id = ? ORDER BY t", (mid,))
        return [_decision(r) for r in rows]

    def by_queue_id(self, queue_id: str, relay: str | None = None) -> list[DecisionRecord]:
        if not queue_id:
            return []
        if relay is None:
            rows = self._q(f"SELECT {_DECISION_COLS} FROM rg_decision WHERE queue_id = ? ORDER BY t", (queue_id,))
        else:
            rows = self._q(
                f"SELECT {_DECISION_COLS} FROM rg_decision WHERE queue_id = ? AND relay = ? ORDER BY t",
                (queue_id, relay),
            )
        return [_decision(r) for r in rows]

    def by_client(self, client_ip: str, t: float, slack: float = 600.0) -> list[DecisionRecord]:
        rows = self._q(
            f"SELECT {_DECISION_COLS} FROM rg_decision WHERE client_ip = ? AND t >= ? AND t <= ?",
            (client_ip, t - slack, t + slack),
        )
        return sorted((_decision(r) for r in rows), key=lambda d: abs(d.t - t))

    def decisions_for(
        self, customer: str, since: float = 0.0, action: str | None = None, relay: str | None = None, limit: int = 1000
    ) -> list[DecisionRecord]:
        sql = f"SELECT {_DECISION_COLS} FROM rg_decision WHERE customer = ? AND t >= ?"
        params: list[Any] = [customer, since]
        if action is not None:
            sql += " AND action = ?"
            params.append(action)
        if relay is not None:
            sql += " AND relay = ?"
            params.append(relay)
        sql += " ORDER BY t DESC, id DESC LIMIT ?"
        params.append(int(limit))
        return [_decision(r) for r in self._q(sql, params)]

    def count_decisions(
        self, *, relay: str | None = None, customer: str | None = None, since: float = 0.0, action: str | None = None
    ) -> int:
        sql = "SELECT COUNT(*) FROM rg_decision WHERE t >= ?"
        params: list[Any] = [since]
        for col, val in (("relay", relay), ("customer", customer), ("action", action)):
            if val is not None:
                sql += f" AND {col} = ?"
                params.append(val)
        return int(self._q(sql, params)[0][0])

    def held_unreleased(self, customer: str, relay: str) -> list[DecisionRecord]:
        rows = self._q(
            f"SELECT {_DECISION_COLS} FROM rg_decision WHERE customer = ? AND relay = ? AND action = 'HOLD' "
            "AND queue_id <> '' AND released_at IS NULL ORDER BY t",
            (customer, relay),
        )
        return [_decision(r) for r in rows]

    def mark_released(self, ids: Sequence[int], t: float) -> None:
        with self._lock:
            for i in ids:
                self._x("UPDATE rg_decision SET released_at = ? WHERE id = ?", (t, int(i)))

    def purge_decisions(self, before: float) -> int:
        rows = self._q("DELETE FROM rg_decision WHERE t < ? RETURNING id", (before,))
        # the command queue keeps the newest KEEP_COMMANDS: far more than any relay can fall behind by
        self._x("DELETE FROM rg_command WHERE id <= (SELECT MAX(id) FROM rg_command) - ?", (KEEP_COMMANDS,))
        return len(rows)

    # --- IncidentStore ----------------------------------------------------------------------------

    def open_incident(self, customer: str, t: float, state: str, reason: str) -> Incident:
        with self._lock:
            self._x(
                "INSERT INTO rg_incident (customer, status, opened_at, closed_at, state, reason, counters, sprt) "
                "VALUES (?, 'open', ?, NULL, ?, ?, '{}', '{}') "
                "ON CONFLICT (customer) WHERE status = 'open' DO NOTHING",
                (customer, t, state, reason),
            )
            inc = self.current_incident(customer)
        assert inc is not None
        return inc

    def _events(self, incident_id: int) -> list[IncidentEvent]:
        rows = self._q(
            "SELECT t, kind, data, relay FROM rg_incident_event WHERE incident_id = ? ORDER BY t, id", (incident_id,)
        )
        return [IncidentEvent(float(r[0]), r[1], json.loads(r[2]), r[3]) for r in rows]

    def open_incident_id(self, customer: str) -> int | None:
        """The id of the customer's open incident, without loading its events (the per-message path)."""
        rows = self._q("SELECT id FROM rg_incident WHERE customer = ? AND status = 'open'", (customer,))
        return int(rows[0][0]) if rows else None

    def current_incident(self, customer: str) -> Incident | None:
        rows = self._q(f"SELECT {_INCIDENT_COLS} FROM rg_incident WHERE customer = ? AND status = 'open'", (customer,))
        if not rows:
            return None
        inc = _incident(rows[0])
        inc.events = self._events(inc.id)
        return inc

    def get_incident(self, incident_id: int) -> Incident | None:
        rows = self._q(f"SELECT {_INCIDENT_COLS} FROM rg_incident WHERE id = ?", (int(incident_id),))
        if not rows:
            return None
        inc = _incident(rows[0])
        inc.events = self._events(inc.id)
        return inc

    def list_incidents(
        self, status: str | None = None, customer: str | None = None, limit: int = 100
    ) -> list[Incident]:
        sql = f"SELECT {_INCIDENT_COLS} FROM rg_incident WHERE 1 = 1"
        params: list[Any] = []
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        if customer is not None:
            sql += " AND customer = ?"
            params.append(customer)
        sql += " ORDER BY opened_at DESC, id DESC LIMIT ?"
        params.append(int(limit))
        out = [_incident(r) for r in self._q(sql, params)]
        if out:
            # counts per kind, so a listing can show evidence and complaints without loading events
            ids = [i.id for i in out]
            marks = ", ".join("?" for _ in ids)
            counts = self._q(
                f"SELECT incident_id, kind, COUNT(*) FROM rg_incident_event WHERE incident_id IN ({marks}) "
                "GROUP BY incident_id, kind",
                ids,
            )
            by_id = {i.id: i for i in out}
            for iid, kind, n in counts:
                by_id[int(iid)].counters.setdefault("events", {})[kind] = int(n)
        return out

    def add_event(self, incident_id: int, event: IncidentEvent, dedupe_key: str | None = None) -> bool:
        """Append an event; False when `dedupe_key` was already used for this incident."""
        rows = self._q(
            "INSERT INTO rg_incident_event (incident_id, t, kind, relay, data, dedupe_key) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (incident_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING RETURNING id",
            (int(incident_id), event.t, event.kind, event.relay, _dumps(event.data), dedupe_key),
        )
        return bool(rows)

    def count_events(self, incident_id: int, kind: str) -> int:
        rows = self._q(
            "SELECT COUNT(*) FROM rg_incident_event WHERE incident_id = ? AND kind = ?", (int(incident_id), kind)
        )
        return int(rows[0][0])

    def has_event_key(self, incident_id: int, key: str) -> bool:
        rows = self._q(
            "SELECT 1 FROM rg_incident_event WHERE incident_id = ? AND dedupe_key = ?", (int(incident_id), key)
        )
        return bool(rows)

    def update_incident(
        self,
        incident_id: int,
        *,
        state: str | None = None,
        counters: Mapping[str, Any] | None = None,
        sprt: Mapping[str, Any] | None = None,
    ) -> None:
        with self._lock:
            if state is not None:
                self._x("UPDATE rg_incident SET state = ? WHERE id = ?", (state, int(incident_id)))
            if counters is not None:
                self._x("UPDATE rg_incident SET counters = ? WHERE id = ?", (_dumps(dict(counters)), int(incident_id)))
            if sprt is not None:
                self._x("UPDATE rg_incident SET sprt = ? WHERE id = ?", (_dumps(dict(sprt)), int(incident_id)))

    def close_incident(self, incident_id: int, t: float) -> None:
        self._x(
            "UPDATE rg_incident SET status = 'closed', closed_at = ? WHERE id = ? AND status = 'open'",
            (t, int(incident_id)),
        )

    def record_state(self, tr: Transition) -> None:
        with self._lock:
            self._x(
                "INSERT INTO rg_transition (customer, t, old, new, actor, reason, evidence, relay) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tr.customer,
                    tr.t,
                    tr.old.value,
                    tr.new.value,
                    tr.actor.value,
                    tr.reason,
                    _dumps(tr.evidence),
                    tr.relay,
                ),
            )
            if tr.new is ContainmentState.NORMAL:
                self._x("DELETE FROM rg_customer_state WHERE customer = ?", (tr.customer,))
            else:
                self._x(
                    "INSERT INTO rg_customer_state (customer, state, since, reason) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (customer) DO UPDATE SET state = excluded.state, since = excluded.since, "
                    "reason = excluded.reason",
                    (tr.customer, tr.new.value, tr.t, tr.reason),
                )

    def states(self) -> dict[str, tuple[str, float]]:
        return {r[0]: (r[1], float(r[2])) for r in self._q("SELECT customer, state, since FROM rg_customer_state")}

    def state_of(self, customer: str) -> tuple[str, float] | None:
        rows = self._q("SELECT state, since FROM rg_customer_state WHERE customer = ?", (customer,))
        return (rows[0][0], float(rows[0][1])) if rows else None

    def state_history(self, customer: str) -> list[Transition]:
        rows = self._q(
            "SELECT customer, old, new, t, actor, reason, evidence, relay FROM rg_transition WHERE customer = ? "
            "ORDER BY t, id",
            (customer,),
        )
        return [
            Transition.from_dict(
                {
                    "customer": r[0],
                    "old": r[1],
                    "new": r[2],
                    "t": r[3],
                    "actor": r[4],
                    "reason": r[5],
                    "evidence": json.loads(r[6]),
                    "relay": r[7],
                }
            )
            for r in rows
        ]

    # --- CommandQueue (the embedded default: CLI and daemon are separate processes) ---------------

    def push_command(self, cmd: Command) -> int:
        rows = self._q("INSERT INTO rg_command (body) VALUES (?) RETURNING id", (cmd.to_json(),))
        return int(rows[0][0])

    def commands_after(self, cursor: int, limit: int = 100) -> list[Command]:
        rows = self._q("SELECT id, body FROM rg_command WHERE id > ? ORDER BY id LIMIT ?", (int(cursor), int(limit)))
        return [Command.from_json(r[1], int(r[0])) for r in rows]

    def last_command_id(self) -> int:
        rows = self._q("SELECT MAX(id) FROM rg_command")
        return int(rows[0][0] or 0)

    def get_cursor(self, relay: str) -> int | None:
        rows = self._q("SELECT cursor FROM rg_command_cursor WHERE relay = ?", (relay,))
        return int(rows[0][0]) if rows else None

    def set_cursor(self, relay: str, cursor: int) -> None:
        self._x(
            "INSERT INTO rg_command_cursor (relay, cursor) VALUES (?, ?) "
            "ON CONFLICT (relay) DO UPDATE SET cursor = excluded.cursor",
            (relay, int(cursor)),
        )

    @abstractmethod
    def close(self) -> None: ...
