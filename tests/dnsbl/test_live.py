"""Live listings: the store API on SQLite and a real PostgreSQL, the server answering changes within a
second, SOA serials, expiry, the CLI, rbldnsd exports and zone transfers."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.xfr
import dns.zone
import pytest
from click.testing import CliRunner

from relayguard.dnsbl.answer import Limits
from relayguard.dnsbl.cli import dnsbl
from relayguard.dnsbl.feeds import FeedServer, export_rbldnsd
from relayguard.dnsbl.live import ListingError, ListingStore, LiveZones, PostgresStore, SqliteStore
from relayguard.dnsbl.server import Catalog
from relayguard.dnsbl.zonespec import ZoneSpec, build_zoneset


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ListingStore]:
    if request.param == "sqlite":
        s: ListingStore = SqliteStore(str(tmp_path / "dnsbl.sqlite3"))
        yield s
        s.close()
        return
    # A throwaway database on the real PostgreSQL (tests/peers.py starts a private one if needed).
    pg_dsn: str = request.getfixturevalue("pg_dsn")
    s = PostgresStore(pg_dsn, "rg_test_" + secrets.token_hex(4))
    yield s
    s.close()


def test_store_api(store: ListingStore) -> None:
    v0 = store.version()
    store.add("bl.example.net", "192.0.2.7", code="127.0.0.4", reason="open proxy", evidence="incident:42",
              expires_in=3600)
    store.add("bl.example.net", "198.51.100.0/24", reason="spam run")
    store.add("BL.example.net.", "Spam.Example.", reason="spamvertised")
    store.add("bl.example.net", "2001:db8::1", reason="v6")
    assert store.version() > v0
    got = store.get("bl.example.net", "192.0.2.7")
    assert got is not None and got.code == "127.0.0.4" and got.evidence == "incident:42"
    assert got.expires is not None and got.expires > time.time()
    assert store.get("bl.example.net", "spam.example") is not None
    assert [x.entry for x in store.search("bl.example.net", "spam")] == ["198.51.100.0/24", "spam.example"]
    v1 = store.version()
    assert store.remove("bl.example.net", "192.0.2.7")
    assert not store.remove("bl.example.net", "192.0.2.7")
    assert store.version() > v1
    changes = store.changes_since("bl.example.net", v0)
    assert changes is not None
    assert [c.op for c in changes] == ["add", "add", "add", "add", "del"]
    store.add("bl.example.net", "203.0.113.9", expires_in=1)
    assert store.expire(time.time() + 5) == 1
    assert store.get("bl.example.net", "203.0.113.9") is None
    with pytest.raises(ListingError):
        store.add("bl.example.net", "192.0.2.1/16")  # host bits set
    with pytest.raises(ListingError):
        store.add("bl.example.net", "192.0.2.1", code="not-an-ip")


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[tuple[FeedServer, SqliteStore]]:
    st = SqliteStore(str(tmp_path / "live.sqlite3"))
    live = LiveZones(st, ["live.test"])
    cat = Catalog([ZoneSpec.parse("live.test:live")], Limits(), live=live)
    cat.load()
    srv = FeedServer(cat, [("127.0.0.1", 0)], live=live, allow=["127.0.0.0/8"], check_interval=0,
                     live_interval=0.1)
    await srv.start()
    yield srv, st
    await srv.stop()
    st.close()


async def _ask(srv: FeedServer, name: str, rtype: str = "A") -> dns.message.Message:
    host, port = srv.bound[0]
    return await dns.asyncquery.udp(dns.message.make_query(name, rtype), host, port=port, timeout=2)


async def _serial(srv: FeedServer) -> int:
    r = await _ask(srv, "live.test", "SOA")
    return int(r.answer[0][0].serial)


async def test_changes_answer_within_a_second_and_move_the_serial(
        live_server: tuple[FeedServer, SqliteStore]) -> None:
    srv, st = live_server
    r = await _ask(srv, "7.2.0.192.live.test")
    assert r.rcode() == dns.rcode.NXDOMAIN
    s0 = await _serial(srv)
    st.add("live.test", "192.0.2.7", code="127.0.0.3", reason="exploited host", expires_in=600)
    st.add("live.test", "bad.example", reason="spamvertised")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        r = await _ask(srv, "7.2.0.192.live.test")
        if r.answer:
            break
        await asyncio.sleep(0.05)
    assert [rd.to_text() for rd in r.answer[0]] == ["127.0.0.3"]
    t = await _ask(srv, "7.2.0.192.live.test", "TXT")
    assert t.answer[0][0].to_text() == '"exploited host"'
    d = await _ask(srv, "bad.example.live.test")
    assert d.answer and d.answer[0][0].to_text() == "127.0.0.2"
    s1 = await _serial(srv)
    assert s1 > s0
    st.remove("live.test", "192.0.2.7")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        r = await _ask(srv, "7.2.0.192.live.test")
        if r.rcode() == dns.rcode.NXDOMAIN:
            break
        await asyncio.sleep(0.05)
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert await _serial(srv) > s1


async def test_axfr_ixfr_and_the_allow_list(live_server: tuple[FeedServer, SqliteStore]) -> None:
    srv, st = live_server
    st.add("live.test", "192.0.2.7", reason="one")
    st.add("live.test", "198.51.100.0/30", reason="four")
    await asyncio.sleep(0.4)
    host, port = srv.bound[0]
    loop = asyncio.get_running_loop()

    def axfr() -> dns.zone.Zone:
        z = dns.zone.Zone("live.test")
        dns.query.inbound_xfr(host, z, port=port, timeout=5)
        return z

    z = await loop.run_in_executor(None, axfr)
    names = sorted(n.to_text() for n in z.nodes)
    assert "7.2.0.192" in names and "3.100.51.198" in names and "@" in names
    serial = z.find_rdataset("@", "SOA")[0].serial
    st.add("live.test", "203.0.113.5", reason="new")
    st.remove("live.test", "192.0.2.7")
    await asyncio.sleep(0.4)

    def ixfr() -> list[dns.message.Message]:
        q = dns.message.make_query("live.test", "IXFR")
        q.authority.append(z.find_rrset("@", "SOA"))
        return list(dns.query.xfr(host, "live.test", rdtype=dns.rdatatype.IXFR, port=port, serial=serial,
                                  timeout=5, relativize=False))

    msgs = await loop.run_in_executor(None, ixfr)
    text = "\n".join(m.to_text() for m in msgs)
    assert "5.113.0.203.live.test" in text and "7.2.0.192.live.test" in text
    # not on the allow list
    srv.allow = ["10.0.0.0/8"]
    with pytest.raises(dns.xfr.TransferError):
        await loop.run_in_executor(None, axfr)


def test_cli_list_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.sqlite3")
    run = CliRunner().invoke
    r = run(dnsbl, ["list", "--database", db, "add", "bl.test", "192.0.2.9", "--code", "127.0.0.4", "--reason",
                    "proxy abuse", "--expires", "2h", "--evidence", "incident:7"])
    assert r.exit_code == 0, r.output
    r = run(dnsbl, ["list", "--database", db, "show", "bl.test", "192.0.2.9"])
    assert r.exit_code == 0 and "127.0.0.4" in r.output and "incident:7" in r.output
    r = run(dnsbl, ["list", "--database", db, "search", "proxy"])
    assert "192.0.2.9" in r.output
    r = run(dnsbl, ["list", "--database", db, "add", "bl.test", "not an ip or name!"])
    assert r.exit_code != 0
    r = run(dnsbl, ["list", "--database", db, "search", "--zone", "bad zone!"])
    assert r.exit_code == 2 and "bad zone" in r.output  # a usage error, not a traceback
    r = run(dnsbl, ["list", "--database", db, "remove", "bl.test", "192.0.2.9"])
    assert r.exit_code == 0
    r = run(dnsbl, ["list", "--database", db, "show", "bl.test", "192.0.2.9"])
    assert r.exit_code != 0


def test_export_files_load_as_rbldnsd_data(tmp_path: Path) -> None:
    st = SqliteStore(str(tmp_path / "x.sqlite3"))
    st.add("bl.test", "192.0.2.7", code="127.0.0.3", reason="costs $5")
    st.add("bl.test", "198.51.100.0/24", reason="range")
    st.add("bl.test", "2001:db8::/48", reason="v6")
    st.add("bl.test", ".spam.example", reason="domain")
    out = tmp_path / "out"
    paths = export_rbldnsd(st, "bl.test", str(out))
    assert sorted(Path(p).name for p in paths) == ["bl.test.dnset", "bl.test.ip4trie", "bl.test.ip6trie"]
    specs = [ZoneSpec.parse(f"bl.test:{t}:bl.test.{t}") for t in ("ip4trie", "ip6trie", "dnset")]
    zs = build_zoneset(specs, Limits(), workdir=str(out)).zoneset
    r = zs.resolve(("7", "2", "0", "192", "bl", "test"), 16, 1)
    assert r.answer[0].rdata == b"\x08costs $5"
    assert zs.resolve(("www", "spam", "example", "bl", "test"), 1, 1).answer
    st.close()


@pytest.mark.peer
async def test_nsd_secondary_transfers_a_live_zone(live_server: tuple[FeedServer, SqliteStore],
                                                   tmp_path: Path) -> None:
    srv, st = live_server
    st.add("live.test", "192.0.2.7", code="127.0.0.5", reason="via nsd")
    await asyncio.sleep(0.4)
    _host, port = srv.bound[0]
    from dnsbl.oracle import free_port_both

    nsd_port = free_port_both()
    d = tmp_path / "nsd"
    d.mkdir()
    conf = d / "nsd.conf"
    conf.write_text(f"""server:
    ip-address: 127.0.0.1@{nsd_port}
    port: {nsd_port}
    username: ""
    zonesdir: "{d}"
    database: ""
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    zonelistfile: "{d}/zone.list"
    logfile: "{d}/nsd.log"
    chroot: ""
    server-count: 1
    hide-version: yes
remote-control:
    control-enable: no
zone:
    name: "live.test"
    zonefile: "live.test.zone"
    request-xfr: AXFR 127.0.0.1@{port} NOKEY
    allow-notify: 127.0.0.1 NOKEY
""")
    proc = subprocess.Popen(["nsd", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 45  # a loaded machine: nsd's first transfer can take a while
        ans = None
        while time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                pytest.fail(f"nsd exited: {err}")
            try:
                ans = await dns.asyncquery.udp(dns.message.make_query("7.2.0.192.live.test", "A"), "127.0.0.1",
                                               port=nsd_port, timeout=1)
            except (TimeoutError, OSError, dns.exception.Timeout):
                continue
            if ans.answer:
                break
        log = (d / "nsd.log").read_text() if (d / "nsd.log").exists() else ""
        assert ans is not None and ans.answer, log
        assert ans.answer[0][0].to_text() == "127.0.0.5"
    finally:
        proc.terminate()
        proc.wait(10)
