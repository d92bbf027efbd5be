"""The model in Redis, shared by a fleet of scanners.

Keys (under a prefix): `meta` (hash: bits, features_version, n_spam, n_ham), `w` (bucket -> weight),
`g` (bucket -> squared-gradient sum), `c` (bucket -> touch count), `d` (bucket -> day last touched),
`learned` (digest -> "label:gradient").
A classification is one HMGET of the message's buckets; a batch of learning is one MULTI/EXEC of
HINCRBYFLOAT deltas, so concurrent learners add up and a dead client leaves no half-applied batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import redis

from relayguard.classifier.store import (
    F32,
    U32,
    Batch,
    LearnedRecord,
    ModelDump,
    ModelInfo,
    Store,
    StoreError,
)

_CHUNK = 10_000


class RedisStore(Store):
    def __init__(self, client: redis.Redis, prefix: str = "relayguard:classifier:") -> None:
        self.r = client
        self.p = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisStore:
        return cls(redis.Redis.from_url(url, socket_timeout=10.0), prefix)

    def _k(self, name: str) -> str:
        return self.p + name

    def info(self) -> ModelInfo | None:
        m: dict[Any, Any] = self.r.hgetall(self._k("meta"))
        if b"bits" not in m:
            return None
        return ModelInfo(
            int(m[b"bits"]), int(m[b"features_version"]), int(m.get(b"n_spam", 0)), int(m.get(b"n_ham", 0))
        )

    def create(self, bits: int, features_version: int) -> None:
        if self.r.hsetnx(self._k("meta"), "bits", bits):
            self.r.hset(self._k("meta"), mapping={"features_version": features_version, "n_spam": 0, "n_ham": 0})

    def _floats(self, name: str, buckets: U32) -> F32:
        if len(buckets) == 0:
            return np.zeros(0, np.float32)
        vals: list[Any] = self.r.hmget(self._k(name), buckets.tolist())
        return np.array([0.0 if v is None else float(v) for v in vals], dtype=np.float32)

    def weights(self, buckets: U32) -> F32:
        return self._floats("w", buckets)

    def accumulators(self, buckets: U32) -> F32:
        return np.maximum(self._floats("g", buckets), 0.0)

    def record(self, digest: str) -> LearnedRecord | None:
        v: Any = self.r.hget(self._k("learned"), digest)
        if v is None:
            return None
        label, _, step = v.decode().partition(":")
        return LearnedRecord(digest, label == "1", float(step))

    def commit(self, batch: Batch, day: int) -> None:
        if not batch:
            return
        b, dw, dg, dc = batch.reduce()
        pipe: Any = self.r.pipeline(transaction=True)
        kw, kg, kc, kd = self._k("w"), self._k("g"), self._k("c"), self._k("d")
        for bucket, w, g, c in zip(b.tolist(), dw.tolist(), dg.tolist(), dc.tolist(), strict=True):
            pipe.hincrbyfloat(kw, bucket, w)
            pipe.hincrbyfloat(kg, bucket, g)
            if c:
                pipe.hincrby(kc, bucket, c)
        for i in range(0, len(b), _CHUNK):
            pipe.hset(kd, mapping=dict.fromkeys(b[i : i + _CHUNK].tolist(), day))
        if batch.delete:
            pipe.hdel(self._k("learned"), *batch.delete)
        if batch.put:
            pipe.hset(
                self._k("learned"), mapping={r.digest: f"{int(r.is_spam)}:{r.step!r}" for r in batch.put.values()}
            )
        pipe.hincrby(self._k("meta"), "n_spam", batch.d_spam)
        pipe.hincrby(self._k("meta"), "n_ham", batch.d_ham)
        pipe.execute()

    def expire(self, min_count: int, before_day: int) -> int:
        counts = self._hash_ints("c")
        days = self._hash_ints("d")
        dead = [b for b, d in days.items() if d < before_day and counts.get(b, 0) < min_count]
        for i in range(0, len(dead), _CHUNK):
            chunk = dead[i : i + _CHUNK]
            pipe: Any = self.r.pipeline(transaction=True)
            for k in ("w", "g", "c", "d"):
                pipe.hdel(self._k(k), *chunk)
            pipe.execute()
        return len(dead)

    def _hash_ints(self, name: str) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.r.hscan_iter(self._k(name), count=_CHUNK)}

    def dump(self, with_records: bool = True) -> ModelDump:
        info = self.info()
        if info is None:
            raise StoreError("no model in this Redis")
        w = {int(k): float(v) for k, v in self.r.hscan_iter(self._k("w"), count=_CHUNK)}
        g = {int(k): float(v) for k, v in self.r.hscan_iter(self._k("g"), count=_CHUNK)}
        c = self._hash_ints("c")
        d = self._hash_ints("d")
        keys = sorted(w)
        records: list[LearnedRecord] = []
        if with_records:
            for k, v in self.r.hscan_iter(self._k("learned"), count=_CHUNK):
                label, _, step = v.decode().partition(":")
                records.append(LearnedRecord(k.decode(), label == "1", float(step)))
            records.sort(key=lambda r: r.digest)
        return ModelDump(
            info,
            np.array(keys, dtype=np.uint32),
            np.array([w[k] for k in keys], dtype=np.float32),
            np.array([max(0, c.get(k, 0)) for k in keys], dtype=np.uint32),
            np.array([d.get(k, 0) for k in keys], dtype=np.uint32),
            np.array([max(0.0, g.get(k, 0.0)) for k in keys], dtype=np.float32),
            tuple(records),
        )

    def load(self, dump: ModelDump) -> None:
        i = dump.info
        pipe: Any = self.r.pipeline(transaction=True)
        pipe.delete(*(self._k(n) for n in ("meta", "w", "g", "c", "d", "learned")))
        pipe.hset(
            self._k("meta"),
            mapping={"bits": i.bits, "features_version": i.features_version, "n_spam": i.n_spam, "n_ham": i.n_ham},
        )
        keys = dump.buckets.tolist()
        columns = (("w", dump.weights.tolist()), ("g", dump.accs.tolist()), ("c", dump.counts.tolist()),
                   ("d", dump.days.tolist()))
        for name, arr in columns:
            for j in range(0, len(keys), _CHUNK):
                pipe.hset(self._k(name), mapping=dict(zip(keys[j : j + _CHUNK], arr[j : j + _CHUNK], strict=True)))
        for j in range(0, len(dump.records), _CHUNK):
            pipe.hset(
                self._k("learned"),
                mapping={r.digest: f"{int(r.is_spam)}:{r.step!r}" for r in dump.records[j : j + _CHUNK]},
            )
        pipe.execute()

    def close(self) -> None:
        self.r.close()
