"""Actions a verdict can end in, spelled as Rspamd spells them (plus quarantine and discard)."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    NO_ACTION = "no action"
    GREYLIST = "greylist"
    ADD_HEADER = "add header"
    REWRITE_SUBJECT = "rewrite subject"
    SOFT_REJECT = "soft reject"
    REJECT = "reject"
    QUARANTINE = "quarantine"
    DISCARD = "discard"

    @property
    def severity(self) -> int:
        """Order used when several actions compete: the strongest wins."""
        return _SEVERITY[self]


_SEVERITY = {
    Action.NO_ACTION: 0,
    Action.GREYLIST: 1,
    Action.ADD_HEADER: 2,
    Action.REWRITE_SUBJECT: 3,
    Action.SOFT_REJECT: 4,
    Action.QUARANTINE: 5,
    Action.REJECT: 6,
    Action.DISCARD: 7,
}

# Score-driven actions, in the order thresholds are compared (highest threshold first).
THRESHOLD_ACTIONS = (
    Action.REJECT,
    Action.SOFT_REJECT,
    Action.REWRITE_SUBJECT,
    Action.ADD_HEADER,
    Action.GREYLIST,
)
