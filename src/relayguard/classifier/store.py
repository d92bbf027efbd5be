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
from typing import Any

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
    step: float  # the message's gradient (y - p) / sqrt(n) when it was learned (what forget reverses)


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
    dws: list[F32] = field(default_factory=list)  # weight delta per bucket of each message
    dgs: list[float] = field(default_factory=list)  # squared-gradient delta (same for the message's buckets)
    signs: list[int] = field(default_factory=list)  # +1 learn, -1 forget (for the touch counts)
    put: dict[str, LearnedRecord] = field(default_factory=dict)
    delete: set[str] = field(default_factory=set)
    d_spam: int = 0
    d_ham: int = 0

    def add(self, buckets: U32, dw: F32, dg: float, sign: int) -> None:
        self.buckets.append(buckets)
        self.dws.append(dw)
        self.dgs.append(dg)
        self.signs.append(sign)

    def __bool__(self) -> bool:
        return bool(self.buckets or self.put or self.delete or self.d_spam or self.d_ham)

    def reduce(self) -> tuple[U32, F32, F32, npt.NDArray[np.int64]]:
        """Per distinct bucket: summed weight delta, summed squared-gradient delta, summed touch count."""
        if not self.buckets:
            z = np.zeros(0, np.float32)
            return (np.zeros(0, np.uint32), z, z, np.zeros(0, np.int64))
        allb = np.concatenate(self.buckets)
        lens = [len(b) for b in self.buckets]
        w = np.concatenate(self.dws).astype(np.float64)
        g = np.repeat(np.asarray(self.dgs, dtype=np.float64), lens)
        c = np.repeat(np.asarray(self.signs, dtype=np.int64), lens)
        uniq, inv = np.unique(allb, return_inverse=True)
        dw = np.bincount(inv, weights=w, minlength=len(uniq)).astype(np.float32)
        dg = np.bincount(inv, weights=g, minlength=len(uniq)).astype(np.float32)
        dc = np.bincount(inv, weights=c, minlength=len(uniq)).astype(np.int64)
        return uniq.astype(np.uint32), dw, dg, dc


@dataclass(frozen=True, slots=True)
class ModelDump:
    """A whole model, for export/import and the starter model."""

    info: ModelInfo
    buckets: U32
    weights: F32
    counts: npt.NDArray[np.uint32]
    days: npt.NDArray[np.uint32]
    accs: F32  # per-bucket sum of squared gradients (AdaGrad's per-feature rate)
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
    def accumulators(self, buckets: U32) -> F32:
        """Current squared-gradient sums of these buckets (only learning needs them)."""

    def weights_and_accumulators(self, buckets: U32) -> tuple[F32, F32]:
        return self.weights(buckets), self.accumulators(buckets)

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
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, w BLOB NOT NULL, c BLOB NOT NULL, d BLOB NOT NULL, g BLOB NOT NULL,
    seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_seq ON chunks(seq);
CREATE TABLE IF NOT EXISTS learned (
    digest TEXT PRIMARY KEY, is_spam INTEGER NOT NULL, step REAL NOT NULL);
