"""Run one message through the pipeline for a front end, and say plainly when that failed.

Every front end scans the same way: parse the bytes into facts, run the pipeline (checks, scoring,
after-verdict updates) under the configured budget. Checks that fail inside the pipeline become
`_FAIL` symbols there; anything that escapes (parser bug, pipeline or storage failure, overrun) raises
`ScanFailed` here, and the front end answers per its fail mode. The exception text stays in the log.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from relayguard.config.schema import Settings
from relayguard.message.facts import Envelope

if TYPE_CHECKING:
    from relayguard.checks.api import Check, Updater
    from relayguard.pipeline import Pipeline
    from relayguard.scoring.verdict import Verdict

log = logging.getLogger("relayguard.frontends")


def plugin_checks(settings: Settings) -> list[Check]:
    """The checks named in [frontends] plugins ("module:factory"); an import error is a config error."""
    from relayguard.checks.api import Check

    fs = settings.frontends
    out: list[Check] = []
    for spec in getattr(fs, "plugins", []):
        module, _, attr = spec.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        for c in factory(settings):
            if not isinstance(c, Check):
                raise TypeError(f"{spec} returned {type(c).__name__}, not a Check")
            out.append(c)
    return out


class ScanFailed(Exception):
    """The message could not be scanned; the reason is logged, never sent to the peer."""


class Scanner:
    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline | None = None,
        extra_checks: Sequence[Check] = (),
        updaters: Sequence[Updater] = (),
    ) -> None:
        self.settings = settings
        if pipeline is None:
            from relayguard.app.build import build_pipeline

            pipeline = build_pipeline(settings, [*plugin_checks(settings), *extra_checks], updaters)
        self.pipeline = pipeline
        self.scanned = 0
        self.failed = 0

    async def scan(self, raw: bytes, envelope: Envelope | None = None, update: bool = True) -> Verdict:
        from relayguard.message.parse import parse_message

        # The pipeline keeps its own budget; this outer bound catches what escapes it (a stuck update).
        limit = self.settings.pipeline.budget + 2.0
        try:
            facts = parse_message(raw, self.settings, envelope)
            run = self.pipeline.process(facts) if update else self.pipeline.check(facts)
            verdict = await asyncio.wait_for(run, limit)
        except Exception as exc:
            self.failed += 1
            log.exception("scan failed (queue id %s)", envelope.queue_id if envelope else None)
            raise ScanFailed(type(exc).__name__) from exc
        self.scanned += 1
        return verdict

    def learner(self) -> Any | None:
        """The pipeline's classifier (what TELL and /learnspam train), or None when none is configured."""
        for c in self.pipeline.checks:
            cl = getattr(c, "classifier", None)
            if cl is not None and hasattr(cl, "learn") and hasattr(cl, "forget"):
                return cl
        return None

    def learn(self, raw: bytes, is_spam: bool | None) -> str:
        """Train (or with None, forget) one message; returns the classifier's result word.

        Raises LearnUnavailable without a classifier and ScanFailed when learning itself failed.
        """
        from relayguard.message.parse import parse_message

        cl = self.learner()
        if cl is None:
            raise LearnUnavailable("no classifier configured")
        try:
            facts = parse_message(raw, self.settings)
            result = cl.forget(facts) if is_spam is None else cl.learn(facts, is_spam)
        except Exception as exc:
            log.exception("learning failed")
            raise ScanFailed(type(exc).__name__) from exc
        return str(getattr(result, "value", result))


class LearnUnavailable(Exception):
    """There is nothing to learn into (no classifier in the pipeline)."""
