"""The authoritative server over real sockets on loopback: UDP, TCP, EDNS0, truncation, errors, reloads."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from peers import eventually
from relayguard.dnsbl.answer import Limits
from relayguard.dnsbl.server import Catalog, DnsblServer
from relayguard.dnsbl.zonespec import ZoneSpec

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dnsbl"

BIG = "\n".join(["$SOA 60 ns.big.test hm.big.test 7 60 60 600 30", ":127.0.0.2:base"]
                + [f"192.0.2.1 :{2 + i % 200}:{'long text ' * 8}{i}" for i in range(40)]) + "\n"


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    for f in ("ip4set.zone", "dnset.zone", "generic.zone"):
        shutil.copy(FIXTURES / f, tmp_path / f)
    (tmp_path / "big.zone").write_text(BIG)
    return tmp_path


@pytest.fixture(params=["compiled", "python"])
async def server(datadir: Path, request: pytest.FixtureRequest,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DnsblServer]:
    """Every server test runs with both UDP loops: the compiled engine's batches and the Python one."""
    monkeypatch.setenv("RELAYGUARD_DNSBL_NATIVE", "1" if request.param == "compiled" else "0")
    specs = [ZoneSpec.parse(s) for s in ("bl.test:ip4set:ip4set.zone", "dbl.test:dnset:dnset.zone",
                                         "gen.test:generic:generic.zone", "big.test:ip4set:big.zone")]
    cat = Catalog(specs, Limits(), workdir=str(datadir))
    cat.load()
    srv = DnsblServer(cat, [("127.0.0.1", 0)], check_interval=0)
    await srv.start()
    yield srv
    await srv.stop()


def addr(srv: DnsblServer) -> tuple[str, int]:
    return srv.bound[0]


async def udp(srv: DnsblServer, q: dns.message.Message) -> dns.message.Message:
    host, port = addr(srv)
    return await dns.asyncquery.udp(q, host, port=port, timeout=2, ignore_trailing=False)


async def tcp(srv: DnsblServer, q: dns.message.Message) -> dns.message.Message:
    host, port = addr(srv)
    return await dns.asyncquery.tcp(q, host, port=port, timeout=2)


def rrs(m: dns.message.Message, section: str = "answer") -> list[tuple[str, str]]:
    return sorted((dns.rdatatype.to_text(r.rdtype), rd.to_text()) for r in getattr(m, section) for rd in r)


async def test_listed_address_answers_a_and_txt(server: DnsblServer) -> None:
    r = await udp(server, dns.message.make_query("1.0.65.10.bl.test", "A"))  # 10.65.0.1 :5
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA and not r.flags & dns.flags.RA
    assert rrs(r) == [("A", "127.0.0.5")]
    r = await udp(server, dns.message.make_query("3.0.65.10.bl.test", "TXT"))
    assert rrs(r) == [("TXT", '"Custom text for 10.65.0.3 More at https://lists.fixture.test/why (fixture list)"')]


async def test_negative_answers_carry_the_soa(server: DnsblServer) -> None:
    r = await udp(server, dns.message.make_query("9.9.9.9.bl.test", "A"))
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert rrs(r, "authority") == [("SOA", "ns1.fixture.test. hostmaster.fixture.test. 20260101 7200 900 604800 300")]
    assert r.authority[0].ttl == 300
    # listed name, type without data: NODATA, SOA too
    r = await udp(server, dns.message.make_query("5.0.65.10.bl.test", "AAAA"))
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert [x.rdtype for x in r.authority] == [dns.rdatatype.SOA]


async def test_apex_ns_and_soa(server: DnsblServer) -> None:
    r = await udp(server, dns.message.make_query("bl.test", "NS"))
    assert rrs(r) == [("NS", "ns1.fixture.test."), ("NS", "ns2.fixture.test.")]
    r = await udp(server, dns.message.make_query("BL.test", "SOA"))
    assert [x.rdtype for x in r.answer] == [dns.rdatatype.SOA]
    assert r.answer[0].name.to_text() == "BL.test."  # the question's spelling is kept


async def test_outside_our_zones_is_refused_and_never_recursed(server: DnsblServer) -> None:
    q = dns.message.make_query("www.example.com", "A")
    assert q.flags & dns.flags.RD
    r = await udp(server, q)
    assert r.rcode() == dns.rcode.REFUSED
    assert not r.answer and not r.flags & dns.flags.RA and not r.flags & dns.flags.AA


async def test_any_is_minimal(server: DnsblServer) -> None:
    r = await udp(server, dns.message.make_query("4.0.65.10.bl.test", "ANY"))
    assert {x.rdtype for x in r.answer} == {dns.rdatatype.A, dns.rdatatype.TXT}
    assert sum(len(x) for x in r.answer) == 2


async def test_edns_and_truncation_then_tcp(server: DnsblServer) -> None:
    q = dns.message.make_query("1.2.0.192.big.test", "TXT")
    r = await udp(server, q)
    assert r.flags & dns.flags.TC and not r.answer
    q2 = dns.message.make_query("1.2.0.192.big.test", "TXT", use_edns=0, payload=4096)
    r2 = await udp(server, q2)
    assert r2.edns == 0  # we answer EDNS with EDNS
    assert r2.flags & dns.flags.TC  # still too big for our 1232-byte cap
    full = await tcp(server, q)
    assert not full.flags & dns.flags.TC
    assert len(full.answer[0]) == 40


