"""Incidents: one per contained customer, open until the abuse desk closes it.

An incident is an append-only list of events (transitions, evidence messages, actions taken,
complaints, notes) plus the latest counters and sequential-test numbers. Evidence messages are redacted
as configured before they are stored: recipients kept, reduced to their domain, hashed or dropped; bodies
kept, cut to an excerpt or dropped. Redaction happens at write time, so nothing unredacted ever reaches
the database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from relayguard.containment.decisions import normalise_message_id
from relayguard.containment.states import Transition

EventKind = Literal["transition", "evidence", "action", "complaint", "note"]
EVENT_KINDS: tuple[str, ...] = ("transition", "evidence", "action", "complaint", "note")

RecipientMode = Literal["keep", "domain", "hash", "drop"]
BodyMode = Literal["keep", "excerpt", "drop"]
_RCPT_MODES = ("keep", "domain", "hash", "drop")
_BODY_MODES = ("keep", "excerpt", "drop")


# ------------------------------------------------------------------------------------------ redaction


@dataclass(frozen=True, slots=True)
class Redaction:
    recipients: RecipientMode = "domain"
    body: BodyMode = "excerpt"
    excerpt_chars: int = 400

    def address(self, addr: str) -> str | None:
        """One recipient address as stored; None when recipients are dropped."""
        a = addr.strip().strip("<>")
        if self.recipients == "keep":
            return a
        if self.recipients == "drop":
            return None
        _, at, domain = a.rpartition("@")
        if not at:
            domain = ""
        if self.recipients == "domain":
            return f"*@{domain}" if domain else "*"
        digest = hashlib.sha256(a.lower().encode("utf-8", "replace")).hexdigest()[:16]
        return f"{digest}@{domain}" if domain else digest

    def text(self, body: str) -> str | None:
        if self.body == "drop":
            return None
        if self.body == "keep":
            return body
        return body[: self.excerpt_chars]


MAX_REDACTION_SPEC = 200


def parse_redaction(spec: str, base: Redaction | None = None) -> Redaction:
    """`recipients=hash,body=drop,excerpt=200` -> Redaction; ValueError (with the bad part) otherwise.

    Accepted from the command line and configuration, so it is strict and bounded: unknown keys, unknown
    values, repeated keys and absurd lengths are errors, never guesses.
    """
    if len(spec) > MAX_REDACTION_SPEC:
        raise ValueError(f"redaction spec longer than {MAX_REDACTION_SPEC} characters")
    r = base or Redaction()
    rcpt: str = r.recipients
    body: str = r.body
    excerpt = r.excerpt_chars
    seen: set[str] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if not eq or not value:
            raise ValueError(f"{part!r}: expected key=value")
        if key in seen:
            raise ValueError(f"{key!r} given twice")
        seen.add(key)
        if key in ("recipients", "rcpt"):
            if value not in _RCPT_MODES:
                raise ValueError(f"recipients={value!r}: expected one of {', '.join(_RCPT_MODES)}")
            rcpt = value
        elif key == "body":
            if value not in _BODY_MODES:
                raise ValueError(f"body={value!r}: expected one of {', '.join(_BODY_MODES)}")
            body = value
        elif key == "excerpt":
            if not value.isascii() or not value.isdigit() or len(value) > 6:
                raise ValueError(f"excerpt={value!r}: expected a number of characters (0-100000)")
            excerpt = int(value)
            if excerpt > 100_000:
                raise ValueError(f"excerpt={value!r}: at most 100000")
        else:
            raise ValueError(f"unknown redaction key {key!r} (recipients, body, excerpt)")
    return Redaction(rcpt, body, excerpt)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ incidents


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    t: float
    kind: str  # one of EVENT_KINDS
    data: dict[str, Any]
    relay: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "kind": self.kind, "relay": self.relay, "data": self.data}


@dataclass
class Incident:
    id: int
    customer: str
    status: str  # "open" | "closed"
    opened_at: float
    state: str  # the customer's containment state as last recorded
    reason: str = ""
    closed_at: float | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    sprt: dict[str, Any] = field(default_factory=dict)
    events: list[IncidentEvent] = field(default_factory=list)

    def _kind(self, kind: str) -> list[IncidentEvent]:
        return [e for e in self.events if e.kind == kind]

    @property
    def timeline(self) -> list[IncidentEvent]:
        return sorted(self.events, key=lambda e: e.t)

    @property
    def transitions(self) -> list[IncidentEvent]:
        return self._kind("transition")

    @property
    def evidence(self) -> list[IncidentEvent]:
        return self._kind("evidence")

    @property
    def actions(self) -> list[IncidentEvent]:
        return self._kind("action")

    @property
    def complaints(self) -> list[IncidentEvent]:
        return self._kind("complaint")

    def to_dict(self, events: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "customer": self.customer,
            "status": self.status,
            "state": self.state,
            "reason": self.reason,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "counters": self.counters,
            "sprt": self.sprt,
            "evidence_count": len(self.evidence),
            "complaint_count": len(self.complaints),
        }
        if events:
            d["timeline"] = [e.to_dict() for e in self.timeline]
        return d


class IncidentStore(Protocol):
    def open_incident(self, customer: str, t: float, state: str, reason: str) -> Incident:
        """The customer's open incident, opening one if there is none."""
        ...

    def open_incident_id(self, customer: str) -> int | None:
        """The id of the customer's open incident, without loading its events."""
        ...

    def current_incident(self, customer: str) -> Incident | None:
        """The customer's open incident (with events), if any."""
        ...

    def get_incident(self, incident_id: int) -> Incident | None: ...

    def list_incidents(
        self, status: str | None = None, customer: str | None = None, limit: int = 100
    ) -> list[Incident]:
        """Newest first, without events (cheap)."""
        ...

    def add_event(self, incident_id: int, event: IncidentEvent, dedupe_key: str | None = None) -> bool:
        """Append an event; False when `dedupe_key` was already used for this incident."""
        ...

    def count_events(self, incident_id: int, kind: str) -> int: ...

    def has_event_key(self, incident_id: int, key: str) -> bool:
        """Whether an event with this dedupe key was added (duplicate complaints count once)."""
        ...

    def update_incident(
        self,
        incident_id: int,
        *,
        state: str | None = None,
        counters: Mapping[str, Any] | None = None,
        sprt: Mapping[str, Any] | None = None,
    ) -> None: ...

    def close_incident(self, incident_id: int, t: float) -> None: ...

    # The authoritative per-customer containment state (the shared state is the hot copy).
    def record_state(self, tr: Transition) -> None: ...

    def state_of(self, customer: str) -> tuple[str, float] | None: ...

    def states(self) -> dict[str, tuple[str, float]]:
        """customer -> (state, since) for every customer not in the normal state."""
        ...

    def state_history(self, customer: str) -> list[Transition]: ...


