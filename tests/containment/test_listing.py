"""A blocked customer's client addresses appear in relayguard's DNSBL (live zone) for peers to query."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from relayguard.containment.decisions import DecisionRecord
from relayguard.containment.listing import DnsblListings, listable
from relayguard.containment.states import ContainmentState
from relayguard.containment.store_sqlite import SqliteStore
from relayguard.core.clock import ManualClock

from .conftest import make_containment

ZONE = "exploited.test"


def test_listable() -> None:
    assert listable("192.0.2.7") == "192.0.2.7"
    assert listable("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert listable("::ffff:192.0.2.9") == "192.0.2.9"
    assert listable("[127.0.3.4]") == "127.0.3.4"
    assert listable("unknown") is None and listable("") is None


@pytest.fixture
async def dnsbl(tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    import relayguard.dnsbl.live as live_mod
    from relayguard.dnsbl.answer import Limits
    from relayguard.dnsbl.feeds import FeedServer
    from relayguard.dnsbl.server import Catalog
    from relayguard.dnsbl.zonespec import ZoneSpec

    st = live_mod.SqliteStore(str(tmp_path / "dnsbl.sqlite3"))
    live = live_mod.LiveZones(st, [ZONE])
    cat = Catalog([ZoneSpec.parse(f"{ZONE}:live")], Limits(), live=live)
    cat.load()
    srv = FeedServer(cat, [("127.0.0.1", 0)], live=live, allow=["127.0.0.0/8"], check_interval=0, live_interval=0.1)
    await srv.start()
    yield srv, st
    await srv.stop()
    st.close()


async def _ask(srv: Any, name: str, rtype: str = "A") -> dns.message.Message:
    host, port = srv.bound[0]
    return await dns.asyncquery.udp(dns.message.make_query(name, rtype), host, port=port, timeout=2)


async def _until(srv: Any, name: str, listed: bool) -> dns.message.Message:
    t0 = time.monotonic()
    while True:
        r = await _ask(srv, name)
        if bool(r.answer) == listed or time.monotonic() - t0 > 3.0:
            return r
        await asyncio.sleep(0.05)


async def test_block_lists_and_release_delists(dnsbl: tuple[Any, Any], tmp_path: Path) -> None:
    srv, live_store = dnsbl
    clock = ManualClock(time.time())
    c = make_containment(SqliteStore(tmp_path / "c.sqlite3"), clock, listing_zone=ZONE)
    c.listings = DnsblListings(live_store, clock)
    for ip in ("127.0.3.7", "127.0.3.8", "2001:db8:5::17"):
        c.record(DecisionRecord(t=clock.now(), customer="sub:S-9", action="DUNNO", client_ip=ip))
    c.record(DecisionRecord(t=clock.now(), customer="sub:other", action="DUNNO", client_ip="127.0.3.99"))
    assert c.escalate("sub:S-9", ContainmentState.BLOCKED, "3 complaints") is not None
    r = await _until(srv, f"7.3.0.127.{ZONE}", True)
    assert [rd.to_text() for rd in r.answer[0]] == ["127.0.0.4"]
    txt = await _ask(srv, f"7.3.0.127.{ZONE}", "TXT")
    assert "sub:S-9 blocked: 3 complaints" in txt.answer[0][0].to_text()
    assert (await _until(srv, f"8.3.0.127.{ZONE}", True)).answer
    assert (await _ask(srv, f"99.3.0.127.{ZONE}")).rcode() == dns.rcode.NXDOMAIN  # the neighbour is not listed
    entry = live_store.get(ZONE, "2001:db8:5::/64")
    assert entry is not None and entry.expires is not None
    assert abs(entry.expires - (time.time() + 7 * 86400)) < 120
    inc = c.store.current_incident("sub:S-9")
    assert inc is not None and entry.evidence == f"incident:{inc.id}"
    # release: delisted
    c.command("release", "sub:S-9")
    c.poll()
    r = await _until(srv, f"7.3.0.127.{ZONE}", False)
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert live_store.get(ZONE, "2001:db8:5::/64") is None
