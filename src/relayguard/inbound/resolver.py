"""The one asynchronous DNS resolver every inbound check shares.

Why our own loop over dnspython's stub queries instead of `dns.asyncresolver`: we need a cache that
keeps negative answers for their RFC 2308 TTL, concurrent identical questions merged into one packet,
a process-wide cap on queries in flight, a deadline handed down from the message's time budget, a
count of packets actually sent (the bench reports DNS queries per message), and per-zone upstreams
(a blocklist mirror on a local rbldnsd). The wire work stays dnspython's (`dns.asyncquery`).

Errors are answers, not exceptions: a timeout or SERVFAIL comes back as a `DnsAnswer` with `error`
set, so a check can turn it into its `_FAIL` symbol and carry on with its other lookups.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.resolver

from relayguard.config.schema import DnsSettings, parse_hostport
from relayguard.inbound import dnswire

log = logging.getLogger("relayguard.inbound")

Nameserver = tuple[str, int]

# Errors are not cached for long: a list that was down a moment ago may answer now. RFC 2308 §7
# allows up to five minutes for SERVFAIL; a few seconds is enough to spare a burst of messages.
ERROR_TTL = 5
MAX_TTL = 86_400


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """One question's outcome. `error` is None for NOERROR (with or without data) and NXDOMAIN."""

    name: str
    rdtype: int
    rcode: int
    records: tuple[Any, ...] = ()  # dnswire ARecord/TxtRecord, or dnspython rdata for other types
    ttl: int = 0
    error: str | None = None  # "timeout", "servfail", "refused", "network", "formerr", ...
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def nxdomain(self) -> bool:
        return self.rcode == dns.rcode.NXDOMAIN

    def addresses(self) -> list[str]:
        return [str(r.address) for r in self.records if r.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)]  # type: ignore[attr-defined]

    def texts(self) -> list[bytes]:
        """Each TXT record with its character-strings joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        return [b"".join(r.strings) for r in self.records if r.rdtype == dns.rdatatype.TXT]  # type: ignore[attr-defined]


@dataclass
class ResolverStats:
    sent: int = 0  # packets put on the wire (retries to another server count again)
    questions: int = 0  # questions asked by checks
    cache_hits: int = 0
    merged: int = 0  # questions that waited on an identical one already in flight
    timeouts: int = 0
    errors: int = 0

    def snapshot(self) -> dict[str, int]:
        return dict(self.__dict__)


def answer_from_message(name: str, rdtype: int, msg: dns.message.Message) -> DnsAnswer:
    """Reduce a response to what checks use: records of the asked type (any owner, so CNAME targets
    count), the rcode, and a cache TTL (the records' lowest, or RFC 2308's negative TTL)."""
    rcode = msg.rcode()
    if rcode == dns.rcode.SERVFAIL:
        return DnsAnswer(name, rdtype, rcode, error="servfail", ttl=ERROR_TTL)
    if rcode == dns.rcode.REFUSED:
        return DnsAnswer(name, rdtype, rcode, error="refused", ttl=ERROR_TTL)
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return DnsAnswer(name, rdtype, rcode, error=dns.rcode.to_text(rcode).lower(), ttl=ERROR_TTL)
    records: list[dns.rdata.Rdata] = []
    ttl = MAX_TTL
    for rrset in msg.answer:
        if rrset.rdtype == rdtype and rcode == dns.rcode.NOERROR:
            records.extend(rrset)
            ttl = min(ttl, rrset.ttl)
    if not records:
        # Negative answer: min(SOA TTL, SOA MINIMUM) from the authority section (RFC 2308 §5);
        # without an SOA the answer must not be cached.
        ttl = 0
        for rrset in msg.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                ttl = min(rrset.ttl, min(r.minimum for r in rrset))
                break
    return DnsAnswer(name, rdtype, rcode, tuple(records), max(0, min(ttl, MAX_TTL)))


def answer_from_decoded(name: str, rdtype: int, d: dnswire.Decoded) -> DnsAnswer:
    """The fast codec's result as a DnsAnswer (same rules as answer_from_message)."""
    if d.rcode == dns.rcode.SERVFAIL:
        return DnsAnswer(name, rdtype, d.rcode, error="servfail", ttl=ERROR_TTL)
    if d.rcode == dns.rcode.REFUSED:
        return DnsAnswer(name, rdtype, d.rcode, error="refused", ttl=ERROR_TTL)
    if d.rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return DnsAnswer(
            name, rdtype, d.rcode, error=dns.rcode.to_text(dns.rcode.Rcode.make(d.rcode)).lower(), ttl=ERROR_TTL
        )
    records = d.records if d.rcode == dns.rcode.NOERROR else ()
    ttl = (d.min_ttl or 0) if records else (d.soa_negative_ttl or 0)
    return DnsAnswer(name, rdtype, d.rcode, records, max(0, min(ttl, MAX_TTL)))


