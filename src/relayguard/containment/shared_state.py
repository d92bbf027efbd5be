"""Per-customer hot state: containment state, throttle allowance, idempotent counters, test-state blobs,
and the operator command queue. In memory by default (one process); in Redis for a fleet of relays.

Guarantees, for both backends:

* atomic updates: a state change is a compare-and-set (`transition`), so two relays racing to escalate
  one customer produce one transition, and the loser re-reads and sees the winner's state;
* no double counting: counters and the throttle allowance are idempotent per message id (a message
  asked about on every RCPT, or seen by two relays, counts once);
* bounded memory per customer: remembered ids are capped (`max_ids`) and forgotten after `dedupe_ttl`;
  counters, blobs and a `watched` state expire after `state_ttl` of silence. Contained and whitelisted
  states do not expire (they are few, and an operator must see them go).

In Redis every customer's keys share one hash tag (`{customer}`), so each Lua script touches one slot.

`ResilientSharedState` wraps Redis with a local mirror: when Redis is down (connection refused,
timeout), it decides from the last state it saw, logs `SHARED_STATE_FAIL` once per outage, marks its
answers degraded (the caller adds the SHARED_STATE_FAIL symbol), and tries Redis again after `retry`
seconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from relayguard.checks.api import SymbolDef
from relayguard.containment.commands import Command
from relayguard.containment.states import ContainmentState
from relayguard.core.clock import Clock, SystemClock

log = logging.getLogger("relayguard.containment")

SHARED_STATE_FAIL = SymbolDef(
    "SHARED_STATE_FAIL", "containment", "Shared state (Redis) unavailable: containment decided from local state"
)


@dataclass(frozen=True, slots=True)
class StateRecord:
    state: ContainmentState = ContainmentState.NORMAL
    since: float = 0.0
    reason: str = ""


NORMAL_RECORD = StateRecord()


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool  # within the allowance (or already admitted: the same message again)
    count: int  # messages admitted in the window, this one included when new
    new: bool  # this message id was not seen before


@dataclass(frozen=True, slots=True)
class Bounds:
    state_ttl: float = 30 * 86400.0
    dedupe_ttl: float = 86400.0
    max_ids: int = 5000
    max_customers: int = 1_000_000


class SharedState(Protocol):
    @property
    def degraded(self) -> bool:
        """The last call answered from local state because the shared store failed."""
        ...

    def get_state(self, customer: str) -> StateRecord: ...

    def transition(
        self, customer: str, expected: ContainmentState, new: ContainmentState, t: float, reason: str
    ) -> bool:
        """Set `new` only if the state is still `expected` (compare-and-set); False if someone else moved it."""
        ...

    def lookup(
        self, customer: str, message_id: str, t: float, window: float, limit: int
    ) -> tuple[StateRecord, Admission | None]:
        """The hot path in one round trip: the state, and the throttle admission when throttled."""
        ...

    def admit(self, customer: str, message_id: str, t: float, window: float, limit: int) -> Admission:
        """Throttle: admit a message if fewer than `limit` were admitted in `window` (idempotent per id)."""
        ...

    def count(self, customer: str, message_id: str, t: float, amounts: Mapping[str, int]) -> bool:
        """Add `amounts` to the customer's counters once per message id; False if already counted."""
        ...

    def count_many(self, items: Sequence[tuple[str, str, float, Mapping[str, int]]]) -> list[bool]:
        """`count` for many (customer, message_id, t, amounts) in one round trip."""
        ...

    def counters(self, customer: str) -> dict[str, int]: ...

    def put_blob(self, customer: str, name: str, data: str, t: float) -> None:
        """Opaque per-customer state (the sequential test's JSON), expiring after state_ttl."""
        ...

    def get_blob(self, customer: str, name: str) -> str | None: ...

    def claim(self, token: str, t: float) -> bool:
        """True for exactly one caller per token (one relay applies a command's state change)."""
        ...

    def push_command(self, cmd: Command) -> int: ...

    def commands_after(self, cursor: int, limit: int = 100) -> list[Command]: ...

    def last_command_id(self) -> int: ...

    def get_cursor(self, relay: str) -> int | None: ...

    def set_cursor(self, relay: str, cursor: int) -> None: ...


