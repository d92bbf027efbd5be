"""The detector's per-customer state (windows, baseline, sequential test) in the shared state, so every
relay of a fleet steps one customer's test with all of its messages.

`SharedOutboundStore` implements `relayguard.outbound.state.StateStore` over `SharedState` blobs (JSON,
expiring after `state_ttl` of silence). Updates are last-writer-wins per customer: two relays updating
the same customer within one round trip may lose one message's step, which delays a decision by one
message but never double counts (counters and the throttle allowance are idempotent per message id).
"""

from __future__ import annotations

import json
import logging

from relayguard.containment.shared_state import SharedState
from relayguard.core.clock import Clock, SystemClock
from relayguard.outbound.state import CustomerState, StateFactory

log = logging.getLogger("relayguard.containment")

BLOB = "outbound"


class SharedOutboundStore:
    def __init__(self, shared: SharedState, factory: StateFactory, clock: Clock | None = None) -> None:
        self.shared = shared
        self.factory = factory
        self.clock: Clock = clock or SystemClock()
        self._known: dict[str, None] = {}  # customers this process wrote (customers() is advisory)

    def get(self, customer: str) -> CustomerState | None:
        raw = self.shared.get_blob(customer, BLOB)
        if raw is None:
            return None
        try:
            return self.factory.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError) as e:
            # a corrupt or old-format blob must not stop mail: start the customer afresh, say so
            log.warning("containment: customer=%s unreadable detector state (%s); starting afresh", customer, e)
            return None

    def put(self, customer: str, state: CustomerState) -> None:
        self.shared.put_blob(customer, BLOB, json.dumps(state.to_dict(), separators=(",", ":")), self.clock.now())
        self._known[customer] = None
        if len(self._known) > 100_000:
            self._known.pop(next(iter(self._known)))

    def customers(self) -> list[str]:
        return list(self._known)
