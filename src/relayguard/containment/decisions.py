"""The decision log: every outbound decision, kept for `decision_retention`, so a complaint or a release can
be traced back to the customer and the message.

Lookups: by Message-ID (what a complaint carries), by queue id (what a relay's log and a release use,
per relay because queue ids are only unique within one Postfix), and by client address near a time (what
an ARF report's Source-IP and Arrival-Date give when the headers are gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


def normalise_message_id(mid: str | None) -> str:
    """`<abc@host>`, ` abc@host `, `<abc@host> (comment)` -> `abc@host`; empty when absent.

    The local part is case-sensitive by RFC 5322, so case is kept; only framing is removed.
    """
    if not mid:
        return ""
    m = mid.strip()
    if "<" in m and ">" in m[m.find("<") :]:
        start = m.find("<")
        m = m[start + 1 : m.find(">", start)]
    return m.strip()[:998]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    t: float
    customer: str
    action: str  # what the front end answered: DUNNO, DEFER_IF_PERMIT, HOLD, REJECT (policy words)
    relay: str = ""
    queue_id: str = ""
    message_id: str = ""
    client_ip: str = ""
    sasl_username: str = ""
    verdict: str = ""  # the content verdict / reason, e.g. "spam 17.2" or "state=held"
    state: str = ""  # the customer's containment state when decided
    mail_from: str = ""
    rcpt_count: int = 0
    symbols: tuple[str, ...] = ()  # e.g. ("SHARED_STATE_FAIL",)
    released_at: float | None = None  # set when held mail was released
    id: int | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["symbols"] = list(self.symbols)
        return d


class DecisionLog(Protocol):
    def add_decision(self, rec: DecisionRecord) -> int:
        """Store one decision; returns its id."""
        ...

    def add_decisions(self, recs: Sequence[DecisionRecord]) -> None:
        """Many decisions in one transaction."""
        ...

    def by_message_id(self, message_id: str) -> list[DecisionRecord]: ...

    def by_queue_id(self, queue_id: str, relay: str | None = None) -> list[DecisionRecord]: ...

    def by_client(self, client_ip: str, t: float, slack: float = 600.0) -> list[DecisionRecord]:
        """Decisions for this client address within `slack` seconds of `t`, nearest first."""
        ...

    def decisions_for(
        self, customer: str, since: float = 0.0, action: str | None = None, relay: str | None = None, limit: int = 1000
    ) -> list[DecisionRecord]: ...

    def count_decisions(
        self, *, relay: str | None = None, customer: str | None = None, since: float = 0.0, action: str | None = None
    ) -> int:
        """How many decisions match (complaint rates per relay and per customer)."""
        ...

    def held_unreleased(self, customer: str, relay: str) -> list[DecisionRecord]:
        """HOLD decisions with a queue id on `relay` not yet released: what `postsuper -H` must release."""
        ...

    def mark_released(self, ids: Sequence[int], t: float) -> None: ...

    def purge_decisions(self, before: float) -> int:
        """Drop decisions older than `before`; returns how many."""
        ...
