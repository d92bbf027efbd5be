"""One check per DNS list: pick the right addresses (or domains), ask, and read the answers by the rules.

Which hop goes to which list is the whole point (DESIGN.md): the list block's selectors say it, the
trust walk (`facts.chain`) supplies the hops. Private addresses are never asked about (they mean
nothing to a public list and leak our topology). Every answer is read by `CompiledList.interpret`, so
an error code can only ever become `<NAME>_BLOCKED`.

Monitoring (RFC 5782 §5) runs at most once per `monitor_interval` per list, concurrently with the
message's own queries: a list that answers its test entries wrongly is skipped (`<NAME>_BROKEN`, logged)
until the next probe; a list that does not answer at all is skipped for a short while
(`<NAME>_FAIL` "unreachable"), so a dead list costs one timeout, not one per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from relayguard.checks.api import Check, CheckContext, Hit, Stage, SymbolDef
from relayguard.core.netset import is_private, parse_ip
from relayguard.inbound.dnsbl_lists import (
    CompiledList,
    ListSpec,
    domain_query_name,
    ip_query_name,
)
from relayguard.inbound.resolver import DnsAnswer, Nameserver, Resolver, parse_nameservers
from relayguard.inbound.settings import InboundSettings
from relayguard.inbound.uribl import select_domains_cached, url_hostnames, url_ip_hosts
from relayguard.message.facts import MessageFacts
from relayguard.message.trust import TrustConfig

log = logging.getLogger("relayguard.inbound")

UNREACHABLE_RETRY = 30.0  # seconds a list that did not answer its probes is skipped
MAX_OPTIONS = 8  # options kept per symbol (a message can name hundreds of domains)


def is_authenticated_submission(facts: MessageFacts) -> bool:
    """Our own customer, authenticated: SASL at the front end, or the trust walk saw ESMTPA / an MSA."""
    return bool(facts.envelope.sasl_username) or facts.chain.authenticated


def _public(ip: str | None) -> str | None:
    addr = parse_ip(ip)
    if addr is None or is_private(addr) or addr.is_loopback or addr.is_unspecified or addr.is_multicast:
        return None
    return str(addr)


def session_client_is_origin(facts: MessageFacts, trust: TrustConfig | None) -> bool:
    """No Received header at all, but a front end reports the connecting client (a Postfix policy
    query, or a message checked before the MTA wrote its own header): then the client is the hop that
    hands the message to us — the last external and only untrusted hop — unless it is one of our
    trusted relays or authenticated (our own customer)."""
    env = facts.envelope
    if facts.chain.relays or not env.client_ip or env.sasl_username:
        return False
    return trust is None or not trust.trusted.contains(env.client_ip)


def select_ips(
    facts: MessageFacts,
    selectors: Sequence[str],
    max_untrusted: int,
    originating_headers: Sequence[str],
    trust: TrustConfig | None = None,
) -> dict[str, set[str]]:
    """Public address -> the selectors that chose it (insertion order: newest hop first)."""
    want = set(selectors)
    out: dict[str, set[str]] = {}

    def add(ip: str | None, sel: str) -> None:
        p = _public(ip)
        if p is not None:
            out.setdefault(p, set()).add(sel)

    chain = facts.chain
    if session_client_is_origin(facts, trust):
        for sel in ("lastexternal", "untrusted"):
            if sel in want:
                add(facts.envelope.client_ip, sel)
    if "lastexternal" in want and chain.last_external is not None:
        add(chain.last_external.ip, "lastexternal")
    untrusted = chain.untrusted[:max_untrusted]
    if "untrusted" in want:
        for r in untrusted:
            add(r.ip, "untrusted")
    if "notfirsthop" in want:
        # The oldest untrusted hop is the first hop: often a dynamic address sending legitimately
        # through its provider, which dial-up style lists would wrongly punish.
        for r in untrusted[:-1] if len(chain.untrusted) <= max_untrusted else untrusted:
            add(r.ip, "notfirsthop")
    if "firsttrusted" in want and chain.first_trusted is not None:
        add(chain.first_trusted.ip, "firsttrusted")
    env = facts.envelope
    if "client" in want:
        add(env.client_ip, "client")
    if "authenticated" in want:
        if env.sasl_username:
            add(env.client_ip, "authenticated")
        for r in chain.trusted:
            if r.auth:
                add(r.ip, "authenticated")
    if "originating" in want:
        for h in originating_headers:
            for v in facts.header_values(h):
                add(v.strip().strip("[]()"), "originating")
    if "urlhost" in want:
        for ip in url_ip_hosts(facts):
            add(ip, "urlhost")
    return out


@dataclass
class _MonitorState:
    status: str = "unknown"  # "ok", "broken", "unreachable", "unknown"
    reason: str = ""
    until: float = 0.0
    running: asyncio.Future[None] | None = None


class ListCheck(Check):
    """A DNS list as a check; `name` is the list's name, so the pipeline's `<NAME>_FAIL` is the list's."""

    stage = Stage.NORMAL

    def __init__(
        self,
        spec: ListSpec,
        settings: InboundSettings,
        resolver: Resolver,
        default_timeout: float,
        trust: TrustConfig | None = None,
    ):
        self.spec = spec
        self.trust = trust
        self.lst = CompiledList.build(spec)
        self.settings = settings
        self.resolver = resolver
        self.name = spec.name
        self.query_timeout = spec.timeout or default_timeout
        # Resolving URL hosts comes before the list queries: two rounds at most, plus slack for the
        # pipeline so that our own deadline, not its cancellation, ends a slow scan.
        rounds = 2 if "urlhost" in spec.query and settings.resolve_url_hosts else 1
        self.budget = self.query_timeout * rounds
        self.timeout = self.budget + 1.0
        self.nameservers: tuple[Nameserver, ...] = tuple(parse_nameservers(spec.nameservers))
        self._monitor = _MonitorState()
        group = "rbl" if spec.kind == "ip" else "uribl"
        seen: dict[str, SymbolDef] = {}
        for r in spec.rules:
            seen.setdefault(r.symbol, SymbolDef(r.symbol, group, r.description or f"listed in {spec.zone}"))
        seen[spec.blocked_symbol] = SymbolDef(
            spec.blocked_symbol, "fail", f"{spec.zone} refused our query (error answer, not a listing)"
        )
        seen[spec.broken_symbol] = SymbolDef(
            spec.broken_symbol, "fail", f"{spec.zone} answers its RFC 5782 test entries wrongly; skipped"
        )
        self.symbols = tuple(seen.values())

    # -- what to ask ---------------------------------------------------------------------------------

    async def _targets(self, facts: MessageFacts, deadline: float) -> dict[str, set[str]]:
        spec = self.spec
        if spec.kind == "domain":
            return select_domains_cached(facts, spec.query, self.settings.max_domains)
        targets = select_ips(facts, spec.query, spec.max_untrusted, self.settings.originating_headers, self.trust)
        if "urlhost" in spec.query and self.settings.resolve_url_hosts:
            hosts = url_hostnames(facts, self.settings.max_url_hosts)
            answers = await asyncio.gather(
                *(self.resolver.query(h, "A", deadline=deadline, timeout=self.query_timeout) for h in hosts)
            )
            for a in answers:
                for ip in a.addresses():
                    p = _public(ip)
                    if p is not None:
                        targets.setdefault(p, set()).add("urlhost")
        return targets

    def _qname(self, target: str) -> str | None:
        if self.spec.kind == "domain":
            return domain_query_name(target, self.spec.zone)
        addr = parse_ip(target)
        if addr is None or (addr.version == 6 and not self.spec.ipv6):
            return None
        return ip_query_name(target, self.spec.zone)

    async def _ask(self, qname: str, deadline: float) -> DnsAnswer:
        return await self.resolver.query(
            qname, "A", timeout=self.query_timeout, deadline=deadline, nameservers=self.nameservers
        )

    # -- monitoring ----------------------------------------------------------------------------------

    async def _probe(self, deadline: float) -> None:
        spec = self.spec
        now = self.resolver.now()
        if spec.kind == "ip":
            listed_q = ip_query_name(spec.listed_probe, spec.zone)
            unlisted_q = ip_query_name(spec.unlisted_probe, spec.zone)
        else:
            listed_q = domain_query_name(spec.listed_probe, spec.zone)
            unlisted_q = domain_query_name(spec.unlisted_probe, spec.zone)
        assert listed_q is not None and unlisted_q is not None
        listed, unlisted = await asyncio.gather(self._ask(listed_q, deadline), self._ask(unlisted_q, deadline))
        st = self._monitor
        if not listed.ok or not unlisted.ok:
            st.status, st.reason = "unreachable", f"probe {listed.error or unlisted.error}"
            st.until = now + min(UNREACHABLE_RETRY, self.settings.monitor_interval)
        else:
            codes = [self.lst.interpret(a) for a in listed.addresses()]
            if not codes or any(m.kind == "error" for m in codes):
                st.status = "broken"
                got = ",".join(listed.addresses()) or "nothing"
                st.reason = f"{spec.listed_probe} answered {got}, expected a listing"
            elif unlisted.addresses():
                st.status = "broken"
                st.reason = f"{spec.unlisted_probe} answered {','.join(unlisted.addresses())}, expected none"
            else:
                st.status, st.reason = "ok", ""
            st.until = now + self.settings.monitor_interval
        if st.status != "ok":
            log.warning("list %s (%s) skipped: %s", spec.name, spec.zone, st.reason)

    async def _monitor_status(self, deadline: float) -> _MonitorState:
        st = self._monitor
        if not self.spec.monitor:
            st.status = "ok"
            return st
        if st.until > self.resolver.now() and st.status != "unknown":
            return st
        if st.running is None or st.running.done():
            st.running = asyncio.ensure_future(self._probe(deadline))
        try:
            await asyncio.shield(st.running)
        except Exception:
            log.exception("list %s: probe failed", self.spec.name)
        return st

    # -- the check -----------------------------------------------------------------------------------

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        deadline = self.resolver.now() + self.budget
        st = self._monitor
        if st.status in ("broken", "unreachable") and st.until > self.resolver.now():
            return [self._skip_hit(st)]
        fresh = not self.spec.monitor or (st.status == "ok" and st.until > self.resolver.now())
        monitor = None if fresh else asyncio.ensure_future(self._monitor_status(deadline))
        targets = await self._targets(facts, deadline)
        asks: list[tuple[str, set[str]]] = []
        coros = []
        for target, sels in targets.items():
            q = self._qname(target)
            if q is not None:
                asks.append((target, sels))
                coros.append(self._ask(q, deadline))
        answers = await asyncio.gather(*coros) if coros else []
        if monitor is not None:
            st = await monitor
        if st.status in ("broken", "unreachable"):
            return [self._skip_hit(st)]
        return self._read(facts, asks, answers)

    def _skip_hit(self, st: _MonitorState) -> Hit:
        if st.status == "broken":
            return Hit(self.spec.broken_symbol, (st.reason,))
        return Hit(self.fail_symbol.name, ("unreachable", st.reason))

    def _read(self, facts: MessageFacts, asks: list[tuple[str, set[str]]], answers: Sequence[DnsAnswer]) -> list[Hit]:
        spec = self.spec
        authenticated = is_authenticated_submission(facts)
        found: dict[str, list[str]] = {}

        def note(symbol: str, option: str) -> None:
            opts = found.setdefault(symbol, [])
            if option not in opts and len(opts) < MAX_OPTIONS:
                opts.append(option)

        for (target, sels), ans in zip(asks, answers, strict=True):
            if not ans.ok:
                note(self.fail_symbol.name, f"{ans.error}:{target}")
                continue
            for code in ans.addresses():
                meaning = self.lst.interpret(code)
                if meaning.kind == "error":
                    note(spec.blocked_symbol, f"{code}:{target}")
                    continue
                if meaning.kind == "unknown":
                    log.debug("list %s: %s answered unmapped code %s", spec.name, target, code)
                    continue
                for rule in meaning.rules:
                    if rule.skip_authenticated and authenticated:
                        continue
                    for sel in sorted(sels & rule.on):
                        note(rule.symbol, f"{target}:{sel}")
        return [Hit(sym, tuple(opts)) for sym, opts in found.items()]
