"""SPOT's sequential probability ratio test (Duan et al., "Detecting Spam Zombies by Monitoring Outgoing
Messages", INFOCOM 2009), per customer.

H1: the customer is compromised, each of its messages is spam with probability theta1.
H0: the customer is normal, each of its messages is spam with probability theta0.
After each message the log-likelihood ratio moves by ln(P(x|H1)/P(x|H0)); Wald's bounds

    upper = ln((1 - beta) / alpha)      lower = ln(beta / (1 - alpha))

give a test whose false-positive rate is at most about alpha and false-negative rate at most about beta.
Crossing `upper` decides "compromised"; crossing `lower` decides "normal" and, as in SPOT, the test starts
again from zero (a customer can be compromised later). Defaults are SPOT's: alpha = beta = 0.01,
theta0 = 0.2, theta1 = 0.9: four confident spam verdicts in a row cross the upper bound.

Content verdicts are probabilities, not bits: the observation's likelihood is the mixture
P(x|H) = p*theta + (1-p)*(1-theta), so an unsure verdict (p near 0.5) moves the test little.
Behavioural evidence (bursts, recipient-domain spread, sender churn, ...) enters as further log-likelihood
ratios added to the same message's step, capped so behaviour alone never outweighs a clear ham verdict:
no fixed limit ever decides by itself.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

HISTORY = 8  # steps kept to explain a decision


@dataclass(frozen=True, slots=True)
class Evidence:
    name: str  # "content", "burst", "domain_spread", "sender_churn", "campaign", ...
    llr: float
    detail: str  # the numbers behind it, e.g. "p=0.97" or "42 msgs/h vs usual 3.0/h"

    def __str__(self) -> str:
        return f"{self.name} {self.llr:+.2f} ({self.detail})"


@dataclass(frozen=True, slots=True)
class SprtParams:
    alpha: float = 0.01
    beta: float = 0.01
    theta0: float = 0.2
    theta1: float = 0.9

    def __post_init__(self) -> None:
        if not (0 < self.alpha < 0.5 and 0 < self.beta < 0.5):
            raise ValueError("alpha and beta must be in (0, 0.5)")
        if not (0 < self.theta0 < self.theta1 < 1):
            raise ValueError("need 0 < theta0 < theta1 < 1")

    @property
    def upper(self) -> float:
        return math.log((1 - self.beta) / self.alpha)

    @property
    def lower(self) -> float:
        return math.log(self.beta / (1 - self.alpha))

    def content_llr(self, p: float) -> float:
        """The step for one message whose spam probability is `p`."""
        p = min(1.0, max(0.0, p))
        h1 = p * self.theta1 + (1 - p) * (1 - self.theta1)
        h0 = p * self.theta0 + (1 - p) * (1 - self.theta0)
        return math.log(h1 / h0)


@dataclass
class SprtState:
    llr: float = 0.0
    steps: int = 0  # steps since the last restart
    restarts: int = 0  # times the test decided "normal" and began again
    compromised_at: float | None = None
    reason: str | None = None
    recent: deque[tuple[float, float, tuple[Evidence, ...]]] = field(default_factory=lambda: deque(maxlen=HISTORY))

    def to_dict(self) -> dict[str, Any]:
        return {
            "llr": self.llr,
            "steps": self.steps,
            "restarts": self.restarts,
            "compromised_at": self.compromised_at,
            "reason": self.reason,
            "recent": [[t, llr, [[e.name, e.llr, e.detail] for e in ev]] for t, llr, ev in self.recent],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SprtState:
        s = cls(float(d["llr"]), int(d["steps"]), int(d["restarts"]), d.get("compromised_at"), d.get("reason"))
        for t, llr, ev in d.get("recent", []):
            s.recent.append((float(t), float(llr), tuple(Evidence(str(n), float(v), str(x)) for n, v, x in ev)))
        return s


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # "compromised", "normal", "continue", "already"
    llr: float  # the statistic after this step (before any restart)
    step: float
    upper: float
    lower: float
    evidence: tuple[Evidence, ...]
    explanation: str


class Sprt:
    def __init__(self, params: SprtParams) -> None:
        self.params = params

    def step(self, state: SprtState, t: float, evidence: list[Evidence]) -> Decision:
        p = self.params
        step = sum(e.llr for e in evidence)
        ev = tuple(evidence)
        if state.compromised_at is not None:
            return Decision("already", state.llr, 0.0, p.upper, p.lower, ev, state.reason or "compromised")
        state.llr += step
        state.steps += 1
        state.recent.append((t, step, ev))
        llr = state.llr
        if llr >= p.upper:
            state.compromised_at = t
            state.reason = self.explain(state, "compromised")
            return Decision("compromised", llr, step, p.upper, p.lower, ev, state.reason)
        if llr <= p.lower:
            text = self.explain(state, "normal")
            state.llr = 0.0
            state.steps = 0
            state.restarts += 1
            state.recent.clear()
            return Decision("normal", llr, step, p.upper, p.lower, ev, text)
        return Decision("continue", llr, step, p.upper, p.lower, ev, self.explain(state, "continue"))

    def explain(self, state: SprtState, outcome: str) -> str:
        p = self.params
        head = {
            "compromised": f"SPRT log-LR {state.llr:.2f} >= upper {p.upper:.2f}",
            "normal": f"SPRT log-LR {state.llr:.2f} <= lower {p.lower:.2f}",
            "continue": f"SPRT log-LR {state.llr:.2f} in ({p.lower:.2f}, {p.upper:.2f})",
        }[outcome]
        steps = "; ".join(f"{step:+.2f} [" + ", ".join(str(e) for e in ev) + "]" for _, step, ev in state.recent)
        return (
            f"{head} after {state.steps} messages (alpha={p.alpha}, beta={p.beta}, theta0={p.theta0}, "
            f"theta1={p.theta1}); last steps: {steps}"
        )

    @staticmethod
    def clear(state: SprtState) -> None:
        """Release a customer (the abuse desk cleaned it): the test starts again from zero."""
        state.llr = 0.0
        state.steps = 0
        state.compromised_at = None
        state.reason = None
        state.recent.clear()