async def test_tcp_connection_carries_several_queries(server: DnsblServer) -> None:
    host, port = addr(server)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for name in ("5.0.65.10.bl.test", "spam.example.dbl.test", "nothing.dbl.test"):
            w = dns.message.make_query(name, "A").to_wire()
            writer.write(struct.pack("!H", len(w)) + w)
        await writer.drain()
        codes = []
        for _ in range(3):
            (n,) = struct.unpack("!H", await reader.readexactly(2))
            codes.append(dns.message.from_wire(await reader.readexactly(n)).rcode())
        assert codes == [dns.rcode.NOERROR, dns.rcode.NOERROR, dns.rcode.NXDOMAIN]
    finally:
        writer.close()


async def test_malformed_packets_are_dropped_or_formerr(server: DnsblServer) -> None:
    host, port = addr(server)
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        good = dns.message.make_query("5.0.65.10.bl.test", "A")
        bad_qd = bytearray(good.to_wire())
        bad_qd[5] = 2  # two questions announced, one present
        for pkt in (b"", b"\x00", b"\x12\x34" + b"\xff" * 30, bytes(bad_qd), good.to_wire()[:-3]):
            await loop.sock_sendto(s, pkt, (host, port))
        await loop.sock_sendto(s, good.to_wire(), (host, port))
        seen = []
        while True:
            data = await asyncio.wait_for(loop.sock_recv(s, 4096), 2)
            m = dns.message.from_wire(data, question_only=True) if len(data) >= 12 else None
            assert m is not None
            seen.append(m.rcode())
            if m.rcode() == dns.rcode.NOERROR:
                break
        assert all(c in (dns.rcode.FORMERR, dns.rcode.NOERROR) for c in seen)
    finally:
        s.close()


async def test_responses_to_udp_never_exceed_what_the_query_allows(server: DnsblServer) -> None:
    for payload in (None, 512, 700, 1232, 4096, 65000):
        q = dns.message.make_query("1.2.0.192.big.test", "ANY", use_edns=None if payload is None else 0,
                                   payload=payload or 512)
        host, port = addr(server)
        loop = asyncio.get_running_loop()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        try:
            await loop.sock_sendto(s, q.to_wire(), (host, port))
            data = await asyncio.wait_for(loop.sock_recv(s, 65535), 2)
        finally:
            s.close()
        assert len(data) <= min(max(512, payload or 512), 1232)


async def test_reload_swaps_data_and_keeps_old_data_on_bad_files(server: DnsblServer, datadir: Path) -> None:
    path = datadir / "ip4set.zone"
    tmp = datadir / "ip4set.zone.tmp"
    tmp.write_text(path.read_text() + "\n99.99.99.99 :9:new entry\n")
    os.utime(tmp, (1_000_000_000, 1_000_000_000))  # settled long ago
    tmp.replace(path)  # atomic rename: the way to publish a data file
    server.catalog.loaded.files[str(path)] = 0.0  # type: ignore[union-attr]
    server.request_reload()
    assert await eventually(lambda: server.catalog.reloads)
    r = await udp(server, dns.message.make_query("99.99.99.99.bl.test", "A"))
    assert rrs(r) == [("A", "127.0.0.9")]
    # an unreadable file: the reload fails, the old data keeps answering
    path.unlink()
    os.mkdir(path)
    server.request_reload()
    await asyncio.sleep(0.3)
    r = await udp(server, dns.message.make_query("99.99.99.99.bl.test", "A"))
    assert rrs(r) == [("A", "127.0.0.9")]


async def test_file_still_being_written_is_not_loaded(server: DnsblServer, datadir: Path) -> None:
    path = datadir / "ip4set.zone"
    with open(path, "a") as f:  # written in place, just now: mtime is fresh, the writer may not be done
        f.write("98.98.98.98 :8:half\n")
    assert not server.catalog.files_changed()
    os.utime(path, (1_000_000_000, 1_000_000_000))
    assert server.catalog.files_changed()


async def test_expired_data_is_not_served_and_version_bind(datadir: Path) -> None:
    (datadir / "old.zone").write_text("$TIMESTAMP 2020:01:01 +1d\n10.0.0.1\n")
    cat = Catalog([ZoneSpec.parse("old.test:ip4set:old.zone"), ZoneSpec.parse("bl.test:ip4set:ip4set.zone")],
                  Limits(), workdir=str(datadir))
    cat.load()
    srv = DnsblServer(cat, [("127.0.0.1", 0)], check_interval=0)
    await srv.start()
    try:
        r = await udp(srv, dns.message.make_query("1.0.0.10.old.test", "A"))
        assert r.rcode() == dns.rcode.SERVFAIL
        r = await udp(srv, dns.message.make_query("version.bind", "TXT", rdclass="CH"))
        assert rrs(r) == [("TXT", '"relayguard"')]
    finally:
        await srv.stop()
