"""A test plugin check: the `X-Test-Action` header forces an action (how the tests reach each one)."""

from __future__ import annotations

from collections.abc import Sequence

from relayguard.checks.api import Hit, Stage, SymbolDef, SyncCheck
from relayguard.config.schema import Settings
from relayguard.core.actions import Action
from relayguard.message.facts import MessageFacts


class ForcedAction(SyncCheck):
    name = "TEST_FORCED"
    stage = Stage.PRE
    symbols = (SymbolDef("TEST_FORCED_ACTION", "test", "X-Test-Action header forces an action"),)

    def evaluate(self, facts: MessageFacts) -> Sequence[Hit]:
        wanted = facts.header("X-Test-Action")
        if not wanted:
            return []
        action = Action(wanted.strip())
        return [Hit("TEST_FORCED_ACTION", (str(action),), force_action=action, message=f"test says {action}")]


def checks(settings: Settings) -> list[SyncCheck]:
    return [ForcedAction()]
