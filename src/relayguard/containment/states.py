"""Per-customer containment: the states, the transitions between them, and what each front end answers.

    normal -> watched -> throttled -> held -> blocked        (automatic steps only ever escalate)
    any    -> normal                                           (release: the abuse desk cleaned it)
    any    -> whitelisted                                      (never contained automatically again)
    any    -> blocked                                          (manual block)

Every transition is a `Transition` event carrying its evidence (the SPRT's numbers, counters, campaign
ids) and who made it; every one is reversible (release returns to normal, un-whitelisting too) and is
logged as one greppable line: `containment: customer=... from=... to=... by=... reason=...`.

Whitelisting answers DUNNO, never OK: an OK from a policy service placed before
`reject_unauth_destination` would make the relay an open relay; DUNNO lets Postfix's other restrictions
decide.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from relayguard.core.actions import Action

log = logging.getLogger("relayguard.containment")


class ContainmentState(StrEnum):
    NORMAL = "normal"
    WATCHED = "watched"
    THROTTLED = "throttled"
    HELD = "held"
    BLOCKED = "blocked"
    WHITELISTED = "whitelisted"

    @property
    def level(self) -> int:
        """Escalation order; automatic transitions only move up it. Whitelisted sits outside (-1)."""
        return _LEVEL[self]

    @property
    def contained(self) -> bool:
        """Does this state delay or refuse mail (and so need an incident)?"""
        return self in (ContainmentState.THROTTLED, ContainmentState.HELD, ContainmentState.BLOCKED)


_LEVEL = {
    ContainmentState.WHITELISTED: -1,
    ContainmentState.NORMAL: 0,
    ContainmentState.WATCHED: 1,
    ContainmentState.THROTTLED: 2,
    ContainmentState.HELD: 3,
    ContainmentState.BLOCKED: 4,
}


class Actor(StrEnum):
    DETECTION = "detection"  # the sequential test, campaign correlation, complaints
    OPERATOR = "operator"  # the abuse desk through the CLI or API
    EXPIRY = "expiry"  # a timed state ran out


class TransitionError(ValueError):
    """A transition the state machine does not allow (e.g. detection trying to lower a state)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change and the evidence behind it. Frozen: the log is append-only."""

    customer: str
    old: ContainmentState
    new: ContainmentState
    t: float
    actor: Actor
    reason: str
    # The numbers behind it: {"sprt": {"llr":..., "upper":..., "steps":...}, "counters": {...},
    # "campaigns": [...], "complaints": n, ...}. JSON-serialisable by contract.
    evidence: dict[str, Any] = field(default_factory=dict)
    relay: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "old": self.old.value,
            "new": self.new.value,
            "t": self.t,
            "actor": self.actor.value,
            "reason": self.reason,
            "evidence": self.evidence,
            "relay": self.relay,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transition:
        return cls(
            str(d["customer"]),
            ContainmentState(d["old"]),
            ContainmentState(d["new"]),
            float(d["t"]),
            Actor(d["actor"]),
            str(d.get("reason", "")),
            dict(d.get("evidence") or {}),
            str(d.get("relay", "")),
        )

    def log_line(self) -> str:
        # key=value with JSON-quoted free text, so `grep 'customer=alice@isp'` and machine parsing both work
        ev = json.dumps(self.evidence, separators=(",", ":"), sort_keys=True, default=str)
        return (
            f"containment: customer={json.dumps(self.customer)} from={self.old.value} to={self.new.value} "
            f"by={self.actor.value} relay={self.relay or '-'} reason={json.dumps(self.reason)} evidence={ev}"
        )


def check_transition(old: ContainmentState, new: ContainmentState, actor: Actor) -> None:
    """Raise TransitionError unless `actor` may move a customer from `old` to `new`.

    Detection may only escalate (and never touches a whitelisted customer); operators may do anything;
    expiry only lowers (a timed hold/throttle running out returns to watched or normal).
    """
    if old == new:
        raise TransitionError(f"already {old.value}")
    if actor is Actor.OPERATOR:
        return
    if actor is Actor.DETECTION:
        if old is ContainmentState.WHITELISTED:
            raise TransitionError("whitelisted customers are not contained automatically")
        if new is ContainmentState.WHITELISTED or new.level <= old.level:
            raise TransitionError(f"detection only escalates ({old.value} -> {new.value} refused)")
        return
    if new.level >= old.level or new is ContainmentState.WHITELISTED:
        raise TransitionError(f"expiry only lowers ({old.value} -> {new.value} refused)")


def make_transition(
    customer: str,
    old: ContainmentState,
    new: ContainmentState,
    t: float,
    actor: Actor,
    reason: str,
    evidence: dict[str, Any] | None = None,
    relay: str = "",
) -> Transition:
    check_transition(old, new, actor)
    tr = Transition(customer, old, new, t, actor, reason, dict(evidence or {}), relay)
    return tr


def log_transition(tr: Transition) -> None:
    level = logging.WARNING if tr.new.level > tr.old.level and tr.new.contained else logging.INFO
    log.log(level, "%s", tr.log_line())


# ---------------------------------------------------------------------------------- front-end actions


@dataclass(frozen=True, slots=True)
class FrontEndAction:
    """What a state means for one message, in every front end's words.

    policy: the Postfix policy-service action (DUNNO, DEFER_IF_PERMIT, HOLD, REJECT; never OK).
    milter: accept, tempfail (451), quarantine (SMFIR_QUARANTINE: Postfix's hold queue), reject (550).
    pipeline: the core Action a pre-filter hit forces (None: let the score decide).
    """

    policy: str
    milter: str
    pipeline: Action | None
    text: str = ""

    @property
    def delays_or_refuses(self) -> bool:
        return self.policy != "DUNNO"


PASS = FrontEndAction("DUNNO", "accept", None)


def action_for(
    state: ContainmentState,
    *,
    over_throttle: bool = False,
    defer_text: str = "4.7.1 Sending rate limited for this account, try again later",
    hold_text: str = "Held: possible account compromise",
    reject_text: str = "5.7.1 Sending from this account is blocked: possible compromise, contact support",
) -> FrontEndAction:
    """The action for one message of a customer in `state`.

    Throttled customers are deferred only above their allowance (`over_throttle`): their mail still
    flows, slowly, and the client keeps every deferred message. Held mail is accepted into Postfix's
    hold queue (nothing is lost; `postsuper -H` releases it). Blocked is the only permanent refusal.
    """
    if state is ContainmentState.THROTTLED and over_throttle:
        return FrontEndAction("DEFER_IF_PERMIT", "tempfail", Action.SOFT_REJECT, defer_text)
    if state is ContainmentState.HELD:
        return FrontEndAction("HOLD", "quarantine", Action.QUARANTINE, hold_text)
    if state is ContainmentState.BLOCKED:
        return FrontEndAction("REJECT", "reject", Action.REJECT, reject_text)
    return PASS
