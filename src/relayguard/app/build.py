"""Assemble the default pipeline from configuration."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence

from relayguard.checks.api import Check, Updater
from relayguard.checks.registry import builtin_checks
from relayguard.config.schema import Settings
from relayguard.pipeline import Pipeline

log = logging.getLogger("relayguard.app")

# Feature packages that contribute checks: "module:factory", each factory(settings) -> list[Check].
CHECK_FACTORIES: tuple[str, ...] = ("relayguard.classifier:classifier_checks",)


def _factory(spec: str) -> Callable[[Settings], list[Check]] | None:
    module, attr = spec.split(":", 1)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        return None
    fn = getattr(mod, attr, None)
    return fn if callable(fn) else None


def default_checks(settings: Settings) -> list[Check]:
    checks = builtin_checks()
    for spec in CHECK_FACTORIES:
        fn = _factory(spec)
        if fn is not None:
            checks.extend(fn(settings))
    return checks


def build_pipeline(
    settings: Settings, extra_checks: Sequence[Check] = (), updaters: Sequence[Updater] = ()
) -> Pipeline:
    return Pipeline(settings, [*default_checks(settings), *extra_checks], updaters)
