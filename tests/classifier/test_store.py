"""The storage contract, run against SQLite and a real redis-server; SQLite kill safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from relayguard.classifier.api import Classifier
from relayguard.classifier.settings import ClassifierSettings
from relayguard.classifier.store import Batch, LearnedRecord, SqliteStore, Store
from relayguard.message.facts import MessageFacts

Corpus = tuple[list[MessageFacts], list[MessageFacts]]


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "s.sqlite")
    else:
        from relayguard.classifier.redis_store import RedisStore

        url = request.getfixturevalue("redis_url")
        s = RedisStore.from_url(url, "t:")
    yield s
    s.close()


def test_contract(store: Store) -> None:
    assert store.info() is None
    store.create(16, 2)
    store.create(18, 2)  # a second create keeps the first model
    info = store.info()
    assert info is not None and (info.bits, info.features_version, info.n_spam) == (16, 2, 0)
    b = Batch()
    idx = np.array([1, 5, 70000 % (1 << 16), 300], dtype=np.uint32)
    idx.sort()
    b.add(idx, np.full(4, 0.25, np.float32), 0.5, +1)
    b.add(idx[:2], np.full(2, -0.05, np.float32), 0.25, +1)
    b.put["ab" * 32] = LearnedRecord("ab" * 32, True, 0.25)
    b.d_spam = 1
    store.commit(b, day=100)
    w = store.weights(idx)
    assert np.allclose(w, [0.2, 0.2, 0.25, 0.25])
    assert np.allclose(store.accumulators(idx), [0.75, 0.75, 0.5, 0.5])
    assert np.allclose(store.weights(np.array([2, 3], dtype=np.uint32)), 0.0)
    rec = store.record("ab" * 32)
    assert rec == LearnedRecord("ab" * 32, True, 0.25)
    assert store.record("cd" * 32) is None
    info = store.info()
    assert info is not None and info.n_spam == 1

    dump = store.dump()
    assert list(dump.buckets) == sorted(idx.tolist())
    assert list(dump.counts) == [2, 2, 1, 1]
    assert set(dump.days.tolist()) == {100}
    # Expiry: buckets touched once and not since day 200 go; the others stay.
    assert store.expire(2, 200) == 2
    assert np.allclose(store.weights(idx), [0.2, 0.2, 0, 0])
    # Load replaces everything.
    store.load(dump)
    assert np.allclose(store.weights(idx), [0.2, 0.2, 0.25, 0.25])
    assert np.allclose(store.accumulators(idx), [0.75, 0.75, 0.5, 0.5])
    assert store.record("ab" * 32) is not None


def test_classifier_on_both_backends_agrees(store: Store, tmp_path: Path, corpus: Corpus) -> None:
    ham, spam = corpus
    cfg = ClassifierSettings(hash_bits=18)
    a = Classifier(store, cfg)
    b = Classifier(SqliteStore(tmp_path / "ref.sqlite"), cfg)
    for clf in (a, b):
        with clf.batch():
            for f in ham[:15] + spam[:15]:
                clf.learn(f, f in spam)
    for f in ham[20:25] + spam[20:25]:
        assert a.classify(f)[0] == pytest.approx(b.classify(f)[0], abs=1e-5)


_WRITER = """
import sys, itertools
from pathlib import Path
from typing import Any
from relayguard.config.schema import Settings
from relayguard.message.parse import parse_message
from relayguard.classifier.api import Classifier
from relayguard.classifier.settings import ClassifierSettings
from relayguard.classifier.store import SqliteStore
st = Settings()
msgs = [parse_message(p.read_bytes(), st) for p in sorted(Path(sys.argv[2]).rglob("*")) if p.is_file()]
clf = Classifier(SqliteStore(sys.argv[1]), ClassifierSettings(hash_bits=18))
print("ready", flush=True)
for n in itertools.count():
    with clf.batch():
        for f in msgs:
            clf.learn(f, n % 2 == 0)   # relabels everything each round: big batches
"""


def test_sqlite_survives_kill_mid_write(tmp_path: Path) -> None:
    db = tmp_path / "k.sqlite"
    samples = Path(__file__).resolve().parents[2] / "samples" / "corpus" / "spam"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(samples)], stdout=subprocess.PIPE,
                            env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    # Let it commit a few rounds, then kill it wherever it is.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as c:
            seq = c.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        if seq and seq[0] >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    s = SqliteStore(db)
    info = s.info()
    assert info is not None
    n = s.db.execute("SELECT count(*), sum(is_spam) FROM learned").fetchone()
    # Counts and learned records always agree: no half-applied batch.
    assert (info.n_spam + info.n_ham, info.n_spam) == (n[0], n[1])
    assert n[0] > 0
    clf = Classifier(s)
    assert clf.info().n_spam == info.n_spam


def test_open_redis_backend_from_settings(tmp_path: Path, redis_url: str, make_settings: Any,
                                          corpus: Corpus) -> None:
    st = make_settings(tmp_path, f'backend = "redis"\nredis_url = "{redis_url}"\nredis_prefix = "fleet:"')
    a = Classifier.open(st)
    b = Classifier.open(st)  # a second scanner of the fleet
    ham, spam = corpus
    with a.batch():
        for h, s in zip(ham[:10], spam[:10], strict=True):
            a.learn(h, False)
            a.learn(s, True)
    assert b.info().n_spam == 10
    assert b.classify(spam[0]) == a.classify(spam[0])
    assert not (tmp_path / "classifier.sqlite").exists()
