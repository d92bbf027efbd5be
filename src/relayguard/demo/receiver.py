"""The Internet's side of the demo: relayguard's DNSBL serving the ISP's exploited-hosts zone, and a
receiver (a neighbour's MX) running relayguard with `[trust]` trusting the ISP's relays, which asks
that zone about the hop where each message entered the ISP.

Which hop: the trust walk (SpamAssassin's semantics) cannot name it in this lab, for two reasons that
do not hold in a real deployment: loopback is always trusted and internal, and the DNS-list checks
never ask about loopback addresses. `EntryHopListCheck` therefore selects the hop itself, with the same
meaning: walking from the newest header, the first hop whose client is not one of the ISP's relays —
the last external hop as seen from the ISP's relays. With public addresses the stock selectors pick the
same hop: `lastexternal` for a customer known by its address, `authenticated` for a SASL submission
(an authenticated hop into a trusted relay is trusted, so it is recorded as the authenticated client).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from relayguard.config import load_config_text
from relayguard.config.schema import Settings
from relayguard.core.netset import NetSet, parse_ip
from relayguard.inbound.dnsbl_check import ListCheck
from relayguard.message.facts import MessageFacts
from relayguard.pipeline import Pipeline
from relayguard.scoring.verdict import Verdict

ZONE = "exploited.dnsbl.isp.example"
LIST_NAME = "ISP_EXPLOITED"
SYMBOL = "RBL_ISP_EXPLOITED"
LISTING_VALUE = "127.0.0.4"


class DnsblThread:
    """relayguard's own DNSBL server (the live zone from the listings store) on a loopback UDP/TCP port."""

    def __init__(self, database: Path, zone: str = ZONE) -> None:
        self.database = database
        self.zone = zone
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="demo-dnsbl", daemon=True)
        self.server: Any = None
        self.store: Any = None

    def start(self) -> None:
        from relayguard.dnsbl.answer import Limits
        from relayguard.dnsbl.live import LiveZones, SqliteStore
        from relayguard.dnsbl.server import Catalog, DnsblServer
        from relayguard.dnsbl.zonespec import ZoneSpec

        self.store = SqliteStore(str(self.database))
        live = LiveZones(self.store, [self.zone])
        catalog = Catalog([ZoneSpec.parse(f"{self.zone}:live")], Limits(), live=live)
        catalog.load()
        # a short live interval: a listing is answered within a fraction of a second
        self.server = DnsblServer(catalog, [("127.0.0.1", 0)], check_interval=0, live_interval=0.1)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(20)
        self.port = int(self.server.bound[0][1])

    def stop(self) -> None:
        if self.server is not None and self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(20)
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        if self.store is not None:
            self.store.close()


class EntryHopListCheck(ListCheck):
    """A DNS list asked about the hop where the message entered the ISP (see the module docstring)."""

    isp_relays: NetSet = NetSet()

    async def _targets(self, facts: MessageFacts, deadline: float) -> dict[str, set[str]]:
        for r in facts.chain.relays:  # newest first
            if r.ip is None or parse_ip(r.ip) is None:
                continue
            if self.isp_relays.contains(r.ip):
                continue
            return {r.ip: {"lastexternal"}}
        return {}


def receiver_settings(data_dir: Path, dns_port: int, isp_relays: list[str], zone: str = ZONE) -> Settings:
    relays = ", ".join(f'"{a}"' for a in isp_relays)
    text = f"""
[storage]
data_dir = "{data_dir.as_posix()}"

[trust]
trusted_networks = [{relays}]   # the ISP's relays never forge headers

[dns]
nameservers = ["127.0.0.1:{dns_port}"]
timeout = 2.0

[[inbound.lists]]
name = "{LIST_NAME}"
zone = "{zone}"
query = ["lastexternal"]
nameservers = ["127.0.0.1:{dns_port}"]
monitor = false

[[inbound.lists.rules]]
symbol = "{SYMBOL}"
codes = ["{LISTING_VALUE}"]
on = ["lastexternal"]
description = "the hop where the message entered the ISP is listed as exploited"

[scores]
{SYMBOL} = 20.0   # above the reject threshold: a listed entry hop is refused
"""
    return load_config_text(text, "demo receiver")


class Receiver:
    """A neighbour's MX: relayguard's built-in checks plus the ISP's exploited-hosts zone."""

    def __init__(self, data_dir: Path, dns_port: int, isp_relays: list[str], zone: str = ZONE) -> None:
        from relayguard.checks.registry import builtin_checks
        from relayguard.inbound.resolver import Resolver
        from relayguard.inbound.settings import InboundSettings
        from relayguard.message.parse import trust_config

        self.settings = receiver_settings(data_dir, dns_port, isp_relays, zone)
        s = self.settings
        inbound = s.inbound if isinstance(s.inbound, InboundSettings) else InboundSettings.model_validate(s.inbound)
        self.resolver = Resolver(s.dns)
        spec = inbound.active_lists()[0]
        check = EntryHopListCheck(spec, inbound, self.resolver, s.dns.timeout, trust_config(s))
        check.isp_relays = NetSet(isp_relays)
        self.pipeline = Pipeline(s, [*builtin_checks(), check])

    async def check(self, delivered: bytes, relay_ip: str) -> Verdict:
        from relayguard.message.parse import parse_message

        # the receiving MX's own Received header: it got the message from the ISP's relay
        raw = (
            f"Received: from relay.isp.example (relay.isp.example [{relay_ip}])\n"
            "\tby mx.neighbour.example (Postfix) with ESMTP id 4RcvDemo\n"
            "\tfor <someone@neighbour.example>; Fri, 27 Nov 2026 14:00:00 +0000\n"
        ).encode() + delivered.replace(b"\r\n", b"\n")
        return await self.pipeline.check(parse_message(raw, self.settings))

    async def listed(self, address: str) -> bool:
        """Does the published zone list `address` yet (what every receiver would be told)?"""
        from relayguard.inbound.resolver import Resolver

        rev = ".".join(reversed(address.split(".")))
        # a resolver of its own, without the cache: the answer must be the zone's as it is now
        ans = await Resolver(self.settings.dns).query(f"{rev}.{ZONE}", "A", timeout=2.0)
        return LISTING_VALUE in ans.addresses()
