"""A local cache of customers' states in front of Redis, invalidated by pub/sub.

Most customers are normal and stay so: asking Redis for every message of every customer costs a round
trip for an answer that almost never changes. `CachedSharedState` keeps the last state read per customer
for at most `ttl` seconds, and drops an entry the moment any relay changes that customer's state (the
transition script publishes the customer on `<prefix>changed` atomically with the change). So a normal,
watched, held, blocked or whitelisted customer's message needs no round trip at all; a throttled
customer's still does (its allowance is counted in Redis).

Staleness is bounded twice: by pub/sub delivery (milliseconds) while the subscription is healthy, and by
`ttl` whatever happens. When the subscription fails, the cache is emptied and bypassed until it has been
healthy again for `retry` seconds: answers then come from Redis (or, if Redis is down, from the
resilient layer's local mirror, marked SHARED_STATE_FAIL).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from relayguard.containment.commands import Command
from relayguard.containment.shared_state import (
    Admission,
    RedisSharedState,
    ResilientSharedState,
    StateRecord,
)
from relayguard.containment.states import ContainmentState
from relayguard.core.clock import Clock, SystemClock

log = logging.getLogger("relayguard.containment")


class CachedSharedState:
    def __init__(
        self,
        inner: ResilientSharedState,
        ttl: float = 10.0,
        max_entries: int = 200_000,
        retry: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self.inner = inner
        self.ttl = ttl
        self.max_entries = max_entries
        self.retry = retry
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[StateRecord, float]] = OrderedDict()
        self._generation = 0  # bumped by every invalidation: a read racing one is not cached
        self._usable_after: float | None = None  # None: no subscription (yet): the cache is off
        self._broken_once = False
        self.hits = 0
        self.misses = 0
        self._primary: RedisSharedState = inner.primary
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="containment-state-cache", daemon=True)
        self._thread.start()

    @property
    def degraded(self) -> bool:
        return self.inner.degraded

    # --- invalidation ---------------------------------------------------------------------------

    def _on_message(self, message: Mapping[str, Any]) -> None:
        data = message.get("data")
        customer = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        with self._lock:
            self._generation += 1
            self._cache.pop(customer, None)

    def _run(self) -> None:
        """Keep one subscription to the invalidation channel; while there is none, the cache is off."""
        pubsub: Any = None
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self._primary.r.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                    pubsub.subscribe(**{self._primary.channel: self._on_message})
                    with self._lock:
                        self._usable_after = self.clock.monotonic() + (self.retry if self._broken_once else 0.0)
                    if self._broken_once:
                        log.warning("containment: state cache invalidations back; cache on in %.1fs", self.retry)
                pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            except Exception as e:
                self._broken(e)
                with contextlib.suppress(Exception):
                    pubsub.close()
                pubsub = None
                self._stop.wait(0.5)  # Redis down: do not spin
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    def _broken(self, exc: BaseException) -> None:
        with self._lock:
            first = self._usable_after is not None or not self._broken_once
            self._generation += 1
            self._cache.clear()
            self._usable_after = None
            self._broken_once = True
        if first:
            log.warning("containment: state cache invalidations lost (%s); cache off until they are back", exc)

    def _usable(self) -> bool:
        u = self._usable_after
        return u is not None and self.clock.monotonic() >= u

    def ready(self) -> bool:
        """Subscribed to invalidations: lookups may be served from the cache."""
        return self._usable()

    def invalidate(self, customer: str) -> None:
        with self._lock:
            self._generation += 1
            self._cache.pop(customer, None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    # --- the hot path ---------------------------------------------------------------------------

    def lookup(
        self, customer: str, message_id: str, t: float, window: float, limit: int
    ) -> tuple[StateRecord, Admission | None]:
        now = self.clock.monotonic()
        if self._usable():
            with self._lock:
                hit = self._cache.get(customer)
                if hit is not None and now - hit[1] < self.ttl:
                    self.hits += 1
                    return hit[0], None
                gen = self._generation
        else:
            gen = -1
        self.misses += 1
        rec, adm = self.inner.lookup(customer, message_id, t, window, limit)
        if gen >= 0 and rec.state is not ContainmentState.THROTTLED and not self.inner.degraded:
            with self._lock:
                if self._generation == gen:
                    self._cache[customer] = (rec, now)
                    self._cache.move_to_end(customer)
                    while len(self._cache) > self.max_entries:
                        self._cache.popitem(last=False)
        return rec, adm

    def get_state(self, customer: str) -> StateRecord:
        return self.inner.get_state(customer)

    def transition(
        self, customer: str, expected: ContainmentState, new: ContainmentState, t: float, reason: str
    ) -> bool:
        ok = self.inner.transition(customer, expected, new, t, reason)
        self.invalidate(customer)  # our own change: do not wait for the pub/sub echo
        return ok

    # --- everything else goes straight through -------------------------------------------------

    def admit(self, customer: str, message_id: str, t: float, window: float, limit: int) -> Admission:
        return self.inner.admit(customer, message_id, t, window, limit)

    def count(self, customer: str, message_id: str, t: float, amounts: Mapping[str, int]) -> bool:
        return self.inner.count(customer, message_id, t, amounts)

    def count_many(self, items: Sequence[tuple[str, str, float, Mapping[str, int]]]) -> list[bool]:
        return self.inner.count_many(items)

    def counters(self, customer: str) -> dict[str, int]:
        return self.inner.counters(customer)

    def put_blob(self, customer: str, name: str, data: str, t: float) -> None:
        self.inner.put_blob(customer, name, data, t)

    def get_blob(self, customer: str, name: str) -> str | None:
        return self.inner.get_blob(customer, name)

    def claim(self, token: str, t: float) -> bool:
        return self.inner.claim(token, t)

    def push_command(self, cmd: Command) -> int:
        return self.inner.push_command(cmd)

    def commands_after(self, cursor: int, limit: int = 100) -> list[Command]:
        return self.inner.commands_after(cursor, limit)

    def last_command_id(self) -> int:
        return self.inner.last_command_id()

    def get_cursor(self, relay: str) -> int | None:
        return self.inner.get_cursor(relay)

    def set_cursor(self, relay: str, cursor: int) -> None:
        self.inner.set_cursor(relay, cursor)
