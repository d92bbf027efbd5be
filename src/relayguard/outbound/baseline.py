"""The fixed-rate limit everyone deploys today, as the simulator's yardstick.

policyd-rate-limit's defaults: 10 messages a minute and 150 a day per login (Rspamd's `ratelimit` user
bucket and postfwd's `rate()` are the same idea). A message over either limit is deferred; only accepted
messages are charged, as those tools do, so a deferred sender gets through again once its window slides.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    seconds: float


DEFAULT_LIMITS = (Limit(10, 60.0), Limit(150, 86400.0))


class FixedRateLimit:
    def __init__(self, limits: tuple[Limit, ...] = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._horizon = max(lim.seconds for lim in limits)
        self._sent: dict[str, deque[float]] = {}

    def allow(self, key: str, t: float) -> bool:
        """True (and charged) if `key` may send at `t`; False means deferred."""
        q = self._sent.setdefault(key, deque())
        while q and q[0] <= t - self._horizon:
            q.popleft()
        for lim in self.limits:
            # Count from the newest end: the short windows stay cheap however long the deque is.
            for n, ts in enumerate(reversed(q), 1):
                if ts <= t - lim.seconds:
                    break
                if n >= lim.count:
                    return False
        q.append(t)
        return True
