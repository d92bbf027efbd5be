"""PostgreSQL for a fleet: every relay writes decisions and incidents to one database (psycopg 3).

Same schema and statements as SQLite (store_sql); one connection in autocommit mode, serialised by a
lock, reconnecting once when the server dropped it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from relayguard.containment.store_sql import SqlStore

log = logging.getLogger("relayguard.containment")


class PostgresStore(SqlStore):
    placeholder = "%s"
    id_type = "BIGSERIAL PRIMARY KEY"
    real_type = "DOUBLE PRECISION"

    def __init__(self, dsn: str, connect_timeout: float = 5.0) -> None:
        super().__init__()
        if not dsn:
            raise ValueError("[storage] postgres_dsn is empty")
        self.dsn = dsn
        self._timeout = connect_timeout
        self._conn = self._connect()
        with self._lock:
            # Several relays may start at once: serialise schema creation with an advisory lock.
            self._conn.execute("SELECT pg_advisory_lock(8008)")
            try:
                self._create()
            finally:
                self._conn.execute("SELECT pg_advisory_unlock(8008)")

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=max(1, int(self._timeout)))

    def _run(self, sql: str, params: Sequence[Any] = (), fetch: bool = False) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                cur = self._conn.execute(sql, tuple(params))
            except psycopg.OperationalError:
                if not self._conn.closed:
                    raise
                log.warning("containment: PostgreSQL connection lost; reconnecting")
                self._conn = self._connect()
                cur = self._conn.execute(sql, tuple(params))
            return cur.fetchall() if fetch and cur.description is not None else []

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            if self._conn.closed:
                self._conn = self._connect()
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.executemany(sql, [tuple(r) for r in rows])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
