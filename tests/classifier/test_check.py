from __future__ import annotations

from pathlib import Path

from relayguard.classifier.api import Classifier
from relayguard.classifier.check import ClassifierCheck
from relayguard.classifier.settings import ClassifierSettings
from relayguard.classifier.store import SqliteStore
from relayguard.message.facts import MessageFacts

Corpus = tuple[list[MessageFacts], list[MessageFacts]]


def test_untrained_then_verdicts(tmp_path: Path, corpus: Corpus) -> None:
    ham, spam = corpus
    clf = Classifier(SqliteStore(tmp_path / "c.sqlite"), ClassifierSettings(min_learned=50))
    check = ClassifierCheck(clf)
    names = {s.name for s in check.declared()}
    assert {"CLASSIFIER_SPAM", "CLASSIFIER_HAM", "CLASSIFIER_UNTRAINED", "CLASSIFIER_FAIL"} <= names
    hits = check.evaluate(spam[0])
    assert [h.symbol for h in hits] == ["CLASSIFIER_UNTRAINED"]
    assert "spam=0" in hits[0].options
    with clf.batch():
        for h, s in zip(ham[:60], spam[:60], strict=True):  # mixed, as `relayguard learn` feeds it
            clf.learn(h, False)
            clf.learn(s, True)
    verdicts = [check.evaluate(f)[0] for f in spam[60:] + ham[60:]]
    spam_hits = [h for h in verdicts[: len(spam) - 60] if h.symbol == "CLASSIFIER_SPAM"]
    ham_hits = [h for h in verdicts[len(spam) - 60 :] if h.symbol == "CLASSIFIER_HAM"]
    assert len(spam_hits) > 10 and len(ham_hits) > 10
    for h in spam_hits + ham_hits:
        assert 0 < h.factor <= 1
        assert h.options[0].startswith("p=") and h.options[1].startswith("confidence=")
    # A trained classifier never says spam about ham it learned as ham.
    assert check.evaluate(ham[0])[0].symbol == "CLASSIFIER_HAM"