# ------------------------------------------------------------------------------------------ memory


@dataclass
class _Customer:
    record: StateRecord = NORMAL_RECORD
    admitted: OrderedDict[str, float] = field(default_factory=OrderedDict)  # id -> time (throttle)
    seen: OrderedDict[str, float] = field(default_factory=OrderedDict)  # id -> time (counters)
    counters: dict[str, int] = field(default_factory=dict)
    blobs: dict[str, str] = field(default_factory=dict)
    touched: float = 0.0


def _trim(ids: OrderedDict[str, float], horizon: float, cap: int) -> None:
    # ids are inserted in time order, so the oldest are at the front
    while ids and (len(ids) > cap or next(iter(ids.values())) < horizon):
        ids.popitem(last=False)


class MemorySharedState:
    """One process's shared state: an LRU of customers, bounded as Redis is."""

    def __init__(self, bounds: Bounds | None = None, clock: Clock | None = None) -> None:
        self.bounds = bounds or Bounds()
        self.clock: Clock = clock or SystemClock()
        self.degraded = False
        self._lock = threading.Lock()
        self._c: OrderedDict[str, _Customer] = OrderedDict()
        self._claims: OrderedDict[str, float] = OrderedDict()
        self._commands: list[Command] = []
        self._cursors: dict[str, int] = {}

    def _get(self, customer: str, create: bool) -> _Customer | None:
        c = self._c.get(customer)
        now = self.clock.now()
        if c is not None and now - c.touched > self.bounds.state_ttl:
            # idle too long: forget what expires (a contained or whitelisted state stays)
            keep = c.record if c.record.state not in (ContainmentState.NORMAL, ContainmentState.WATCHED) else None
            c = _Customer(keep or NORMAL_RECORD)
            self._c[customer] = c
        if c is None:
            if not create:
                return None
            c = self._c[customer] = _Customer()
            while len(self._c) > self.bounds.max_customers:
                self._evict()
        self._c.move_to_end(customer)
        c.touched = now
        return c

    def _evict(self) -> None:
        # the least recently used customer that is not contained; contained ones are few and must stay
        for k, v in self._c.items():
            if v.record.state in (ContainmentState.NORMAL, ContainmentState.WATCHED):
                del self._c[k]
                return
        self._c.popitem(last=False)

    def get_state(self, customer: str) -> StateRecord:
        with self._lock:
            c = self._get(customer, False)
            return c.record if c is not None else NORMAL_RECORD

    def transition(
        self, customer: str, expected: ContainmentState, new: ContainmentState, t: float, reason: str
    ) -> bool:
        with self._lock:
            c = self._get(customer, True)
            assert c is not None
            if c.record.state != expected:
                return False
            c.record = StateRecord(new, t, reason) if new is not ContainmentState.NORMAL else NORMAL_RECORD
            return True

    def set_state(self, customer: str, record: StateRecord) -> None:
        """Overwrite (mirror a state read from elsewhere; not for decisions)."""
        with self._lock:
            c = self._get(customer, True)
            assert c is not None
            c.record = record

    def lookup(
        self, customer: str, message_id: str, t: float, window: float, limit: int
    ) -> tuple[StateRecord, Admission | None]:
        if customer not in self._c:
            # never seen (most customers): NORMAL, as get_state answers, without the lock and the LRU touch
            return NORMAL_RECORD, None
        rec = self.get_state(customer)
        if rec.state is not ContainmentState.THROTTLED:
            return rec, None
        return rec, self.admit(customer, message_id, t, window, limit)

    def admit(self, customer: str, message_id: str, t: float, window: float, limit: int) -> Admission:
        with self._lock:
            c = self._get(customer, True)
            assert c is not None
            _trim(c.admitted, t - max(window, self.bounds.dedupe_ttl), self.bounds.max_ids)
            n = sum(1 for v in c.admitted.values() if v >= t - window)
            if message_id and message_id in c.admitted:
                return Admission(True, n, False)
            if 0 <= limit <= n:
                return Admission(False, n, True)
            c.admitted[message_id or f"anon:{t}:{n}"] = t
            _trim(c.admitted, t - max(window, self.bounds.dedupe_ttl), self.bounds.max_ids)
            return Admission(True, n + 1, True)

    def count(self, customer: str, message_id: str, t: float, amounts: Mapping[str, int]) -> bool:
        with self._lock:
            c = self._get(customer, True)
            assert c is not None
            _trim(c.seen, t - self.bounds.dedupe_ttl, self.bounds.max_ids)
            if message_id:
                if message_id in c.seen:
                    return False
                c.seen[message_id] = t
                _trim(c.seen, t - self.bounds.dedupe_ttl, self.bounds.max_ids)
            for k, v in amounts.items():
                c.counters[k] = c.counters.get(k, 0) + int(v)
            return True

    def count_many(self, items: Sequence[tuple[str, str, float, Mapping[str, int]]]) -> list[bool]:
        return [self.count(c, m, t, a) for c, m, t, a in items]

    def counters(self, customer: str) -> dict[str, int]:
        with self._lock:
            c = self._get(customer, False)
            return dict(c.counters) if c is not None else {}

    def put_blob(self, customer: str, name: str, data: str, t: float) -> None:
        with self._lock:
            c = self._get(customer, True)
            assert c is not None
            c.blobs[name] = data

    def get_blob(self, customer: str, name: str) -> str | None:
        with self._lock:
            c = self._get(customer, False)
            return c.blobs.get(name) if c is not None else None

    def customers(self) -> list[str]:
        with self._lock:
            return list(self._c)

    def records(self) -> dict[str, StateRecord]:
        """Customers not in the normal state."""
        with self._lock:
            return {k: c.record for k, c in self._c.items() if c.record.state is not ContainmentState.NORMAL}

    def claim(self, token: str, t: float) -> bool:
        with self._lock:
            if token in self._claims:
                return False
            self._claims[token] = t
            while len(self._claims) > 100_000:
                self._claims.popitem(last=False)
            return True

    def push_command(self, cmd: Command) -> int:
        with self._lock:
            cid = len(self._commands) + 1
            self._commands.append(Command(cmd.kind, cmd.customer, cmd.t, cmd.actor, cmd.reason, cmd.args, cid))
            return cid

    def commands_after(self, cursor: int, limit: int = 100) -> list[Command]:
        with self._lock:
            return self._commands[max(0, cursor) : max(0, cursor) + limit]

    def last_command_id(self) -> int:
        return len(self._commands)

    def get_cursor(self, relay: str) -> int | None:
        return self._cursors.get(relay)

    def set_cursor(self, relay: str, cursor: int) -> None:
        self._cursors[relay] = cursor


