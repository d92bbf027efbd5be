"""The check API.

A check declares every symbol it can emit (name, group, description) before it runs; the pipeline
refuses hits for undeclared symbols, so the full list of outcomes is known for documentation, weights
and dashboards. Each check also owns a `<NAME>_FAIL` symbol the pipeline emits when it times out or
raises: a failed lookup is never a silent miss. Weights and actions are configuration, not check code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

from relayguard.core.actions import Action
from relayguard.message.facts import MessageFacts

if TYPE_CHECKING:
    from relayguard.scoring.verdict import Verdict


class Stage(IntEnum):
    """Pre-filters run first and may decide early; post-filters see the normal hits."""

    PRE = 0
    NORMAL = 1
    POST = 2


@dataclass(frozen=True, slots=True)
class SymbolDef:
    name: str
    group: str
    description: str


@dataclass(frozen=True, slots=True)
class Hit:
    """One symbol that fired, with options that say why (e.g. `192.0.2.7:lastexternal`).

    `factor` scales the configured weight (dynamic scores such as a classifier's probability).
    `force_action` lets a pre-filter decide (e.g. containment: quarantine) regardless of the score.
    """

    symbol: str
    options: tuple[str, ...] = ()
    factor: float = 1.0
    force_action: Action | None = None
    message: str | None = None  # text for the SMTP reply when this hit decides the action


@dataclass
class CheckContext:
    """Per-message context handed to checks: hits so far (for post-filters) and shared services."""

    hits: list[Hit] = field(default_factory=list)
    services: dict[str, object] = field(default_factory=dict)


class Check(ABC):
    name: str = "CHECK"
    stage: Stage = Stage.NORMAL
    symbols: tuple[SymbolDef, ...] = ()
    # Overrides [pipeline] check_timeout when set (seconds).
    timeout: float | None = None

    @property
    def fail_symbol(self) -> SymbolDef:
        return SymbolDef(f"{self.name}_FAIL", "fail", f"The {self.name} check failed or timed out")

    def declared(self) -> tuple[SymbolDef, ...]:
        return (*self.symbols, self.fail_symbol)

    @abstractmethod
    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        """Return the hits for this message; raise on failure (the pipeline turns it into _FAIL)."""


class SyncCheck(Check):
    """A check that only reads facts (no I/O): implement `evaluate`."""

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        return self.evaluate(facts)

    @abstractmethod
    def evaluate(self, facts: MessageFacts) -> Sequence[Hit]: ...


class Updater(ABC):
    """After-verdict work (counters, learning, incidents). It cannot change the verdict."""

    name: str = "UPDATER"

    @abstractmethod
    async def update(self, facts: MessageFacts, verdict: Verdict) -> None: ...
