"""Assemble the default pipeline from configuration."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence

from relayguard.checks.api import Check, CheckContext, Hit, Updater
from relayguard.checks.registry import builtin_checks
from relayguard.config.schema import Settings
from relayguard.message.facts import MessageFacts
from relayguard.pipeline import Pipeline

log = logging.getLogger("relayguard.app")

# Feature packages that contribute checks: "module:factory", each factory(settings) -> list[Check].
CHECK_FACTORIES: tuple[str, ...] = (
    "relayguard.classifier:classifier_checks",
    "relayguard.inbound:inbound_checks",
)


def _factory(spec: str) -> Callable[[Settings], list[Check]] | None:
    module, attr = spec.split(":", 1)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        return None
    fn = getattr(mod, attr, None)
    return fn if callable(fn) else None


class UnavailableCheck(Check):
    """Stands in for a feature that could not start (e.g. a model from another version): every message
    gets the feature's `_FAIL` symbol with the reason, instead of the whole pipeline refusing to run."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason[:200]

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        return [Hit(self.fail_symbol.name, (self.reason,))]


def default_checks(settings: Settings) -> list[Check]:
    checks = builtin_checks()
    for spec in CHECK_FACTORIES:
        fn = _factory(spec)
        if fn is None:
            continue
        try:
            checks.extend(fn(settings))
        except Exception as exc:  # a feature that cannot start must not stop the others
            feature = spec.split(":", 1)[0].rsplit(".", 1)[-1].upper()
            log.error("%s is unavailable: %s", feature.lower(), exc)
            checks.append(UnavailableCheck(feature, str(exc)))
    return checks


def build_pipeline(
    settings: Settings, extra_checks: Sequence[Check] = (), updaters: Sequence[Updater] = ()
) -> Pipeline:
    return Pipeline(settings, [*default_checks(settings), *extra_checks], updaters)
