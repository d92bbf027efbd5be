"""The pipeline: pre-filters (may decide early), normal checks, post-filters, scoring, updates.

Checks of one stage run concurrently; each under min(its timeout, what is left of the message's budget).
A check that raises or overruns yields its `_FAIL` symbol with the reason as option, never an exception
to the caller: one broken check must not cost a verdict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from relayguard.checks.api import Check, CheckContext, Hit, Stage, SymbolDef, Updater
from relayguard.config.schema import Settings
from relayguard.message.defects import PARSER_SYMBOLS
from relayguard.message.facts import MessageFacts
from relayguard.scoring.verdict import Scorer, Verdict

log = logging.getLogger("relayguard.pipeline")


class Pipeline:
    def __init__(self, settings: Settings, checks: Sequence[Check], updaters: Sequence[Updater] = ()) -> None:
        self.settings = settings
        self.checks = tuple(checks)
        self.updaters = tuple(updaters)
        self.scorer = Scorer.from_settings(settings)
        self.defs: dict[str, SymbolDef] = {d.name: d for d in PARSER_SYMBOLS}
        for c in self.checks:
            for d in c.declared():
                if d.name in self.defs and self.defs[d.name] != d:
                    raise ValueError(f"symbol {d.name} declared twice with different definitions")
                self.defs[d.name] = d
        self._by_stage = {s: tuple(c for c in self.checks if c.stage == s) for s in Stage}
        self._allowed = {c.name: {d.name for d in c.declared()} for c in self.checks}

    def symbol_defs(self) -> list[SymbolDef]:
        return sorted(self.defs.values(), key=lambda d: (d.group, d.name))

    async def _run_one(
        self, check: Check, facts: MessageFacts, ctx: CheckContext, deadline: float
    ) -> list[Hit]:
        limit = check.timeout or self.settings.pipeline.check_timeout
        remaining = deadline - time.monotonic()
        timeout = max(0.0, min(limit, remaining))
        try:
            hits = await asyncio.wait_for(check.run(facts, ctx), timeout=timeout)
        except TimeoutError:
            log.warning("check %s timed out after %.3fs", check.name, timeout)
            return [Hit(check.fail_symbol.name, ("timeout",))]
        except Exception as exc:  # a broken check must not cost the verdict
            log.exception("check %s failed", check.name)
            return [Hit(check.fail_symbol.name, (type(exc).__name__,))]
        allowed = self._allowed[check.name]
        out = []
        for h in hits:
            if h.symbol not in allowed:
                log.error("check %s emitted undeclared symbol %s; dropped", check.name, h.symbol)
                continue
            out.append(h)
        return out

    async def check(self, facts: MessageFacts, services: dict[str, object] | None = None) -> Verdict:
        deadline = time.monotonic() + self.settings.pipeline.budget
        ctx = CheckContext(services=dict(services or {}))
        ctx.hits.extend(Hit(name, (opt,)) for name, opt in facts.defects)
        for stage in Stage:
            checks = self._by_stage[stage]
            if not checks:
                continue
            if len(checks) == 1:
                results = [await self._run_one(checks[0], facts, ctx, deadline)]
            else:
                results = await asyncio.gather(*(self._run_one(c, facts, ctx, deadline) for c in checks))
            for r in results:
                ctx.hits.extend(r)
            if stage == Stage.PRE and any(h.force_action is not None for h in ctx.hits):
                break  # a pre-filter decided: skip the expensive stages
        verdict = self.scorer.score(ctx.hits, self.defs)
        return verdict

    async def update(self, facts: MessageFacts, verdict: Verdict) -> None:
        """After-verdict updates; failures are logged, never raised, and never change the verdict."""
        for u in self.updaters:
            try:
                await u.update(facts, verdict)
            except Exception:
                log.exception("updater %s failed", u.name)

    async def process(self, facts: MessageFacts, services: dict[str, object] | None = None) -> Verdict:
        verdict = await self.check(facts, services)
        await self.update(facts, verdict)
        return verdict
