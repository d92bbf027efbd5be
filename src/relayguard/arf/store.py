"""Complaints in SQLite (the default: `<[storage] data_dir>/arf.sqlite3`).

Every complaint received is kept, matched or not, parseable or not: an abuse desk must be able to
read what came in. The duplicate key is unique: a second copy of a complaint increments `duplicates`
on the first and is otherwise not counted. The raw report is kept up to `keep_raw_bytes`.

One connection, guarded by a lock: the SMTP listener (an event loop, possibly in its own thread) and
the CLI or tests may use the same store.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from relayguard.arf.model import Complaint

SCHEMA = """
CREATE TABLE IF NOT EXISTS complaints (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    received_at REAL NOT NULL,
    status TEXT NOT NULL,
    feedback_type TEXT NOT NULL,
    reporter TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    arrival REAL,
    message_id TEXT NOT NULL,
    customer TEXT NOT NULL,
    relay TEXT NOT NULL,
    method TEXT NOT NULL,
    detail TEXT NOT NULL,
    warnings TEXT NOT NULL,
    source TEXT NOT NULL,
    duplicates INTEGER NOT NULL DEFAULT 0,
    raw BLOB
);
CREATE INDEX IF NOT EXISTS complaints_customer ON complaints (customer, received_at);
CREATE INDEX IF NOT EXISTS complaints_relay ON complaints (relay, received_at);
CREATE INDEX IF NOT EXISTS complaints_status ON complaints (status, received_at);
CREATE TABLE IF NOT EXISTS reported (
    incident TEXT PRIMARY KEY,
    t REAL NOT NULL,
    reports INTEGER NOT NULL
);
"""

_COLS = (
    "id, key, received_at, status, feedback_type, reporter, user_agent, source_ip, arrival, message_id, "
    "customer, relay, method, detail, warnings, source, duplicates"
)


def _row(r: tuple[object, ...]) -> Complaint:
    warnings = json.loads(str(r[14])) if r[14] else []
    return Complaint(
        id=int(r[0]),  # type: ignore[call-overload]
        key=str(r[1]),
        received_at=float(r[2]),  # type: ignore[arg-type]
        status=str(r[3]),
        feedback_type=str(r[4]),
        reporter=str(r[5]),
        user_agent=str(r[6]),
        source_ip=str(r[7]),
        arrival=None if r[8] is None else float(r[8]),  # type: ignore[arg-type]
        message_id=str(r[9]),
        customer=str(r[10]),
        relay=str(r[11]),
        method=str(r[12]),
        detail=str(r[13]),
        warnings=tuple(str(w) for w in warnings),
        source=str(r[15]),
        duplicates=int(r[16]),  # type: ignore[call-overload]
    )


class ComplaintStore:
    def __init__(self, path: str | Path = ":memory:", keep_raw_bytes: int = 262_144) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.keep_raw_bytes = keep_raw_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL") if self.path != ":memory:" else None
            self._db.executescript(SCHEMA)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, c: Complaint, raw: bytes = b"") -> tuple[Complaint, bool]:
        """Store a complaint; (stored complaint, True) when new, (the first copy, False) for a duplicate."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO complaints (key, received_at, status, feedback_type, reporter, user_agent,"
                " source_ip, arrival, message_id, customer, relay, method, detail, warnings, source, raw)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    c.key,
                    c.received_at,
                    c.status,
                    c.feedback_type,
                    c.reporter,
                    c.user_agent,
                    c.source_ip,
                    c.arrival,
                    c.message_id,
                    c.customer,
                    c.relay,
                    c.method,
                    c.detail,
                    json.dumps(list(c.warnings)),
                    c.source,
                    raw[: self.keep_raw_bytes],
                ),
            )
            new = cur.rowcount == 1
            if not new:
                self._db.execute("UPDATE complaints SET duplicates = duplicates + 1 WHERE key = ?", (c.key,))
            self._db.commit()
            row = self._db.execute(f"SELECT {_COLS} FROM complaints WHERE key = ?", (c.key,)).fetchone()
        return _row(row), new

    def get(self, complaint_id: int) -> Complaint | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLS} FROM complaints WHERE id = ?", (complaint_id,)).fetchone()
        return _row(row) if row else None

    def raw(self, complaint_id: int) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT raw FROM complaints WHERE id = ?", (complaint_id,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def recent(
        self, status: str | None = None, customer: str | None = None, since: float = 0.0, limit: int = 100
    ) -> list[Complaint]:
        q = f"SELECT {_COLS} FROM complaints WHERE received_at >= ?"
        args: list[object] = [since]
        if status:
            q += " AND status = ?"
            args.append(status)
        if customer is not None:
            q += " AND customer = ?"
            args.append(customer)
        q += " ORDER BY received_at DESC, id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(q, args).fetchall()
        return [_row(r) for r in rows]

    def set_match(self, complaint_id: int, customer: str, relay: str, method: str, detail: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE complaints SET status='matched', customer=?, relay=?, method=?, detail=? WHERE id=?",
                (customer, relay, method, detail, complaint_id),
            )
            self._db.commit()

    def mark_reported(self, incident: str, t: float, reports: int) -> bool:
        """Remember that an incident was reported automatically; False if it already was."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO reported (incident, t, reports) VALUES (?,?,?)", (incident, t, reports)
            )
            self._db.commit()
        return cur.rowcount == 1

    def was_reported(self, incident: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM reported WHERE incident = ?", (incident,)).fetchone()
        return row is not None

    def counts(self, since: float = 0.0) -> dict[str, int]:
        """Distinct complaints by status, plus `duplicates` (extra copies received) and `total`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT status, COUNT(*), SUM(duplicates) FROM complaints WHERE received_at >= ? GROUP BY status",
                (since,),
            ).fetchall()
        out = {"matched": 0, "unmatched": 0, "unparseable": 0, "duplicates": 0}
        for status, n, dup in rows:
            out[str(status)] = int(n)
            out["duplicates"] += int(dup or 0)
        out["total"] = out["matched"] + out["unmatched"] + out["unparseable"]
        return out

    def by_customer(self, since: float = 0.0) -> list[tuple[str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT customer, COUNT(*) FROM complaints WHERE status='matched' AND received_at >= ?"
                " GROUP BY customer ORDER BY COUNT(*) DESC, customer",
                (since,),
            ).fetchall()
        return [(str(c), int(n)) for c, n in rows]

    def by_relay(self, since: float = 0.0) -> list[tuple[str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT relay, COUNT(*) FROM complaints WHERE status='matched' AND received_at >= ?"
                " GROUP BY relay ORDER BY COUNT(*) DESC, relay",
                (since,),
            ).fetchall()
        return [(str(r) or "(unknown)", int(n)) for r, n in rows]
