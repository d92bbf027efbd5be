"""Content verdicts: the built-in online classifier, and verdicts taken from Rspamd and SpamAssassin.

This module stays light (the config schema imports `relayguard.classifier.settings` through it):
the classifier itself loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relayguard.checks.api import Check
    from relayguard.classifier.api import Classifier, LearnResult, digest
    from relayguard.config.schema import Settings

__all__ = ["Classifier", "LearnResult", "classifier_checks", "digest"]


def __getattr__(name: str) -> Any:
    if name in ("Classifier", "LearnResult", "digest"):
        from relayguard.classifier import api

        return getattr(api, name)
    raise AttributeError(name)


def classifier_checks(settings: Settings) -> list[Check]:
    """The checks this package contributes, as configured (the pipeline builder calls this)."""
    from relayguard.classifier.api import Classifier, classifier_settings

    cfg = classifier_settings(settings)
    checks: list[Check] = []
    if cfg.enabled:
        from relayguard.classifier.check import ClassifierCheck

        checks.append(ClassifierCheck(Classifier.open(settings)))
    if cfg.rspamd_url:
        from relayguard.classifier.external import RspamdCheck

        checks.append(RspamdCheck(cfg.rspamd_url, cfg.rspamd_timeout))
    if cfg.spamd_address:
        from relayguard.classifier.external import SpamdCheck

        checks.append(SpamdCheck(cfg.spamd_address, cfg.spamd_timeout, cfg.spamd_user))
    return checks