"""

CHUNK_BITS = 8
CHUNK = 1 << CHUNK_BITS
# One chunk: weights, touch counts, last-touched days, squared-gradient sums.
_Chunk = tuple[F32, npt.NDArray[np.uint32], npt.NDArray[np.uint32], F32]


def _empty() -> _Chunk:
    return (np.zeros(CHUNK, np.float32), np.zeros(CHUNK, np.uint32), np.zeros(CHUNK, np.uint32),
            np.zeros(CHUNK, np.float32))


def _unpack(w: bytes, c: bytes, d: bytes, g: bytes) -> _Chunk:
    return (np.frombuffer(w, "<f4").astype(np.float32), np.frombuffer(c, "<u4").astype(np.uint32),
            np.frombuffer(d, "<u4").astype(np.uint32), np.frombuffer(g, "<f4").astype(np.float32))


class SqliteStore(Store):
    """One file in WAL mode: readers never block the writer, and a kill mid-write rolls back.

    Weights live in chunks of 256 buckets (a row holds four small arrays: weights, touch counts, days,
    squared-gradient sums)
    because a batch of learning touches hundreds of thousands of buckets: a row per bucket cost ~10 us
    per upsert (5 s per 1,000 messages); a chunk per row costs a few milliseconds per 100 chunks.

    Readers keep the weights in a dense in-memory array (2**bits float32; 16 MiB at 22 bits) so a
    classification is one numpy gather. The array follows the file through a sequence number: each
    commit stamps the chunks it rewrote, and a reader pulls only chunks newer than what it has (checked
    with PRAGMA data_version, which costs microseconds). Expiry and import bump a generation number,
    which makes readers reload everything.
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
        self._acc: F32 | None = None  # squared-gradient sums, mirrored only once something learns
        self._want_acc = False
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
        if self._mirror is not None and version == self._version and (self._acc is not None or not self._want_acc):
            return self._mirror
        with self._read():
            m = self._meta()
            if "bits" not in m:
                raise StoreError("no model in this database")
            if self._mirror is None or m["gen"] != self._gen or (self._want_acc and self._acc is None):
                self._mirror = np.zeros(1 << m["bits"], dtype=np.float32)
                self._acc = np.zeros(1 << m["bits"], dtype=np.float32) if self._want_acc else None
                self._seq = -1
            mirror, acc = self._mirror, self._acc
            if acc is None:
                for cid, w in self.db.execute("SELECT id, w FROM chunks WHERE seq > ?", (self._seq,)):
                    mirror[cid * CHUNK : (cid + 1) * CHUNK] = np.frombuffer(w, dtype="<f4")
            else:
                for cid, w, g in self.db.execute("SELECT id, w, g FROM chunks WHERE seq > ?", (self._seq,)):
                    mirror[cid * CHUNK : (cid + 1) * CHUNK] = np.frombuffer(w, dtype="<f4")
                    acc[cid * CHUNK : (cid + 1) * CHUNK] = np.frombuffer(g, dtype="<f4")
            self._seq = m["seq"]
            self._gen = m["gen"]
        self._version = version
        return mirror

    def accumulators(self, buckets: U32) -> F32:
        return self.weights_and_accumulators(buckets)[1]

    def weights_and_accumulators(self, buckets: U32) -> tuple[F32, F32]:
        self._want_acc = True
        w = self._refresh()
        assert self._acc is not None
        return w[buckets], self._acc[buckets]

    def _read(self) -> _Tx:
        return _Tx(self.db, "BEGIN")

    def weights(self, buckets: U32) -> F32:
        return self._refresh()[buckets]

    def record(self, digest: str) -> LearnedRecord | None:
        row = self.db.execute("SELECT is_spam, step FROM learned WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else LearnedRecord(digest, bool(row[0]), float(row[1]))

    # -- writes ---------------------------------------------------------------------------------------
    def _write_chunks(self, chunks: dict[int, _Chunk], seq: int) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO chunks(id, w, c, d, g, seq) VALUES (?, ?, ?, ?, ?, ?)",
            (
                (cid, w.astype("<f4").tobytes(), c.astype("<u4").tobytes(), d.astype("<u4").tobytes(),
                 g.astype("<f4").tobytes(), seq)
                for cid, (w, c, d, g) in chunks.items()
            ),
        )

    def _apply_deltas(self, b: U32, dw: F32, dg: F32, dc: npt.NDArray[np.int64], day: int, seq: int) -> None:
        """Read the touched chunks as one (k, 256) block each for w/c/d, add, write them back."""
        cids = (b >> CHUNK_BITS).astype(np.int64)
        ids = np.unique(cids)
        k = len(ids)
        w = np.zeros((k, CHUNK), np.float32)
        c = np.zeros((k, CHUNK), np.uint32)
        d = np.zeros((k, CHUNK), np.uint32)
        g = np.zeros((k, CHUNK), np.float32)
        idl = ids.tolist()
        for i in range(0, k, 900):
            part = idl[i : i + 900]
            q = f"SELECT id, w, c, d, g FROM chunks WHERE id IN ({','.join('?' * len(part))})"
            rows = self.db.execute(q, part).fetchall()
            if not rows:
                continue
            pos = np.searchsorted(ids, [r[0] for r in rows])
            w[pos] = np.frombuffer(b"".join(r[1] for r in rows), "<f4").reshape(-1, CHUNK)
            c[pos] = np.frombuffer(b"".join(r[2] for r in rows), "<u4").reshape(-1, CHUNK)
            d[pos] = np.frombuffer(b"".join(r[3] for r in rows), "<u4").reshape(-1, CHUNK)
            g[pos] = np.frombuffer(b"".join(r[4] for r in rows), "<f4").reshape(-1, CHUNK)
        row = np.searchsorted(ids, cids)
        off = (b & (CHUNK - 1)).astype(np.int64)
        # (row, off) pairs are unique (b is), so plain fancy-index updates are exact.
        w[row, off] += dw
        c[row, off] = np.clip(c[row, off].astype(np.int64) + dc, 0, 2**32 - 1).astype(np.uint32)
        d[row, off] = day
        g[row, off] = np.maximum(g[row, off] + dg, 0.0)
        wb, cb, db_, gb = w.astype("<f4"), c.astype("<u4"), d.astype("<u4"), g.astype("<f4")
        self.db.executemany(
            "INSERT OR REPLACE INTO chunks(id, w, c, d, g, seq) VALUES (?, ?, ?, ?, ?, ?)",
            ((cid, wb[j].tobytes(), cb[j].tobytes(), db_[j].tobytes(), gb[j].tobytes(), seq)
             for j, cid in enumerate(idl)),
        )

    def commit(self, batch: Batch, day: int) -> None:
        if not batch:
            return
        b, dw, dg, dc = batch.reduce()
        with self._tx():
            seq = self._meta()["seq"] + 1
            if len(b):
                self._apply_deltas(b, dw, dg, dc, day, seq)
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
        # Our own commit does not move our data_version: pull the new chunks now.
        self._version = -1

    def expire(self, min_count: int, before_day: int) -> int:
        dropped = 0
        with self._tx():
            seq = self._meta()["seq"] + 1
            changed: dict[int, _Chunk] = {}
            for cid, w, c, d, g in self.db.execute("SELECT id, w, c, d, g FROM chunks").fetchall():
                ch = _unpack(w, c, d, g)
                wa, ca, da, _ga = ch
                dead = (ca < min_count) & (da < before_day) & ((ca > 0) | (wa != 0))
                if dead.any():
                    dropped += int(dead.sum())
                    for arr in ch:
                        arr[dead] = 0
                    changed[cid] = ch
            self._write_chunks(changed, seq)
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
            self.db.execute("UPDATE meta SET value = value + 1 WHERE key = 'gen'")
        self._version = -1
        return dropped

    def dump(self, with_records: bool = True) -> ModelDump:
        with self._read():
            info = self.info()
            if info is None:
                raise StoreError("no model in this database")
            parts: list[list[Any]] = [[], [], [], [], []]
            for cid, w, c, d, g in self.db.execute("SELECT id, w, c, d, g FROM chunks ORDER BY id"):
                wa, ca, da, ga = _unpack(w, c, d, g)
                live = np.flatnonzero((ca > 0) | (wa != 0))
                for k, arr in enumerate(((live + cid * CHUNK), wa[live], ca[live], da[live], ga[live])):
                    parts[k].append(arr)
            records: tuple[LearnedRecord, ...] = ()
            if with_records:
                records = tuple(
                    LearnedRecord(dg, bool(sp), float(st))
                    for dg, sp, st in self.db.execute("SELECT digest, is_spam, step FROM learned ORDER BY digest")
                )

        def cat(p: list[Any], dtype: Any) -> Any:
            return np.concatenate(p).astype(dtype) if p else np.zeros(0, dtype)

        return ModelDump(info, cat(parts[0], np.uint32), cat(parts[1], np.float32), cat(parts[2], np.uint32),
                         cat(parts[3], np.uint32), cat(parts[4], np.float32), records)

    def load(self, dump: ModelDump) -> None:
        i = dump.info
        b = dump.buckets.astype(np.int64)
        chunks: dict[int, _Chunk] = {}
        if len(b):
            if int(b.max()) >= 1 << i.bits:
                raise StoreError("bucket outside the hash space")
            cids = b >> CHUNK_BITS
            ids, starts = np.unique(cids, return_index=True)
            ends = [*starts[1:].tolist(), len(b)]
            for cid, lo, hi in zip(ids.tolist(), starts.tolist(), ends, strict=True):
                ch = _empty()
                off = b[lo:hi] & (CHUNK - 1)
                ch[0][off] = dump.weights[lo:hi]
                ch[1][off] = dump.counts[lo:hi]
                ch[2][off] = dump.days[lo:hi]
                ch[3][off] = dump.accs[lo:hi]
                chunks[cid] = ch
        with self._tx():
            gen = self._meta().get("gen", 0) + 1
            self.db.execute("DELETE FROM chunks")
            self.db.execute("DELETE FROM learned")
            self.db.execute("DELETE FROM meta")
            self.db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [("bits", i.bits), ("features_version", i.features_version), ("n_spam", i.n_spam),
                 ("n_ham", i.n_ham), ("seq", 1), ("gen", gen)],
            )
            self._write_chunks(chunks, 1)
            self.db.executemany(
                "INSERT INTO learned(digest, is_spam, step) VALUES (?, ?, ?)",
                [(r.digest, int(r.is_spam), r.step) for r in dump.records],
            )
        self._version = -1

    def close(self) -> None:
        self.db.close()


class _Tx:
    """BEGIN [IMMEDIATE] ... COMMIT, or ROLLBACK on any exception (a read transaction sees one snapshot)."""

    def __init__(self, db: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> None:
        self.db = db
        self.begin = begin

    def __enter__(self) -> None:
        self.db.execute(self.begin)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
