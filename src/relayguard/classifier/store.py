"""Where the model lives: a narrow interface, SQLite embedded (default) and Redis for a fleet.

The model is a vector of weights over hashed feature buckets, plus per-bucket bookkeeping for expiry
(how many learned messages touched the bucket, and the day it was last touched), the learned counts and
one record per learned message (digest -> label and the step applied, which is what makes `forget`
and relabelling exact for that message's own contribution).

Writes are batches applied as *deltas* in one transaction: two writers (a `learn` run and autolearn
in a server) add up instead of overwriting each other, and a kill mid-batch leaves the previous state.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger("relayguard.classifier")

F32 = npt.NDArray[np.float32]
U32 = npt.NDArray[np.uint32]


class StoreError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class LearnedRecord:
    digest: str
    is_spam: bool
    step: float  # the scalar added to every feature bucket of the message when it was learned


@dataclass(frozen=True, slots=True)
class ModelInfo:
    bits: int
    features_version: int
    n_spam: int
    n_ham: int


@dataclass
class Batch:
    """Pending changes; `Store.commit` applies them atomically."""

    buckets: list[U32] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    signs: list[int] = field(default_factory=list)  # +1 learn, -1 forget (for the touch counts)
    put: dict[str, LearnedRecord] = field(default_factory=dict)
    delete: set[str] = field(default_factory=set)
    d_spam: int = 0
    d_ham: int = 0

    def add(self, buckets: U32, step: float, sign: int) -> None:
        self.buckets.append(buckets)
        self.steps.append(step)
        self.signs.append(sign)

    def __bool__(self) -> bool:
        return bool(self.buckets or self.put or self.delete or self.d_spam or self.d_ham)

    def reduce(self) -> tuple[U32, F32, npt.NDArray[np.int64]]:
        """Per distinct bucket: the summed weight delta and the summed touch count."""
        if not self.buckets:
            return (np.zeros(0, np.uint32), np.zeros(0, np.float32), np.zeros(0, np.int64))
        allb = np.concatenate(self.buckets)
        lens = [len(b) for b in self.buckets]
        w = np.repeat(np.asarray(self.steps, dtype=np.float64), lens)
        c = np.repeat(np.asarray(self.signs, dtype=np.int64), lens)
        uniq, inv = np.unique(allb, return_inverse=True)
        dw = np.bincount(inv, weights=w, minlength=len(uniq)).astype(np.float32)
        dc = np.bincount(inv, weights=c, minlength=len(uniq)).astype(np.int64)
        return uniq.astype(np.uint32), dw, dc


@dataclass(frozen=True, slots=True)
class ModelDump:
    """A whole model, for export/import and the starter model."""

    info: ModelInfo
    buckets: U32
    weights: F32
    counts: npt.NDArray[np.uint32]
    days: npt.NDArray[np.uint32]
    records: tuple[LearnedRecord, ...] = ()


def today(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 86400)


class Store(ABC):
    """The interface the classifier needs."""

    @abstractmethod
    def info(self) -> ModelInfo | None:
        """None when the store holds no model yet."""

    @abstractmethod
    def create(self, bits: int, features_version: int) -> None: ...

    @abstractmethod
    def weights(self, buckets: U32) -> F32:
        """Current weights of these buckets (0 for unknown ones)."""

    @abstractmethod
    def record(self, digest: str) -> LearnedRecord | None: ...

    @abstractmethod
    def commit(self, batch: Batch, day: int) -> None:
        """Apply a batch atomically."""

    @abstractmethod
    def expire(self, min_count: int, before_day: int) -> int:
        """Drop buckets touched by fewer than min_count messages and not since before_day."""

    @abstractmethod
    def dump(self, with_records: bool = True) -> ModelDump: ...

    @abstractmethod
    def load(self, dump: ModelDump) -> None:
        """Replace the whole model with this one."""

    @abstractmethod
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS weights (
    bucket INTEGER PRIMARY KEY, weight REAL NOT NULL, count INTEGER NOT NULL,
    day INTEGER NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS weights_seq ON weights(seq);
CREATE TABLE IF NOT EXISTS learned (
    digest TEXT PRIMARY KEY, is_spam INTEGER NOT NULL, step REAL NOT NULL);
"""