# ------------------------------------------------------------------------------------------ helpers


def evidence_event(
    t: float,
    *,
    redaction: Redaction,
    message_id: str = "",
    queue_id: str = "",
    relay: str = "",
    mail_from: str = "",
    rcpt_to: tuple[str, ...] = (),
    subject: str = "",
    body: str = "",
    verdict: str = "",
    action: str = "",
    symbols: tuple[str, ...] = (),
) -> IncidentEvent:
    """An evidence message, redacted as configured."""
    rcpts = [a for a in (redaction.address(r) for r in rcpt_to) if a is not None]
    data: dict[str, Any] = {
        "message_id": normalise_message_id(message_id),
        "queue_id": queue_id,
        "mail_from": mail_from,
        "rcpt_count": len(rcpt_to),
        "subject": subject[:500],
        "verdict": verdict,
        "action": action,
        "symbols": list(symbols),
    }
    if redaction.recipients != "drop":
        data["rcpt_to"] = sorted(set(rcpts)) if redaction.recipients == "domain" else rcpts
    text = redaction.text(body)
    if text is not None:
        data["body"] = text
    return IncidentEvent(t, "evidence", data, relay)


def complaint_data(complaint: object) -> dict[str, Any]:
    """A complaint (issue 9's ARF object, a dataclass, or a mapping) as a JSON-safe dict."""
    raw: Any
    if hasattr(complaint, "to_dict") and callable(complaint.to_dict):
        raw = complaint.to_dict()
    elif dataclasses.is_dataclass(complaint) and not isinstance(complaint, type):
        raw = dataclasses.asdict(complaint)
    elif isinstance(complaint, Mapping):
        raw = dict(complaint)
    else:
        raw = {"text": str(complaint)}
    # default=str makes datetimes, addresses and the like storable; round trip to drop non-JSON types
    out = json.loads(json.dumps(raw, default=str))
    if not isinstance(out, dict):
        out = {"value": out}
    return out


def complaint_key(data: Mapping[str, Any]) -> str:
    """The dedupe key of a complaint: its own `key`/`id` if it has one, else a hash of its content."""
    for k in ("key", "dedupe_key", "id"):
        v = data.get(k)
        if isinstance(v, str | int) and str(v):
            return f"{k}:{v}"
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()
