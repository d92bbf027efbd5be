"""Turn hits into a verdict. Pure: no I/O, no clock; everything comes from configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

from relayguard.checks.api import Hit, SymbolDef
from relayguard.config.schema import Settings
from relayguard.core.actions import THRESHOLD_ACTIONS, Action


@dataclass(frozen=True, slots=True)
class SymbolResult:
    name: str
    score: float
    options: tuple[str, ...]
    group: str
    description: str


@dataclass(frozen=True)
class Verdict:
    score: float
    required_score: float
    action: Action
    symbols: dict[str, SymbolResult]
    message: str | None = None  # SMTP text when a forced action decided
    forced_by: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())  # headers front ends add

    def as_json(self) -> dict[str, object]:
        return {
            "action": str(self.action),
            "score": round(self.score, 3),
            "required_score": self.required_score,
            "symbols": {n: {"score": round(s.score, 3), "options": list(s.options)} for n, s in self.symbols.items()},
        }


@dataclass(frozen=True)
class Scorer:
    weights: dict[str, float]
    group_caps: dict[str, float]
    thresholds: tuple[tuple[Action, float], ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> Scorer:
        a = settings.actions
        values = {
            Action.REJECT: a.reject,
            Action.SOFT_REJECT: a.soft_reject,
            Action.REWRITE_SUBJECT: a.rewrite_subject,
            Action.ADD_HEADER: a.add_header,
            Action.GREYLIST: a.greylist,
        }
        thresholds = tuple((act, values[act]) for act in THRESHOLD_ACTIONS if values[act] >= 0)
        caps = {g: s.max_score for g, s in settings.groups.items() if s.max_score is not None}
        return cls(dict(settings.scores), caps, thresholds)

    @property
    def required_score(self) -> float:
        for act, t in self.thresholds:
            if act is Action.REJECT:
                return t
        return max((t for _, t in self.thresholds), default=0.0)

    def score(self, hits: list[Hit], defs: dict[str, SymbolDef]) -> Verdict:
        merged: dict[str, tuple[float, list[str], SymbolDef]] = {}
        for h in hits:
            d = defs.get(h.symbol) or SymbolDef(h.symbol, "misc", "")
            s = self.weights.get(h.symbol, 0.0) * h.factor
            if h.symbol in merged:
                # The same symbol twice keeps the strongest score and all options (as Rspamd does).
                old_s, opts, _ = merged[h.symbol]
                merged[h.symbol] = (max(old_s, s, key=abs), opts + [o for o in h.options if o not in opts], d)
            else:
                merged[h.symbol] = (s, list(h.options), d)
        # Group caps apply to the positive part of a group's total.
        by_group: dict[str, float] = {}
        for s, _, d in merged.values():
            if s > 0:
                by_group[d.group] = by_group.get(d.group, 0.0) + s
        total = 0.0
        symbols: dict[str, SymbolResult] = {}
        for name, (s, opts, d) in merged.items():
            cap = self.group_caps.get(d.group)
            if cap is not None and s > 0 and by_group[d.group] > cap:
                s = s * cap / by_group[d.group]  # each symbol keeps its share of the capped group
            total += s
            symbols[name] = SymbolResult(name, s, tuple(opts), d.group, d.description)
        action = Action.NO_ACTION
        for act, t in self.thresholds:
            if total >= t:
                action = act
                break
        forced = [h for h in hits if h.force_action is not None]
        message = None
        forced_by = None
        if forced:
            strongest = max(forced, key=lambda h: h.force_action.severity if h.force_action else 0)
            assert strongest.force_action is not None
            action = strongest.force_action
            message = strongest.message
            forced_by = strongest.symbol
        return Verdict(total, self.required_score, action, symbols, message, forced_by)
