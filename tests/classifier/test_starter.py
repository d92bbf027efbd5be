from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relayguard.classifier import Classifier
from relayguard.classifier.starter import load_starter
from relayguard.message.facts import MessageFacts

Corpus = tuple[list[MessageFacts], list[MessageFacts]]


def test_fresh_install_is_seeded_from_the_starter(tmp_path: Path, make_settings: Any, corpus: Corpus) -> None:
    dump = load_starter()
    if dump is None:
        pytest.fail("no starter model in this checkout (src/relayguard/classifier/data/starter.model)")
    assert len(dump.buckets) > 1000
    st = make_settings(tmp_path, "starter = true")
    clf = Classifier.open(st)
    info = clf.info()
    assert (info.n_spam, info.n_ham) == (dump.info.n_spam, dump.info.n_ham)
    ham, spam = corpus
    # The starter was learned from the corpus the samples come from: it must know them.
    assert sum(clf.classify(f)[0] > 0.5 for f in spam) > 0.8 * len(spam)
    assert sum(clf.classify(f)[0] < 0.5 for f in ham) > 0.8 * len(ham)
    clf.close()
    # Seeding happens once: learned messages stay.
    clf = Classifier.open(st)
    clf.learn(ham[0], True)
    clf.close()
    assert Classifier.open(st).info().n_spam == dump.info.n_spam + 1


def test_starter_is_small() -> None:
    p = Path(__file__).resolve().parents[2] / "src" / "relayguard" / "classifier" / "data" / "starter.model"
    if p.exists():
        assert p.stat().st_size < 2 * 1024 * 1024
