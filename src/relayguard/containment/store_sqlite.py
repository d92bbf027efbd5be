"""The embedded store: one SQLite file under `[storage] data_dir`, in WAL mode (readers such as the CLI
never block the relay's writes)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relayguard.containment.store_sql import SqlStore


class SqliteStore(SqlStore):
    def __init__(self, path: str | Path) -> None:
        super().__init__()
        p = str(path)
        if p != ":memory:":
            Path(p).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we run one statement per transaction ourselves (autocommit).
        self._db = sqlite3.connect(p, check_same_thread=False, isolation_level=None, timeout=10.0)
        self.path = p
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across process crashes in WAL mode; only an OS crash may lose the last commits.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
        self._create()

    def _run(self, sql: str, params: Sequence[Any] = (), fetch: bool = False) -> list[tuple[Any, ...]]:
        with self._lock:
            cur = self._db.execute(sql, tuple(params))
            rows = cur.fetchall()
            return rows if fetch else []

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(sql, [tuple(r) for r in rows])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
