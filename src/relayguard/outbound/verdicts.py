"""Verdict sources for the outbound detector: message facts -> spam probability.

* `ClassifierVerdicts`: the built-in classifier (`relayguard.classifier`), with a cache keyed by the raw
  message so a newsletter sent to 500 recipients is classified once. It also quacks like the classifier
  for the pipeline's CLASSIFIER check (`info`, `cfg`, `classify`), so the simulator's pipeline shares it.
* `StandInNaiveBayes`: a deliberately small multinomial naive Bayes over words, used by the simulator
  only when the built-in classifier cannot be loaded. It is a stand-in, not a product.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from relayguard.message.facts import MessageFacts

log = logging.getLogger("relayguard.outbound")

_WORD = re.compile(r"[^\W_]{3,20}", re.UNICODE)


class ClassifierVerdicts:
    """Wraps `relayguard.classifier.api.Classifier`; caches classify() by raw message bytes."""

    name = "classifier"

    def __init__(self, classifier: Any, cache_size: int = 50_000) -> None:
        self.classifier = classifier
        self.cfg = classifier.cfg
        self._cache: dict[bytes, tuple[float, float]] = {}
        self._cache_size = cache_size

    def info(self) -> Any:
        return self.classifier.info()

    def learn(self, facts: MessageFacts, is_spam: bool) -> None:
        self.classifier.learn(facts, is_spam)

    def classify(self, facts: MessageFacts) -> tuple[float, float]:
        hit = self._cache.get(facts.raw)
        if hit is None:
            p, conf = self.classifier.classify(facts)
            hit = (float(p), float(conf))
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[facts.raw] = hit
        return hit

    def spam_probability(self, facts: MessageFacts) -> float | None:
        return self.classify(facts)[0]


class StandInNaiveBayes:
    """Multinomial naive Bayes with Laplace smoothing over subject+body words (simulator stand-in)."""

    name = "stand-in naive Bayes"

    def __init__(self, max_words: int = 1500) -> None:
        self.max_words = max_words
        self.counts: dict[bool, Counter[str]] = {True: Counter(), False: Counter()}
        self.docs = {True: 0, False: 0}
        self._cache: dict[bytes, float] = {}

    def _words(self, facts: MessageFacts) -> list[str]:
        return _WORD.findall((facts.subject + " " + facts.body_text).lower())[: self.max_words]

    def learn(self, facts: MessageFacts, is_spam: bool) -> None:
        self.counts[is_spam].update(set(self._words(facts)))
        self.docs[is_spam] += 1
        self._cache.clear()

    def learn_many(self, items: Iterable[tuple[MessageFacts, bool]]) -> None:
        for f, s in items:
            self.learn(f, s)

    def spam_probability(self, facts: MessageFacts) -> float | None:
        hit = self._cache.get(facts.raw)
        if hit is not None:
            return hit
        if not self.docs[True] or not self.docs[False]:
            return None
        logit = math.log(self.docs[True] / self.docs[False])
        n_s, n_h = self.docs[True], self.docs[False]
        for w in set(self._words(facts)):
            cs, ch = self.counts[True][w], self.counts[False][w]
            if cs + ch < 2:
                continue  # words seen once say more about the sample than about spam
            # Bernoulli-style document frequencies, smoothed.
            logit += math.log((cs + 1) / (n_s + 2)) - math.log((ch + 1) / (n_h + 2))
        p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit / 4.0))))
        self._cache[facts.raw] = p
        return p


def verdict_source_from_settings(settings: Any) -> ClassifierVerdicts | None:
    """The built-in classifier as a verdict source when it is enabled and opens; else None, and the
    updater falls back to the pipeline's score (so Rspamd / SpamAssassin style scores still count)."""
    try:
        from relayguard.classifier.api import Classifier, classifier_settings

        if not classifier_settings(settings).enabled:
            return None
        return ClassifierVerdicts(Classifier.open(settings))
    except Exception as exc:  # a relay must run without its classifier
        log.warning("classifier unavailable for outbound verdicts (%s: %s); using scores", type(exc).__name__, exc)
        return None