class SqliteStore(Store):
    """One file in WAL mode: readers never block the writer, and a kill mid-write rolls back.

    Readers keep the weights in a dense in-memory array (2**bits float32; 16 MiB at 22 bits) so a
    classification is one numpy gather. The array follows the file through a sequence number: each
    commit stamps its rows, and a reader pulls only rows newer than what it has. Expiry and import
    bump a generation number, which makes readers reload everything.
    """

    def __init__(self, path: Path | str, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._mirror: F32 | None = None
        self._seq = -1
        self._gen = -1
        self._version = -1

    # -- meta -----------------------------------------------------------------------------------------
    def _meta(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    def info(self) -> ModelInfo | None:
        m = self._meta()
        if "bits" not in m:
            return None
        return ModelInfo(m["bits"], m["features_version"], m.get("n_spam", 0), m.get("n_ham", 0))

    def create(self, bits: int, features_version: int) -> None:
        with self._tx():
            if "bits" in self._meta():
                return
            self.db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("bits", bits),
                    ("features_version", features_version),
                    ("n_spam", 0),
                    ("n_ham", 0),
                    ("seq", 0),
                    ("gen", 0),
                ],
            )

    def _tx(self) -> _Tx:
        return _Tx(self.db)

    # -- reads ----------------------------------------------------------------------------------------
    def _refresh(self) -> F32:
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if self._mirror is not None and version == self._version:
            return self._mirror
        m = self._meta()
        if "bits" not in m:
            raise StoreError("no model in this database")
        if self._mirror is None or m["gen"] != self._gen:
            self._mirror = np.zeros(1 << m["bits"], dtype=np.float32)
            self._seq = -1
        mirror = self._mirror
        cur = self.db.execute("SELECT bucket, weight FROM weights WHERE seq > ?", (self._seq,))
        while True:
            rows = cur.fetchmany(100_000)
            if not rows:
                break
            arr = np.array(rows, dtype=np.float64)
            mirror[arr[:, 0].astype(np.int64)] = arr[:, 1]
        self._seq = m["seq"]
        self._gen = m["gen"]
        self._version = version
        return mirror

    def weights(self, buckets: U32) -> F32:
        return self._refresh()[buckets]

    def record(self, digest: str) -> LearnedRecord | None:
        row = self.db.execute("SELECT is_spam, step FROM learned WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else LearnedRecord(digest, bool(row[0]), float(row[1]))

    # -- writes ---------------------------------------------------------------------------------------
    def commit(self, batch: Batch, day: int) -> None:
        if not batch:
            return
        b, dw, dc = batch.reduce()
        with self._tx():
            seq = self._meta()["seq"] + 1
            self.db.executemany(
                "INSERT INTO weights(bucket, weight, count, day, seq) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(bucket) DO UPDATE SET weight = weight + excluded.weight, "
                "count = max(0, count + excluded.count), day = excluded.day, seq = excluded.seq",
                zip(b.tolist(), dw.tolist(), dc.tolist(), [day] * len(b), [seq] * len(b), strict=True),
            )
            if batch.delete:
                self.db.executemany("DELETE FROM learned WHERE digest = ?", [(d,) for d in batch.delete])
            if batch.put:
                self.db.executemany(
                    "INSERT OR REPLACE INTO learned(digest, is_spam, step) VALUES (?, ?, ?)",
                    [(r.digest, int(r.is_spam), r.step) for r in batch.put.values()],
                )
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
            self.db.execute("UPDATE meta SET value = max(0, value + ?) WHERE key = 'n_spam'", (batch.d_spam,))
            self.db.execute("UPDATE meta SET value = max(0, value + ?) WHERE key = 'n_ham'", (batch.d_ham,))
        # Our own commit does not move our data_version: pull our rows now.
        self._version = -1

    def expire(self, min_count: int, before_day: int) -> int:
        with self._tx():
            n = self.db.execute("DELETE FROM weights WHERE count < ? AND day < ?", (min_count, before_day)).rowcount
            self.db.execute("UPDATE meta SET value = value + 1 WHERE key = 'gen'")
        self._version = -1
        return int(n)

    def dump(self, with_records: bool = True) -> ModelDump:
        info = self.info()
        if info is None:
            raise StoreError("no model in this database")
        rows = self.db.execute("SELECT bucket, weight, count, day FROM weights ORDER BY bucket").fetchall()
        arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
        records: tuple[LearnedRecord, ...] = ()
        if with_records:
            records = tuple(
                LearnedRecord(d, bool(s), float(st))
                for d, s, st in self.db.execute("SELECT digest, is_spam, step FROM learned ORDER BY digest")
            )
        return ModelDump(
            info,
            arr[:, 0].astype(np.uint32),
            arr[:, 1].astype(np.float32),
            np.clip(arr[:, 2], 0, 2**32 - 1).astype(np.uint32),
            arr[:, 3].astype(np.uint32),
            records,
        )

    def load(self, dump: ModelDump) -> None:
        i = dump.info
        with self._tx():
            self.db.execute("DELETE FROM weights")
            self.db.execute("DELETE FROM learned")
            self.db.execute("DELETE FROM meta")
            self.db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("bits", i.bits),
                    ("features_version", i.features_version),
                    ("n_spam", i.n_spam),
                    ("n_ham", i.n_ham),
                    ("seq", 1),
                    ("gen", int(time.time() * 1000) & 0x7FFFFFFF),
                ],
            )
            self.db.executemany(
                "INSERT INTO weights(bucket, weight, count, day, seq) VALUES (?, ?, ?, ?, 1)",
                zip(
                    dump.buckets.tolist(), dump.weights.tolist(), dump.counts.tolist(), dump.days.tolist(), strict=True
                ),
            )
            self.db.executemany(
                "INSERT INTO learned(digest, is_spam, step) VALUES (?, ?, ?)",
                [(r.digest, int(r.is_spam), r.step) for r in dump.records],
            )
        self._version = -1

    def close(self) -> None:
        self.db.close()


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