# ------------------------------------------------------------------------------------------ redis

# KEYS[1] state hash; ARGV expected, new, t, reason, ttl_ms, invalidation channel, customer
_TRANSITION = """
local cur = redis.call('HGET', KEYS[1], 'state') or 'normal'
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'since', ARGV[3], 'reason', ARGV[4])
-- normal (a release: remembered so a relay coming back cannot resurrect the old state) and watched expire
if ARGV[2] == 'watched' or ARGV[2] == 'normal' then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  redis.call('PERSIST', KEYS[1])
end
-- tell every relay's local cache (state_cache.py), atomically with the change
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""

# The admission itself, shared by both scripts: in zset z, is message ARGV[1] at ARGV[2] within the limit?
# ARGV id, t, window, limit (-1: none), horizon, max_ids, ttl_ms. Returns allowed, n, new.
_ADMIT_FN = """
local function admit(z)
  local t = tonumber(ARGV[2])
  redis.call('ZREMRANGEBYSCORE', z, '-inf', '(' .. ARGV[5])
  local n = redis.call('ZCOUNT', z, t - tonumber(ARGV[3]), '+inf')
  if ARGV[1] ~= '' and redis.call('ZSCORE', z, ARGV[1]) then return 1, n, 0 end
  local limit = tonumber(ARGV[4])
  if limit >= 0 and n >= limit then return 0, n, 1 end
  local id = ARGV[1]
  if id == '' then id = 'anon:' .. redis.call('INCR', z .. ':anon') end
  redis.call('ZADD', z, t, id)
  local size = redis.call('ZCARD', z)
  local cap = tonumber(ARGV[6])
  if size > cap then redis.call('ZREMRANGEBYRANK', z, 0, size - cap - 1) end
  redis.call('PEXPIRE', z, ARGV[7])
  return 1, n + 1, 1
