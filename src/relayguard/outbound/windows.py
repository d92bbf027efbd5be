"""Per-customer behaviour in sliding windows, and a learned per-customer baseline.

Exact sliding windows, not fixed buckets: each message is kept as a small event for the longest window
(a day by default, bounded by `max_events`), and each distinct value (recipient domain, envelope sender,
From domain, HELO) keeps the time it was last seen (bounded by `max_distinct`). A window's figures are
then counted on demand, which costs a scan of at most a day's events of one customer: cheap next to
parsing the message, and exact at any window length.

The baseline is an exponentially weighted mean and variance of the customer's messages per *active* hour
(hours in which it sent anything), so a normally heavy sender (a shop, a school) is measured against its
own habit; a customer with no history is measured against a configured prior.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

DISTINCT_KINDS = ("rcpt_domain", "env_sender", "from_domain", "helo")


@dataclass(frozen=True, slots=True)
class Observation:
    """What one message adds to its sender's windows (taken from the facts after the verdict)."""

    t: float
    recipients: int
    rcpt_domains: tuple[str, ...] = ()
    env_sender: str = ""
    from_domain: str = ""
    helo: str = ""
    size: int = 0
    spam_p: float | None = None


@dataclass(frozen=True, slots=True)
class WindowStats:
    window: float
    messages: int
    recipients: int
    rcpt_domains: int
    env_senders: int
    from_domains: int
    helos: int
    rejected: int
    bytes: int
    mean_spam_p: float | None  # over messages that had a verdict

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "messages": self.messages,
            "recipients": self.recipients,
            "rcpt_domains": self.rcpt_domains,
            "env_senders": self.env_senders,
            "from_domains": self.from_domains,
            "helos": self.helos,
            "rejected": self.rejected,
            "bytes": self.bytes,
            "mean_spam_p": None if self.mean_spam_p is None else round(self.mean_spam_p, 3),
        }


@dataclass
class Baseline:
    """EWMA of messages per active hour; folded when an hour ends."""

    halflife_hours: float = 168.0
    hour: int = -1  # the hour (t // 3600) being counted
    count: int = 0
    mean: float = 0.0
    var: float = 0.0
    hours: int = 0  # active hours folded so far

    def observe(self, t: float) -> None:
        h = int(t // 3600)
        if h != self.hour:
            self._fold()
            self.hour = h
            self.count = 0
        self.count += 1

    def _fold(self) -> None:
        if self.count <= 0:
            return
        x = float(self.count)
        if self.hours == 0:
            self.mean, self.var = x, 0.0
        else:
            a = 1.0 - 0.5 ** (1.0 / self.halflife_hours)
            a = max(a, 1.0 / (self.hours + 1))  # plain mean while history is short
            d = x - self.mean
            self.mean += a * d
            self.var = (1 - a) * (self.var + a * d * d)
        self.hours += 1

    def expected_per_hour(self, prior: float) -> float:
        """The customer's usual busy-hour rate (mean + 2 sd), never below the prior."""
        if self.hours < 3:
            return max(prior, self.mean)
        return max(prior, self.mean + 2.0 * math.sqrt(self.var))

    def to_dict(self) -> dict[str, Any]:
        return {"hour": self.hour, "count": self.count, "mean": self.mean, "var": self.var, "hours": self.hours}

    @classmethod
    def from_dict(cls, d: dict[str, Any], halflife_hours: float) -> Baseline:
        return cls(halflife_hours, int(d["hour"]), int(d["count"]), float(d["mean"]), float(d["var"]), int(d["hours"]))


@dataclass
class CustomerWindows:
    horizon: float = 86400.0
    max_events: int = 20_000
    max_distinct: int = 5_000
    # (t, recipients, size, spam_p or -1)
    events: deque[tuple[float, int, int, float]] = field(default_factory=deque)
    rejected: deque[tuple[float, int]] = field(default_factory=deque)
    distinct: dict[str, dict[str, float]] = field(default_factory=lambda: {k: {} for k in DISTINCT_KINDS})

    def add(self, obs: Observation) -> None:
        self.events.append((obs.t, obs.recipients, obs.size, -1.0 if obs.spam_p is None else obs.spam_p))
        while len(self.events) > self.max_events:
            self.events.popleft()
        for kind, values in (
            ("rcpt_domain", obs.rcpt_domains),
            ("env_sender", (obs.env_sender,)),
            ("from_domain", (obs.from_domain,)),
            ("helo", (obs.helo,)),
        ):
            seen = self.distinct[kind]
            for v in values:
                if not v:
                    continue
                seen.pop(v, None)  # re-insert: dict order is then oldest-seen first
                seen[v] = obs.t
                if len(seen) > self.max_distinct:
                    seen.pop(next(iter(seen)))
        self.prune(obs.t)

    def add_rejected(self, t: float, n: int = 1) -> None:
        self.rejected.append((t, n))
        while len(self.rejected) > self.max_events:
            self.rejected.popleft()

    def prune(self, now: float) -> None:
        horizon = now - self.horizon
        while self.events and self.events[0][0] < horizon:
            self.events.popleft()
        while self.rejected and self.rejected[0][0] < horizon:
            self.rejected.popleft()
        for seen in self.distinct.values():
            while seen:
                k = next(iter(seen))
                if seen[k] >= horizon:
                    break
                del seen[k]

    def stats(self, now: float, window: float) -> WindowStats:
        since = now - window
        msgs = rcpts = size = 0
        p_sum = 0.0
        p_n = 0
        for t, r, s, p in reversed(self.events):
            if t < since:
                break
            msgs += 1
            rcpts += r
            size += s
            if p >= 0:
                p_sum += p
                p_n += 1
        rej = sum(n for t, n in self.rejected if t >= since)
        counts = {k: sum(1 for ts in v.values() if ts >= since) for k, v in self.distinct.items()}
        return WindowStats(
            window,
            msgs,
            rcpts,
            counts["rcpt_domain"],
            counts["env_sender"],
            counts["from_domain"],
            counts["helo"],
            rej,
            size,
            p_sum / p_n if p_n else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": [list(e) for e in self.events],
            "rejected": [list(e) for e in self.rejected],
            "distinct": self.distinct,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], horizon: float, max_events: int, max_distinct: int) -> CustomerWindows:
        w = cls(horizon, max_events, max_distinct)
        w.events = deque((float(a), int(b), int(c), float(p)) for a, b, c, p in d.get("events", []))
        w.rejected = deque((float(a), int(b)) for a, b in d.get("rejected", []))
        for k in DISTINCT_KINDS:
            w.distinct[k] = {str(v): float(t) for v, t in d.get("distinct", {}).get(k, {}).items()}
        return w
