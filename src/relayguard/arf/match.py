"""Trace a complaint back to the customer that sent the message.

Clues, most specific first (the first that answers wins):

1. the reported message's Message-ID, looked up in the decision log;
2. a queue id our own relay wrote in its Received line (`by <our relay> ... id <qid>`), per relay;
3. our relay's Received line itself: the client address it accepted the message from, at the time it
   stamped; looked up in the decision log near that time, then in the lease history (who held the
   address *then*, not now);
4. the report's Source-IP at its Arrival-Date, when Source-IP is not one of our relays (a customer
   sending directly to the reporter's MX), decision log first, then lease history.

The times used are the message's, never the complaint's: a dynamic address may have passed to another
customer between the spam and the complaint, and the complaint must reach whoever held it then.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from relayguard.arf.model import ParsedReport
from relayguard.arf.parse import header_str, parse_date, parse_headers, split_head, unfold
from relayguard.arf.ports import DecisionLookup, IdentityLookup, Trace
from relayguard.arf.settings import ArfSettings
from relayguard.core.netset import NetSet
from relayguard.message.received import parse_received

log = logging.getLogger("relayguard.arf")

MAX_RECEIVED = 30  # Received lines looked at in a reported message


@dataclass(frozen=True, slots=True)
class Hop:
    """Our relay's own Received line in the reported message."""

    relay: str
    client_ip: str | None
    queue_id: str | None
    t: float | None


@dataclass(frozen=True, slots=True)
class Clues:
    message_id: str | None
    hops: tuple[Hop, ...]
    source_ip: str | None
    arrival: float | None  # Arrival-Date
    date: float | None  # the reported message's Date header (a sender's clock: last resort)


@dataclass(frozen=True, slots=True)
class Match:
    customer: str | None
    method: str  # "message-id", "queue-id", "received", "source-ip", "none"
    relay: str = ""
    t: float | None = None  # when the message passed our relay, as far as we know
    detail: str = ""

    @property
    def matched(self) -> bool:
        return self.customer is not None


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


def _mid(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip()
    if "<" in v and ">" in v:
        v = v[v.find("<") + 1 : v.find(">", v.find("<"))]
    return v.strip() or None


class Matcher:
    def __init__(
        self,
        settings: ArfSettings,
        decisions: DecisionLookup | None = None,
        identity: IdentityLookup | None = None,
    ) -> None:
        self.settings = settings
        self.decisions = decisions
        self.identity = identity
        self.relay_names = {h.lower().rstrip(".") for h in settings.relay_hostnames}
        self.relay_nets = NetSet(settings.relay_networks)

    def _is_our_relay_ip(self, ip: str) -> bool:
        return self.relay_nets.contains(ip)

    def _is_our_relay_name(self, name: str | None) -> bool:
        if not name:
            return False
        n = name.lower().rstrip(".")
        return n in self.relay_names or any(n.endswith(r) for r in self.relay_names if r.startswith("."))

    def clues(self, parsed: ParsedReport) -> Clues:
        report = parsed.report
        warnings: list[str] = []
        mid = None
        hops: list[Hop] = []
        date = None
        orig = report.original
        if orig is not None and orig.data:
            head = parse_headers(split_head(orig.data)[0] if orig.kind == "message" else orig.data)
            mid = _mid(header_str(head, "Message-ID"))
            date = parse_date(header_str(head, "Date"), warnings, "Date")
            for value in (head.get_all("Received") or [])[:MAX_RECEIVED]:
                pr = parse_received(unfold(str(value)))
                r = pr.relay
                if r is None or not self._is_our_relay_name(r.by):
                    continue
                hops.append(Hop(r.by or "", r.ip, r.id, parse_date(r.time, warnings, "Received")))
        return Clues(mid, tuple(hops), report.source_ip, report.arrival_time, date)

    def _one(self, traces: list[Trace], method: str, detail: str) -> Match | None:
        customers = {t.customer for t in traces}
        if not traces:
            return None
        if len(customers) > 1:
            # One Message-ID sent by two customers: a forged or reused id; the nearest decision wins
            # only for time lookups (already ordered); for ids it is ambiguous, so say so.
            detail += f" (ambiguous: {len(customers)} customers, first taken)"
        best = traces[0]
        return Match(best.customer, method, best.relay, best.t, detail)

    def _by_address(self, ip: str, t: float, method: str, relay: str = "") -> Match | None:
        if self.decisions is not None:
            got = self._one(
                list(self.decisions.by_client(ip, t, self.settings.match_window)), method, f"{ip} near {_ts(t)}"
            )
            if got is not None:
                return got
        if self.identity is not None:
            who = self.identity.holder(ip, t)
            if who is not None:
                return Match(who, method, relay, t, f"{ip} held by {who} at {_ts(t)} (lease history)")
        return None

    def match(self, parsed: ParsedReport) -> Match:
        c = self.clues(parsed)
        d = self.decisions
        if d is not None and c.message_id:
            got = self._one(list(d.by_message_id(c.message_id)), "message-id", c.message_id)
            if got is not None:
                return got
        if d is not None:
            for hop in c.hops:
                if hop.queue_id:
                    got = self._one(
                        list(d.by_queue_id(hop.queue_id, hop.relay)), "queue-id", f"{hop.relay} {hop.queue_id}"
                    )
                    if got is None:
                        got = self._one(list(d.by_queue_id(hop.queue_id, None)), "queue-id", hop.queue_id)
                    if got is not None:
                        return got
        for hop in c.hops:
            t = hop.t if hop.t is not None else (c.arrival if c.arrival is not None else c.date)
            if hop.client_ip and t is not None:
                got = self._by_address(hop.client_ip, t, "received", hop.relay)
                if got is not None:
                    return got
        if c.source_ip and not self._is_our_relay_ip(c.source_ip):
            t = c.arrival if c.arrival is not None else c.date
            if t is not None:
                got = self._by_address(c.source_ip, t, "source-ip")
                if got is not None:
                    return got
        why = []
        if not c.message_id:
            why.append("no Message-ID")
        if not self.relay_names:
            why.append("[arf] relay_hostnames not set")
        elif not c.hops:
            why.append("no Received line of our relays")
        if not c.source_ip:
            why.append("no Source-IP")
        elif self._is_our_relay_ip(c.source_ip):
            why.append("Source-IP is our relay")
        return Match(None, "none", "", None, ", ".join(why) or "no decision or lease matched")