end
"""

# KEYS[1] id zset. Returns {allowed, n, new}.
_ADMIT = _ADMIT_FN + """
local allowed, n, new = admit(KEYS[1])
return {allowed, n, new}
"""

# KEYS[1] state hash, KEYS[2] throttle zset; ARGV as _ADMIT. Returns {state, since, reason, allowed, n, new}.
_LOOKUP = _ADMIT_FN + """
local st = redis.call('HMGET', KEYS[1], 'state', 'since', 'reason')
if st[1] ~= 'throttled' then return {st[1] or 'normal', st[2] or '0', st[3] or '', -1, 0, 0} end
local allowed, n, new = admit(KEYS[2])
return {st[1], st[2], st[3], allowed, n, new}
"""

# KEYS[1] id zset, KEYS[2] counters hash; ARGV id, t, horizon, max_ids, ttl_ms, name1, amount1, ...
_COUNT = """
local z = KEYS[1]
if ARGV[1] ~= '' then
  redis.call('ZREMRANGEBYSCORE', z, '-inf', '(' .. ARGV[3])
  if redis.call('ZADD', z, 'NX', ARGV[2], ARGV[1]) == 0 then return 0 end
  local size = redis.call('ZCARD', z)
  local cap = tonumber(ARGV[4])
  if size > cap then redis.call('ZREMRANGEBYRANK', z, 0, size - cap - 1) end
  redis.call('PEXPIRE', z, ARGV[5])
