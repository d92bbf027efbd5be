"""The built-in classifier as a check."""

from __future__ import annotations

from collections.abc import Sequence

from relayguard.checks.api import Hit, Stage, SymbolDef, SyncCheck
from relayguard.classifier.api import Classifier
from relayguard.message.facts import MessageFacts

GROUP = "classifier"


class ClassifierCheck(SyncCheck):
    name = "CLASSIFIER"
    stage = Stage.NORMAL
    symbols = (
        SymbolDef("CLASSIFIER_SPAM", GROUP, "The content classifier says spam (factor: confidence)"),
        SymbolDef("CLASSIFIER_HAM", GROUP, "The content classifier says ham (factor: confidence)"),
        SymbolDef("CLASSIFIER_UNCERTAIN", GROUP, "The content classifier cannot tell (reported, not scored)"),
        SymbolDef("CLASSIFIER_UNTRAINED", GROUP, "Too few messages learned for the classifier to judge"),
    )

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self.cfg = classifier.cfg

    def evaluate(self, facts: MessageFacts) -> Sequence[Hit]:
        info = self.classifier.info()
        if min(info.n_spam, info.n_ham) < self.cfg.min_learned:
            return [
                Hit("CLASSIFIER_UNTRAINED", (f"spam={info.n_spam}", f"ham={info.n_ham}", f"min={self.cfg.min_learned}"))
            ]
        p, conf = self.classifier.classify(facts)
        opts = (f"p={p:.4f}", f"confidence={conf:.3f}")
        if p >= self.cfg.spam_threshold:
            # Factor rises from 0 at the threshold to 1 at certainty, so a borderline verdict weighs little.
            f = (p - self.cfg.spam_threshold) / (1.0 - self.cfg.spam_threshold) if self.cfg.spam_threshold < 1 else 1.0
            return [Hit("CLASSIFIER_SPAM", opts, factor=round(max(0.05, f), 4))]
        if p <= self.cfg.ham_threshold:
            f = (self.cfg.ham_threshold - p) / self.cfg.ham_threshold if self.cfg.ham_threshold > 0 else 1.0
            return [Hit("CLASSIFIER_HAM", opts, factor=round(max(0.05, f), 4))]
        return [Hit("CLASSIFIER_UNCERTAIN", opts, factor=0.0)]
