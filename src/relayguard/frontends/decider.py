"""What the policy service answers: the `PolicyDecider` interface and the deciders that exist today.

The containment work plugs in here: a decider sees every policy request (CONNECT .. END-OF-MESSAGE,
tied together by `instance`) and answers DUNNO, DEFER_IF_PERMIT, DEFER, HOLD, REJECT or PREPEND (the
reply type cannot say OK). A decider may answer synchronously (a `PolicyReply`) or return an awaitable;
the server takes the fast path when no await is needed.

Deciders must be cheap: they run on every RCPT of every message the relay handles.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from relayguard.core.clock import Clock, SystemClock
from relayguard.core.netset import NetSet
from relayguard.protocols.policy import DUNNO, PolicyAction, PolicyReply, PolicyRequest

log = logging.getLogger("relayguard.frontends.policy")

DecisionResult = PolicyReply | Awaitable[PolicyReply]


@runtime_checkable
class PolicyDecider(Protocol):
    def decide(self, request: PolicyRequest) -> DecisionResult:
        """The reply for one request; raising means "internal failure" (the server applies fail_mode)."""
        ...


class AlwaysDunno:
    """The neutral decider: let Postfix's other restrictions decide."""

    def decide(self, request: PolicyRequest) -> DecisionResult:
        return DUNNO


@dataclass(slots=True)
class _Window:
    start: float
    count: int


class RateLimitDecider:
    """A fixed-window counter per customer, as postfwd's `rate(key/limit/seconds/action)` does.

    The key is `sasl_username`, or `client_address` when the client did not authenticate. Only requests
    in `state` (RCPT by default: one per recipient) count. Requests from `exempt` networks are never
    counted. Over the limit the answer is DEFER_IF_PERMIT with `text` (`{key}` is the customer): the
    client keeps the message and retries, nothing is lost. State lives in memory; `max_keys` bounds it.
    """

    def __init__(
        self,
        limit: int = 100,
        window: float = 3600.0,
        state: str = "RCPT",
        exempt: NetSet | None = None,
        text: str = "4.7.1 hourly outbound limit exceeded for {key}, try again later",
        clock: Clock | None = None,
        max_keys: int = 1_000_000,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.state = state
        self.exempt = exempt or NetSet()
        self.text = text
        self.clock = clock or SystemClock()
        self.max_keys = max_keys
        self._windows: dict[str, _Window] = {}
        # Exemption is by network; caching per address keeps the hot path to one dict lookup.
        self._exempt_cache: dict[str, bool] = {}

    def _exempt_miss(self, addr: str) -> bool:
        """The exempt list's answer for an address not in the cache yet; cached (bounded)."""
        if len(self._exempt_cache) > 100_000:
            self._exempt_cache.clear()
        hit = self._exempt_cache[addr] = self.exempt.contains(addr)
        return hit

    def _purge(self, now: float) -> None:
        expired = [k for k, w in self._windows.items() if now - w.start >= self.window]
        for k in expired:
            del self._windows[k]
        if len(self._windows) >= self.max_keys:
            # Still full of live windows: drop the oldest half rather than grow without bound.
            keep = sorted(self._windows.items(), key=lambda kv: kv[1].start)[len(self._windows) // 2 :]
            self._windows = dict(keep)
            log.warning("rate-limit table full (%d keys); dropped the oldest half", self.max_keys)

    def decide(self, request: PolicyRequest) -> DecisionResult:
        attrs = request.attrs
        if attrs.get("protocol_state") != self.state:
            return DUNNO
        address = attrs.get("client_address", "")
        key = attrs.get("sasl_username") or address
        if not key:
            return DUNNO
        if self.exempt:
            exempt = self._exempt_cache.get(address)  # the usual answer, without a call
            if exempt is None:
                exempt = self._exempt_miss(address)
            if exempt:
                return DUNNO
        now = self.clock.monotonic()
        w = self._windows.get(key)
        if w is None or now - w.start >= self.window:
            if w is None and len(self._windows) >= self.max_keys:
                self._purge(now)
            self._windows[key] = _Window(now, 1)
            return DUNNO
        w.count += 1
        if w.count > self.limit:
            return PolicyReply(PolicyAction.DEFER_IF_PERMIT, self.text.replace("{key}", key))
        return DUNNO

    def count(self, key: str) -> int:
        w = self._windows.get(key)
        if w is None or self.clock.monotonic() - w.start >= self.window:
            return 0
        return w.count


class FirstAnswer:
    """Ask deciders in order; the first answer that is not DUNNO wins (all synchronous ones stay sync)."""

    def __init__(self, deciders: Sequence[PolicyDecider]) -> None:
        self.deciders = tuple(deciders)

    def decide(self, request: PolicyRequest) -> DecisionResult:
        i = 0
        for d in self.deciders:
            i += 1
            r = d.decide(request)
            if r is DUNNO:
                continue
            if not isinstance(r, PolicyReply):
                return self._rest(request, r, i)
            if r.action is not PolicyAction.DUNNO:
                return r
        return DUNNO

    async def _rest(self, request: PolicyRequest, pending: Awaitable[PolicyReply], start: int) -> PolicyReply:
        r = await pending
        if r.action is not PolicyAction.DUNNO:
            return r
        for d in self.deciders[start:]:
            res = d.decide(request)
            r = res if isinstance(res, PolicyReply) else await res
            if r.action is not PolicyAction.DUNNO:
                return r
        return DUNNO