end
for i = 6, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"""

# KEYS[1] command zset, KEYS[2] sequence; ARGV body, cap
_PUSH = """
local id = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], id, id .. ':' .. ARGV[1])
local size = redis.call('ZCARD', KEYS[1])
local cap = tonumber(ARGV[2])
if size > cap then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, size - cap - 1) end
return id
"""


def _s(v: bytes | str) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


class RedisSharedState:
    """The fleet's shared state. Raises redis.RedisError when Redis fails (wrap in ResilientSharedState)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "rg:c:",
        bounds: Bounds | None = None,
        max_commands: int = 10_000,
    ) -> None:
        self.r = client
        self.prefix = prefix
        self.bounds = bounds or Bounds()
        self.max_commands = max_commands
        self.degraded = False
        self._transition = client.register_script(_TRANSITION)
        self._admit = client.register_script(_ADMIT)
        self._lookup = client.register_script(_LOOKUP)
        self._count = client.register_script(_COUNT)
        self._push = client.register_script(_PUSH)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = "rg:c:", bounds: Bounds | None = None, timeout: float = 0.25
    ) -> RedisSharedState:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
        return cls(client, prefix, bounds)

    @property
    def channel(self) -> str:
        """Pub/sub channel announcing every state change (payload: the customer)."""
        return f"{self.prefix}changed"

    def _k(self, customer: str, suffix: str) -> str:
        return f"{self.prefix}{{{customer}}}:{suffix}"

    @property
    def _ttl_ms(self) -> int:
        return int(self.bounds.state_ttl * 1000)

    def get_state(self, customer: str) -> StateRecord:
        d = {_s(k): _s(v) for k, v in self.r.hgetall(self._k(customer, "s")).items()}
        if not d:
            return NORMAL_RECORD
        return StateRecord(ContainmentState(d["state"]), float(d.get("since", 0.0)), d.get("reason", ""))

    def known(self, customer: str) -> bool:
        """Whether Redis holds any state record (including a release) for the customer."""
        return bool(self.r.exists(self._k(customer, "s")))

    def transition(
        self, customer: str, expected: ContainmentState, new: ContainmentState, t: float, reason: str
    ) -> bool:
        ok = self._transition(
            keys=[self._k(customer, "s")],
            args=[expected.value, new.value, repr(t), reason, self._ttl_ms, self.channel, customer],
        )
        return bool(int(ok))

    def lookup(
        self, customer: str, message_id: str, t: float, window: float, limit: int
    ) -> tuple[StateRecord, Admission | None]:
        horizon = t - max(window, self.bounds.dedupe_ttl)
        res = self._lookup(
            keys=[self._k(customer, "s"), self._k(customer, "t")],
            args=[message_id, repr(t), repr(window), limit, repr(horizon), self.bounds.max_ids, self._ttl_ms],
        )
        state = _s(res[0])
        rec = NORMAL_RECORD if state == "normal" else StateRecord(ContainmentState(state), float(res[1]), _s(res[2]))
        if int(res[3]) < 0:
            return rec, None
        return rec, Admission(bool(int(res[3])), int(res[4]), bool(int(res[5])))

    def admit(self, customer: str, message_id: str, t: float, window: float, limit: int) -> Admission:
        horizon = t - max(window, self.bounds.dedupe_ttl)
        res = self._admit(
            keys=[self._k(customer, "t")],
            args=[message_id, repr(t), repr(window), limit, repr(horizon), self.bounds.max_ids, self._ttl_ms],
        )
        return Admission(bool(int(res[0])), int(res[1]), bool(int(res[2])))

    def _count_args(
        self, customer: str, message_id: str, t: float, amounts: Mapping[str, int]
    ) -> tuple[list[str], list[Any]]:
        args: list[Any] = [message_id, repr(t), repr(t - self.bounds.dedupe_ttl), self.bounds.max_ids, self._ttl_ms]
        for k, v in amounts.items():
            args += [k, int(v)]
        return [self._k(customer, "m"), self._k(customer, "c")], args

    def count(self, customer: str, message_id: str, t: float, amounts: Mapping[str, int]) -> bool:
        keys, args = self._count_args(customer, message_id, t, amounts)
        return bool(int(self._count(keys=keys, args=args)))

    def count_many(self, items: Sequence[tuple[str, str, float, Mapping[str, int]]]) -> list[bool]:
        if not items:
            return []
        pipe = self.r.pipeline(transaction=False)  # each script is atomic; the batch need not be
        for customer, mid, t, amounts in items:
            keys, args = self._count_args(customer, mid, t, amounts)
            self._count(keys=keys, args=args, client=pipe)
        return [bool(int(v)) for v in pipe.execute()]

    def counters(self, customer: str) -> dict[str, int]:
        return {_s(k): int(v) for k, v in self.r.hgetall(self._k(customer, "c")).items()}

    def put_blob(self, customer: str, name: str, data: str, t: float) -> None:
        self.r.set(self._k(customer, f"b:{name}"), data, px=self._ttl_ms)

    def get_blob(self, customer: str, name: str) -> str | None:
        v = self.r.get(self._k(customer, f"b:{name}"))
        return None if v is None else str(v)

    def claim(self, token: str, t: float) -> bool:
        return bool(self.r.set(f"{self.prefix}claim:{token}", repr(t), nx=True, px=7 * 86400 * 1000))

    def push_command(self, cmd: Command) -> int:
        return int(
            self._push(keys=[f"{self.prefix}cmd", f"{self.prefix}cmd:seq"], args=[cmd.to_json(), self.max_commands])
        )

    def commands_after(self, cursor: int, limit: int = 100) -> list[Command]:
        rows = self.r.zrangebyscore(f"{self.prefix}cmd", f"({int(cursor)}", "+inf", start=0, num=limit)
        out = []
        for row in rows:
            cid, _, body = str(row).partition(":")
            out.append(Command.from_json(body, int(cid)))
        return out

    def last_command_id(self) -> int:
        v = self.r.get(f"{self.prefix}cmd:seq")
        return int(v) if v is not None else 0

    def get_cursor(self, relay: str) -> int | None:
        v = self.r.get(f"{self.prefix}cursor:{relay}")
        return int(v) if v is not None else None

    def set_cursor(self, relay: str, cursor: int) -> None:
        self.r.set(f"{self.prefix}cursor:{relay}", int(cursor))

    def ping(self) -> bool:
        return bool(self.r.ping())


