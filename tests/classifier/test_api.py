from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from relayguard.classifier import Classifier, LearnResult, classifier_checks
from relayguard.classifier.metrics_util import auc
from relayguard.classifier.settings import ClassifierSettings
from relayguard.classifier.store import SqliteStore
from relayguard.message.facts import MessageFacts

Corpus = tuple[list[MessageFacts], list[MessageFacts]]


def new(tmp_path: Path, **kw: object) -> Classifier:
    return Classifier(SqliteStore(tmp_path / "c.sqlite"), ClassifierSettings(**kw))  # type: ignore[arg-type]


def test_learns_to_separate_ham_from_spam(tmp_path: Path, corpus: Corpus) -> None:
    ham, spam = corpus
    clf = new(tmp_path)
    with clf.batch():
        for h, s in zip(ham[::2], spam[::2], strict=False):
            clf.learn(h, False)
            clf.learn(s, True)
    hp = [clf.classify(f)[0] for f in ham[1::2]]
    sp = [clf.classify(f)[0] for f in spam[1::2]]
    assert auc(sp, hp) > 0.93  # 60 + 60 messages learned: far better than chance
    assert np.mean(sp) > 0.6 > 0.4 > np.mean(hp)
    p, conf = clf.classify(spam[1])
    assert 0 <= p <= 1 and conf == pytest.approx(abs(2 * p - 1))


def test_learning_twice_changes_nothing_and_relabel_moves(tmp_path: Path, corpus: Corpus) -> None:
    ham, spam = corpus
    clf = new(tmp_path)
    for f in ham[:5] + spam[:5]:
        clf.learn(f, f in spam)
    before = clf.classify(ham[0])
    info = clf.info()
    assert clf.learn(ham[0], False) is LearnResult.UNCHANGED
    assert clf.classify(ham[0]) == before and clf.info() == info
    assert clf.learn(ham[0], True) is LearnResult.RELABELLED
    moved = clf.info()
    assert (moved.n_spam, moved.n_ham) == (info.n_spam + 1, info.n_ham - 1)
    assert clf.classify(ham[0])[0] > before[0]
    assert clf.forget(ham[0]) is LearnResult.FORGOTTEN
    assert clf.forget(ham[0]) is LearnResult.UNKNOWN
    assert clf.info().n_spam == info.n_spam


def test_forget_undoes_the_last_learn_exactly(tmp_path: Path, corpus: Corpus) -> None:
    ham, spam = corpus
    clf = new(tmp_path)
    for f in ham[:10] + spam[:10]:
        clf.learn(f, f in spam)
    idx = clf.extractor.indices(spam[20])
    w0 = clf.store.weights(idx).copy()
    clf.learn(spam[20], True)
    assert not np.allclose(clf.store.weights(idx), w0)
    clf.forget(spam[20])
    assert np.allclose(clf.store.weights(idx), w0, atol=1e-6)


def test_batch_is_discarded_on_error(tmp_path: Path, corpus: Corpus) -> None:
    ham, _ = corpus
    clf = new(tmp_path)
    with pytest.raises(RuntimeError), clf.batch():
        clf.learn(ham[0], False)
        raise RuntimeError("boom")
    assert clf.info().n_ham == 0
    assert clf.classify(ham[0])[0] == 0.5
    assert clf.learn(ham[0], False) is LearnResult.LEARNED


def test_two_processes_share_one_file(tmp_path: Path, corpus: Corpus) -> None:
    _ham, spam = corpus
    writer = new(tmp_path)
    reader = new(tmp_path)
    p0 = reader.classify(spam[0])[0]
    with writer.batch():
        for f in spam[1:30]:
            writer.learn(f, True)
    assert reader.classify(spam[0])[0] > p0  # the reader's mirror follows the file
    assert reader.info().n_spam == 29


def test_expire_drops_rare_old_features(tmp_path: Path, corpus: Corpus) -> None:
    ham, spam = corpus
    clf = new(tmp_path, expire_min_count=2, expire_days=10)
    for f in ham[:3] + spam[:3]:
        clf.learn(f, f in spam)
    dump_before = clf.store.dump()
    assert clf.expire() == 0  # nothing is old yet
    dropped = clf.expire(now=10**10)  # far future: everything is old
    assert 0 < dropped < len(dump_before.buckets)
    after = clf.store.dump()
    assert np.all(after.counts >= 2)


def test_open_from_settings_and_checks_factory(tmp_path: Path, make_settings: Any) -> None:
    settings_for = make_settings
    st = settings_for(tmp_path)
    clf = Classifier.open(st)
    assert clf.info().n_spam == 0
    clf.close()
    assert (tmp_path / "classifier.sqlite").exists()
    checks = classifier_checks(st)
    assert [c.name for c in checks] == ["CLASSIFIER"]
    off = settings_for(tmp_path, "enabled = false")
    assert classifier_checks(off) == []
