"""The classifier's Python API: what the check, `relayguard learn` and the outbound detector call.

clf = Classifier.open(settings)
p, confidence = clf.classify(facts)
clf.learn(facts, is_spam=True)      # idempotent per message digest; the other label moves it
clf.forget(facts)
with clf.batch():                   # many learns, one transaction
    ...
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from relayguard.classifier.features import FEATURES_VERSION, FeatureExtractor, is_verdict_header
from relayguard.classifier.model import LogisticModel, confidence
from relayguard.classifier.settings import ClassifierSettings
from relayguard.classifier.store import F32, U32, Batch, LearnedRecord, ModelInfo, Store, StoreError, today
from relayguard.message.facts import MessageFacts

if TYPE_CHECKING:
    from relayguard.config.schema import Settings

log = logging.getLogger("relayguard.classifier")


class LearnResult(Enum):
    LEARNED = "learned"
    UNCHANGED = "unchanged"  # already learned with this label
    RELABELLED = "relabelled"  # was learned with the other label; moved
    FORGOTTEN = "forgotten"
    UNKNOWN = "unknown"  # forget of a message never learned


_HEADER_LINE = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def strip_verdict_headers(raw: bytes) -> bytes:
    """Remove other filters' verdict header fields (with their continuation lines) from a raw message.

    Used for the message digest (a message re-scanned by another filter is the same message) and by the
    accuracy bench so every contestant sees the same bytes.
    """
    end = raw.find(b"\n\n")
    end_crlf = raw.find(b"\r\n\r\n")
    if end < 0 or (0 <= end_crlf < end):
        end = end_crlf
    if end < 0:
        end = len(raw)
    head, body = raw[:end], raw[end:]
    out: list[bytes] = []
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                out.append(line)
            continue
        m = _HEADER_LINE.match(line)
        dropping = bool(m and is_verdict_header(m.group(1).decode("ascii")))
        if not dropping:
            out.append(line)
    return b"".join(out) + body


def digest(facts: MessageFacts) -> str:
    raw = facts.raw
    if raw.startswith(b"From "):
        nl = raw.find(b"\n")
        raw = raw[nl + 1 :] if nl >= 0 else b""
    return hashlib.sha256(strip_verdict_headers(raw)).hexdigest()


class Classifier:
    def __init__(
        self, store: Store, cfg: ClassifierSettings | None = None, *, extractor: FeatureExtractor | None = None
    ) -> None:
        self.cfg = cfg or ClassifierSettings()
        self.store = store
        info = store.info()
        if info is None:
            store.create(self.cfg.hash_bits, FEATURES_VERSION)
            info = store.info()
            assert info is not None
        if info.features_version != FEATURES_VERSION:
            raise StoreError(
                f"model was learned with features version {info.features_version}, this relayguard uses "
                f"{FEATURES_VERSION}: relearn or import a matching model"
            )
        self.bits = info.bits
        self.extractor = extractor or FeatureExtractor(bits=info.bits)
        if self.extractor.bits != info.bits:
            raise StoreError("feature extractor and model disagree on hash bits")
        self.model = LogisticModel(rate=self.cfg.learning_rate)
        self._batch: Batch | None = None
        self._pending: F32 | None = None  # weight deltas not yet committed, dense
        self._pending_acc: F32 | None = None  # squared-gradient deltas not yet committed, dense
        self._depth = 0

    @classmethod
    def open(cls, settings: Settings) -> Classifier:
        from relayguard.classifier.starter import seed_if_empty
        from relayguard.classifier.store_factory import open_store

        cfg = classifier_settings(settings)
        store = open_store(settings, cfg)
        if cfg.starter:
            seed_if_empty(store)
        return cls(store, cfg)

    # -- reading --------------------------------------------------------------------------------------
    def info(self) -> ModelInfo:
        info = self.store.info()
        assert info is not None
        b = self._batch
        if b is None:
            return info
        return ModelInfo(info.bits, info.features_version, info.n_spam + b.d_spam, info.n_ham + b.d_ham)

    @property
    def trained(self) -> bool:
        i = self.info()
        return min(i.n_spam, i.n_ham) >= self.cfg.min_learned

    def _weights(self, idx: U32) -> F32:
        w = self.store.weights(idx)
        if self._pending is not None:
            w = w + self._pending[idx]
        return w

    def probability_of(self, idx: U32) -> float:
        return self.model.probability(self._weights(idx))

    def classify(self, facts: MessageFacts) -> tuple[float, float]:
        """(spam probability, confidence in [0, 1])."""
        p = self.probability_of(self.extractor.indices(facts))
        return p, confidence(p)

    # -- learning -------------------------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group learns into one transaction (committed on exit, discarded on an exception)."""
        self._depth += 1
        if self._batch is None:
            self._batch = Batch()
        try:
            yield
        except BaseException:
            if self._depth == 1:
                self._discard()
            raise
        finally:
            self._depth -= 1
        if self._depth == 0:
            self.flush()

    def flush(self) -> None:
        b = self._batch
        if b is None:
            return
        self.store.commit(b, today())
        self._discard()

    def _discard(self) -> None:
        if self._pending is not None and self._pending_acc is not None and self._batch is not None:
            for idx in self._batch.buckets:
                self._pending[idx] = 0.0
                self._pending_acc[idx] = 0.0
        self._batch = None

    def _record(self, dg: str) -> LearnedRecord | None:
        b = self._batch
        if b is not None:
            if dg in b.put:
                return b.put[dg]
            if dg in b.delete:
                return None
        return self.store.record(dg)

    def _ensure_pending(self) -> None:
        if self._pending is None or self._pending_acc is None:
            self._pending = np.zeros(1 << self.bits, dtype=np.float32)
            self._pending_acc = np.zeros(1 << self.bits, dtype=np.float32)

    def _apply(self, idx: U32, g: float, sign: int, stored_acc: F32 | None = None) -> None:
        """Add (sign=+1) or remove (sign=-1) gradient g on these buckets, AdaGrad-scaled."""
        b = self._batch
        assert b is not None
        self._ensure_pending()
        assert self._pending is not None and self._pending_acc is not None
        if stored_acc is None:
            stored_acc = self.store.accumulators(idx)
        acc = stored_acc + self._pending_acc[idx]
        g2 = np.float32(g * g)
        if sign > 0:
            acc = acc + g2
            dw = self.model.deltas(g, acc)
        else:
            dw = -self.model.deltas(g, acc)
        self._pending[idx] += dw
        self._pending_acc[idx] += g2 * sign
        b.add(idx, dw, float(g2) * sign, sign)

    def learn(self, facts: MessageFacts, is_spam: bool, *, idx: U32 | None = None) -> LearnResult:
        with self.batch():
            return self._learn(facts, is_spam, idx)

    def _learn(self, facts: MessageFacts, is_spam: bool, idx: U32 | None) -> LearnResult:
        b = self._batch
        assert b is not None
        dg = digest(facts)
        old = self._record(dg)
        if old is not None and old.is_spam == is_spam:
            return LearnResult.UNCHANGED
        if idx is None:
            idx = self.extractor.indices(facts)
        if old is not None:
            self._unlearn(idx, old)
        self._ensure_pending()
        assert self._pending is not None and self._pending_acc is not None
        w, acc = self.store.weights_and_accumulators(idx)  # one freshness check for both
        p = self.model.probability(w + self._pending[idx])
        g = self.model.gradient(p, is_spam, len(idx))
        self._apply(idx, g, +1, acc)
        b.put[dg] = LearnedRecord(dg, is_spam, g)
        b.delete.discard(dg)
        if is_spam:
            b.d_spam += 1
        else:
            b.d_ham += 1
        return LearnResult.LEARNED if old is None else LearnResult.RELABELLED

    def _unlearn(self, idx: U32, old: LearnedRecord) -> None:
        b = self._batch
        assert b is not None
        self._apply(idx, old.step, -1)
        b.put.pop(old.digest, None)
        b.delete.add(old.digest)
        if old.is_spam:
            b.d_spam -= 1
        else:
            b.d_ham -= 1

    def forget(self, facts: MessageFacts) -> LearnResult:
        with self.batch():
            old = self._record(digest(facts))
            if old is None:
                return LearnResult.UNKNOWN
            self._unlearn(self.extractor.indices(facts), old)
            return LearnResult.FORGOTTEN

    def expire(self, now: float | None = None) -> int:
        self.flush()
        return self.store.expire(self.cfg.expire_min_count, today(now) - self.cfg.expire_days)

    def close(self) -> None:
        self.flush()
        self.store.close()


def classifier_settings(settings: Settings) -> ClassifierSettings:
    c = settings.classifier
    if isinstance(c, ClassifierSettings):
        return c
    return ClassifierSettings.model_validate(c or {})