def system_nameservers() -> list[Nameserver]:
    try:
        r = dns.resolver.Resolver(configure=True)
    except Exception:  # no /etc/resolv.conf: nothing to ask
        return []
    return [(str(ns), 53) for ns in r.nameservers]


def parse_nameservers(entries: Sequence[str]) -> list[Nameserver]:
    return [parse_hostport(e, 53) for e in entries]


@dataclass
class _LoopState:
    sem: asyncio.Semaphore
    inflight: dict[tuple[str, int, tuple[Nameserver, ...]], asyncio.Future[DnsAnswer]] = field(default_factory=dict)
    endpoints: dict[Nameserver, _Endpoint] = field(default_factory=dict)
    endpoint_locks: dict[Nameserver, asyncio.Lock] = field(default_factory=dict)


class Resolver:
    """Shared resolver: cache (TTL and negative TTL), merged questions, in-flight cap, deadlines."""

    def __init__(
        self,
        settings: DnsSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        s = settings or DnsSettings()
        self.timeout = s.timeout
        self.max_inflight = s.max_inflight
        self.nameservers: tuple[Nameserver, ...] = tuple(
            parse_nameservers(s.nameservers) if s.nameservers else system_nameservers()
        )
        self.stats = ResolverStats()
        self._clock = clock
        self._max_entries = max_entries
        self._cache: OrderedDict[tuple[str, int, tuple[Nameserver, ...]], tuple[float, DnsAnswer]] = OrderedDict()
        # Semaphores and futures belong to one event loop; tests and tools may run several loops.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    # -- public API ---------------------------------------------------------------------------------

    def cached(self, name: str, rdtype: int | str = "A", nameservers: Sequence[Nameserver] = ()) -> DnsAnswer | None:
        """The cached answer if there is a live one (no I/O)."""
        key = self._key(name, rdtype, nameservers)
        return self._cache_get(key)

    async def query(
        self,
        name: str,
        rdtype: int | str = "A",
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        nameservers: Sequence[Nameserver] = (),
    ) -> DnsAnswer:
        """Ask once, from the cache when possible. Never raises for DNS trouble: see DnsAnswer.error.

        `timeout` bounds this question (default `[dns] timeout`); `deadline` (on this resolver's
        monotonic clock) is the caller's budget and wins when it is sooner.
        """
        key = self._key(name, rdtype, nameservers)
        qname, qtype, servers = key
        self.stats.questions += 1
        hit = self._cache_get(key)
        if hit is not None:
            self.stats.cache_hits += 1
            return hit
        limit = self.timeout if timeout is None else timeout
        if deadline is not None:
            limit = min(limit, deadline - self._clock())
        if limit <= 0:
            self.stats.timeouts += 1
            return DnsAnswer(qname, qtype, -1, error="timeout")
        state = self._state()
        pending = state.inflight.get(key)
        if pending is not None:
            self.stats.merged += 1
            try:
                return await asyncio.wait_for(asyncio.shield(pending), limit)
            except TimeoutError:
                return DnsAnswer(qname, qtype, -1, error="timeout")
        fut: asyncio.Future[DnsAnswer] = asyncio.get_running_loop().create_future()
        state.inflight[key] = fut
        try:
            ans = await self._ask(state, qname, qtype, servers, limit)
        except BaseException:  # cancelled by the pipeline: whoever waits with us gets a timeout
            fut.set_result(DnsAnswer(qname, qtype, -1, error="timeout"))
            raise
        finally:
            state.inflight.pop(key, None)
        fut.set_result(ans)
        if ans.ttl > 0:
            self._cache_put(key, ans)
        return ans

    def now(self) -> float:
        """This resolver's monotonic clock: deadlines handed to `query` are on it."""
        return self._clock()

    def clear(self) -> None:
        self._cache.clear()

    # -- internals ----------------------------------------------------------------------------------

    def _key(
        self, name: str, rdtype: int | str, nameservers: Sequence[Nameserver]
    ) -> tuple[str, int, tuple[Nameserver, ...]]:
        qtype = dns.rdatatype.from_text(rdtype) if isinstance(rdtype, str) else int(rdtype)
        qname = name.lower().rstrip(".") + "."
        return qname, qtype, tuple(nameservers) or self.nameservers

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        st = self._loops.get(loop)
        if st is None:
            st = _LoopState(asyncio.Semaphore(self.max_inflight))
            self._loops[loop] = st
        return st

    def _cache_get(self, key: tuple[str, int, tuple[Nameserver, ...]]) -> DnsAnswer | None:
        item = self._cache.get(key)
        if item is None:
            return None
        expires, ans = item
        if expires <= self._clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return DnsAnswer(ans.name, ans.rdtype, ans.rcode, ans.records, ans.ttl, ans.error, cached=True)

    def _cache_put(self, key: tuple[str, int, tuple[Nameserver, ...]], ans: DnsAnswer) -> None:
        self._cache[key] = (self._clock() + ans.ttl, ans)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    async def _ask(
        self, state: _LoopState, qname: str, qtype: int, servers: tuple[Nameserver, ...], limit: float
    ) -> DnsAnswer:
        if not servers:
            self.stats.errors += 1
            return DnsAnswer(qname, qtype, -1, error="no nameservers", ttl=ERROR_TTL)
        start = self._clock()
        end = start + limit
        last = DnsAnswer(qname, qtype, -1, error="timeout")
        if state.sem.locked():
            try:
                # Waiting for a slot is part of the question's time: the cap must not stretch a budget.
                await asyncio.wait_for(state.sem.acquire(), limit)
            except TimeoutError:
                self.stats.timeouts += 1
                return last
        else:
            await state.sem.acquire()  # free: returns at once, without wait_for's extra task
        try:
            for i, (host, port) in enumerate(servers):
                left = end - self._clock()
                if left <= 0:
                    break
                # Share what is left among the servers still to try, so one dead server cannot eat
                # the whole timeout.
                per_try = left / (len(servers) - i)
                last = await self._ask_one(qname, qtype, host, port, per_try)
                if last.error is None:
                    return last
        finally:
            state.sem.release()
        if last.error == "timeout":
            self.stats.timeouts += 1
        else:
            self.stats.errors += 1
        return last

    async def _endpoint(self, state: _LoopState, host: str, port: int) -> _Endpoint:
        key = (host, port)
        ep = state.endpoints.get(key)
        if ep is not None and not ep.closed:
            return ep
        lock = state.endpoint_locks.setdefault(key, asyncio.Lock())
        async with lock:
            ep = state.endpoints.get(key)
            if ep is None or ep.closed:
                loop = asyncio.get_running_loop()
                _t, ep = await loop.create_datagram_endpoint(_Endpoint, remote_addr=(host, port))
                state.endpoints[key] = ep
        return ep

    async def _ask_one(self, qname: str, qtype: int, host: str, port: int, timeout: float) -> DnsAnswer:
        state = self._state()
        try:
            ep = await self._endpoint(state, host, port)
        except OSError as exc:
            log.debug("dns: cannot open a socket to %s:%d: %s", host, port, exc)
            return DnsAnswer(qname, qtype, -1, error="network")
        self.stats.sent += 1
        try:
            got = await ep.ask(qname, qtype, timeout)
        except TimeoutError:
            return DnsAnswer(qname, qtype, -1, error="timeout")
        except OSError as exc:  # ICMP port unreachable and the like, reported on the socket
            log.debug("dns %s %s via %s:%d: %s", qname, qtype, host, port, exc)
            return DnsAnswer(qname, qtype, -1, error="network")
        if isinstance(got, dnswire.Decoded):
            if not got.truncated:
                return answer_from_decoded(qname, qtype, got)
        elif not got.flags & dns.flags.TC:
            return answer_from_message(qname, qtype, got)
        # Truncated: ask again over TCP (dnspython's stream code is fine for this rare case).
        q = dns.message.make_query(qname, dns.rdatatype.RdataType.make(qtype))
        try:
            resp = await dns.asyncquery.tcp(q, host, timeout=timeout, port=port)
        except dns.exception.Timeout:
            return DnsAnswer(qname, qtype, -1, error="timeout")
        except (OSError, dns.exception.DNSException) as exc:
            log.debug("dns %s %s via tcp %s:%d: %s", qname, qtype, host, port, exc)
            return DnsAnswer(qname, qtype, -1, error="network")
        return answer_from_message(qname, qtype, resp)

    async def aclose(self) -> None:
        """Close this event loop's sockets (they are otherwise kept for the loop's lifetime)."""
        st = self._loops.get(asyncio.get_running_loop())
        if st is not None:
            for ep in st.endpoints.values():
                ep.close()
            st.endpoints.clear()


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class _Endpoint(asyncio.DatagramProtocol):
    """One connected UDP socket per upstream, shared by all questions; replies are matched by id and
    by the echoed question, so a late or stray datagram is dropped rather than taken for an answer."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[asyncio.Future[dnswire.Decoded | dns.message.Message], str, int]] = {}
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for fut, _n, _t in self.pending.values():
            if not fut.done():
                fut.set_exception(exc or OSError("socket closed"))

    def error_received(self, exc: Exception) -> None:
        # A connected UDP socket learns of ICMP errors here, without saying which query caused it.
        for fut, _n, _t in self.pending.values():
            if not fut.done():
                fut.set_exception(exc)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) < 2:
            return
        entry = self.pending.get(int.from_bytes(data[:2], "big"))
        if entry is None or entry[0].done():
            return
        fut, qname, qtype = entry
        qid = int.from_bytes(data[:2], "big")
        try:
            if qtype in dnswire.FAST_TYPES:
                fut.set_result(dnswire.decode_response(data, qid, qname, qtype))
                return
            msg = dns.message.from_wire(data, ignore_trailing=True)
        except (dnswire.WireError, dns.exception.DNSException, ValueError) as exc:
            log.debug("dns: dropped a malformed or foreign reply for %s: %s", qname, exc)
            return
        q = msg.question[0] if len(msg.question) == 1 else None
        if q is None or q.rdtype != qtype or q.name.to_text().lower() != qname.lower():
            return
        fut.set_result(msg)

    async def ask(self, qname: str, qtype: int, timeout: float) -> dnswire.Decoded | dns.message.Message:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        qid = secrets.randbits(16)
        while qid in self.pending:
            qid = secrets.randbits(16)
        fut: asyncio.Future[dnswire.Decoded | dns.message.Message] = loop.create_future()
        self.pending[qid] = (fut, qname, qtype)
        try:
            if qtype in dnswire.FAST_TYPES:
                wire = dnswire.encode_query(qid, qname, qtype)
            else:
                m = dns.message.make_query(qname, dns.rdatatype.RdataType.make(qtype))
                m.id = qid
                wire = m.to_wire()
            self.transport.sendto(wire)
            # A timer on the future rather than wait_for: no extra task per packet.
            timer = loop.call_later(timeout, _expire, fut)
            try:
                return await fut
            finally:
                timer.cancel()
        finally:
            self.pending.pop(qid, None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True