class ResilientSharedState:
    """Redis first; when it fails, the local mirror decides (degraded) until Redis answers again."""

    def __init__(
        self,
        primary: RedisSharedState,
        local: MemorySharedState | None = None,
        retry: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self.primary = primary
        self.clock: Clock = clock or SystemClock()
        self.local = local or MemorySharedState(primary.bounds, self.clock)
        self.retry = retry
        self.degraded = False
        self._down_until: float | None = None
        self.failures = 0

    def _call(self, name: str, *args: Any) -> Any:
        if self._down_until is not None and (self.clock.monotonic() < self._down_until or not self._reconcile()):
            self.degraded = True
            return getattr(self.local, name)(*args)
        try:
            result = getattr(self.primary, name)(*args)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            self._down(e)
            return getattr(self.local, name)(*args)
        self.degraded = False
        return result

    def _down(self, e: Exception) -> None:
        self.failures += 1
        if self._down_until is None:
            log.warning("SHARED_STATE_FAIL: Redis unavailable (%s); deciding from local state", e)
        self._down_until = self.clock.monotonic() + self.retry
        self.degraded = True

    def _reconcile(self) -> bool:
        """Redis may be back: carry states decided locally (or mirrored) to customers Redis knows nothing
        of, before answering from Redis again. True when Redis answered.

        A Redis restarted without persistence must not silently release held or blocked customers, and
        escalations made during the outage must reach the other relays. Where Redis holds a record (a
        release made meanwhile included), it wins.
        """
        carried = 0
        try:
            self.primary.ping()
            for customer, rec in self.local.records().items():
                if not self.primary.known(customer) and self.primary.transition(
                    customer, ContainmentState.NORMAL, rec.state, rec.since, rec.reason
                ):
                    carried += 1
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._down_until = self.clock.monotonic() + self.retry
            return False
        self._down_until = None
        log.warning("containment: shared state (Redis) answers again; %d local states carried over", carried)
        return True

    def get_state(self, customer: str) -> StateRecord:
        rec: StateRecord = self._call("get_state", customer)
        if not self.degraded:
            self.local.set_state(customer, rec)  # the mirror decides if Redis goes away
        return rec

    def transition(
        self, customer: str, expected: ContainmentState, new: ContainmentState, t: float, reason: str
    ) -> bool:
        ok: bool = self._call("transition", customer, expected, new, t, reason)
        if ok and not self.degraded:
            self.local.set_state(customer, StateRecord(new, t, reason))
        return ok

    def lookup(
        self, customer: str, message_id: str, t: float, window: float, limit: int
    ) -> tuple[StateRecord, Admission | None]:
        res: tuple[StateRecord, Admission | None] = self._call("lookup", customer, message_id, t, window, limit)
        if not self.degraded:
            self.local.set_state(customer, res[0])
        return res

    def admit(self, customer: str, message_id: str, t: float, window: float, limit: int) -> Admission:
        a: Admission = self._call("admit", customer, message_id, t, window, limit)
        return a

    def count(self, customer: str, message_id: str, t: float, amounts: Mapping[str, int]) -> bool:
        return bool(self._call("count", customer, message_id, t, amounts))

    def count_many(self, items: Sequence[tuple[str, str, float, Mapping[str, int]]]) -> list[bool]:
        out: list[bool] = self._call("count_many", items)
        return out

    def counters(self, customer: str) -> dict[str, int]:
        d: dict[str, int] = self._call("counters", customer)
        return d

    def put_blob(self, customer: str, name: str, data: str, t: float) -> None:
        self._call("put_blob", customer, name, data, t)

    def get_blob(self, customer: str, name: str) -> str | None:
        v: str | None = self._call("get_blob", customer, name)
        return v

    def claim(self, token: str, t: float) -> bool:
        return bool(self._call("claim", token, t))

    def push_command(self, cmd: Command) -> int:
        # An operator command must reach every relay: never queue it only locally.
        return self.primary.push_command(cmd)

    def commands_after(self, cursor: int, limit: int = 100) -> list[Command]:
        try:
            return self.primary.commands_after(cursor, limit)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return []  # polled again later; nothing is lost

    def last_command_id(self) -> int:
        return self.primary.last_command_id()

    def get_cursor(self, relay: str) -> int | None:
        return self.primary.get_cursor(relay)

    def set_cursor(self, relay: str, cursor: int) -> None:
        # not saved while Redis is down: re-applying a command after a restart is harmless; losing one is not
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, OSError):
            self.primary.set_cursor(relay, cursor)


def blob_json(shared: SharedState, customer: str, name: str) -> dict[str, Any] | None:
    raw = shared.get_blob(customer, name)
    if raw is None:
        return None
    v = json.loads(raw)
    return v if isinstance(v, dict) else None
