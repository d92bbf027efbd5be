"""The compiled hot path (_fastdns.c): built, the same bytes as the Python path, safe on hostile tables
and packets, and its batched UDP receive/reply on real sockets.

The differential test against rbldnsd (oracle.compare) and the wire fuzz tests check the engine too.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rdatatype
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayguard.dnsbl import native
from relayguard.dnsbl.answer import Limits, ZoneSet
from relayguard.dnsbl.wire import OPT_DEFAULT, answer_fast
from relayguard.dnsbl.zonespec import ZoneSpec, build_zoneset

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dnsbl"

# the features the engine renders itself: values per entry, `$` and `$n` substitution, a `$=` base
# template, exclusions at each level, wildcards, names with two values (left to Python), two datasets
# in one zone listing the same record (sent once), and TXT texts cut at 255 bytes around the value
LONG = "x" * 250
DATA = {
    "a.zone": "$TTL 600\n$1 var-one\n:127.0.0.2:A-list $ $1 $$ $7\n10.0.0.0/8\n!10.1.0.0/16\n10.1.2.3 :3:\n"
              "10.1.2.4 :4:" + LONG + " $\n10.1.2.5 :5:$ " + LONG + "\n192.0.2.0/24 :6:net $\n!192.0.2.7\n",
    "b.zone": "$TTL 300\n:127.0.0.2:A-list $ var-one $$ $7\n10.2.0.0/16\n10.9.9.9 :9:second set\n",
    "base.zone": "$= Listed: $= (see $)\n20.0.0.1 ref-42\n20.0.0.2\n20.0.0.3 =own $\n",
    "names.zone": "$SOA 600 ns.dbl.test hm.dbl.test 5 60 60 600 30\n:127.0.1.2:Domain $ listed\nspam.example\n"
                  "*.wild.example :3:under $\n.both.example :4\n"
                  "!ok.wild.example\nmulti.example :2:one\nmulti.example :5:two\nMixed.Example\n",
}
SPECS = ["ip.test:ip4set:a.zone,b.zone", "two.test:ip4set:a.zone", "two.test:ip4set:b.zone",
         "base.test:ip4set:base.zone", "dbl.test:dnset:names.zone", "sub.dbl.test:ip4set:b.zone"]


@pytest.fixture(scope="module")
def zs(tmp_path_factory: pytest.TempPathFactory) -> ZoneSet:
    d = tmp_path_factory.mktemp("native")
    for name, text in DATA.items():
        (d / name).write_text(text)
    shutil.copy(FIXTURES / "generic.zone", d / "generic.zone")
    specs = [*SPECS, "gen.test:generic:generic.zone"]
    return build_zoneset([ZoneSpec.parse(s) for s in specs], Limits(), workdir=str(d)).zoneset


def questions() -> Iterator[tuple[str, str]]:
    ips = ["10.0.0.1", "10.1.0.1", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.2.3.4", "10.9.9.9", "192.0.2.1",
           "192.0.2.7", "11.0.0.1", "20.0.0.1", "20.0.0.2", "20.0.0.3", "20.0.0.9", "1.2.3"]
    zones = ["ip.test", "two.test", "base.test", "sub.dbl.test", "gen.test", "other.test"]
    for ip in ips:
        rev = ".".join(reversed(ip.split(".")))
        for z in zones:
            for t in ("A", "TXT", "MX"):
                yield f"{rev}.{z}", t
    for n in ["spam.example", "x.spam.example", "a.wild.example", "b.a.wild.example", "wild.example",
              "ok.wild.example", "both.example", "x.both.example", "multi.example", "MIXED.example", "nope"]:
        for t in ("A", "TXT", "ANY"):
            yield f"{n}.dbl.test", t
    for apex in ["ip.test", "dbl.test", "gen.test"]:
        yield apex, "A"


def packets() -> Iterator[bytes]:
    for i, (name, rtype) in enumerate(questions()):
        for edns in (-1, 0):
            m = dns.message.make_query(name, rtype, use_edns=edns, payload=1232)
            m.id = (2 * i + edns + 1) & 0xFFFF  # unique: replies are matched by id
            yield m.to_wire()


def test_the_extension_is_built() -> None:
    """scripts/setup installs gcc and the Python headers: a test run without the compiled path is a
    broken install, not a pass."""
    assert native.available()
    assert native.enabled()


def test_same_bytes_as_the_python_path_and_most_answered(zs: ZoneSet) -> None:
    engine = native.engine_for(zs)
    answered = declined = 0
    for p in packets():
        got = engine.answer(p)
        if got is None:
            declined += 1
            continue
        answered += 1
        assert got == answer_fast(zs, p, "127.0.0.1"), dns.message.from_wire(p).question
    # the plain questions to ip4set/dnset zones are the engine's; MX, ANY, the generic zone, the apex,
    # unknown zones and multi-valued names are Python's
    assert answered >= 250  # 280: A and TXT to the four ip4set zones and the dnset, each with and without EDNS
    assert declined > 100


def test_what_the_engine_renders(zs: ZoneSet) -> None:
    engine = native.engine_for(zs)

    def ask(name: str, rtype: str) -> dns.message.Message:
        raw = engine.answer(dns.message.make_query(name, rtype).to_wire())
        assert raw is not None, name
        return dns.message.from_wire(raw)

    def texts(m: dns.message.Message) -> list[bytes]:
        return [b"".join(rd.strings) for rrset in m.answer for rd in rrset]

    # the value, a variable, a dollar, an unset variable; two files of one dataset
    assert texts(ask("1.0.0.10.ip.test", "TXT")) == [b"A-list 10.0.0.1 var-one $ $7"]
    assert ask("1.0.1.10.ip.test", "A").rcode() == dns.rcode.NXDOMAIN  # excluded
    r = ask("3.2.1.10.ip.test", "A")  # a /32 inside the exclusion: the most specific level decides
    assert [rd.to_text() for rrset in r.answer for rd in rrset] == ["127.0.0.3"]
    cut = texts(ask("4.2.1.10.ip.test", "TXT"))[0]  # the value pushed past 255: cut after it went in
    assert cut == (LONG + " 10.1.2.4").encode()[:255] and len(cut) == 255
    assert texts(ask("5.2.1.10.ip.test", "TXT"))[0] == (b"10.1.2.5 " + LONG.encode())[:255]
    # two datasets in one zone listing the same record: it is sent once, with the first TTL
    r = ask("4.3.2.10.two.test", "TXT")
    assert texts(r) == [b"A-list 10.2.3.4 var-one $ $7"] and r.answer[0].ttl == 600  # a.zone came first
    # $= base template
    assert texts(ask("1.0.0.20.base.test", "TXT")) == [b"Listed: ref-42 (see 20.0.0.1)"]
    assert texts(ask("3.0.0.20.base.test", "TXT")) == [b"own 20.0.0.3"]
    # wildcards name the matched entry, exclusions hide it, case does not matter
    assert texts(ask("b.a.wild.example.dbl.test", "TXT")) == [b"under wild.example"]
    assert ask("ok.wild.example.dbl.test", "A").rcode() == dns.rcode.NXDOMAIN
    assert texts(ask("MIXED.example.dbl.test", "TXT")) == [b"Domain mixed.example listed"]
    # a zone below a zone: the longest zone answers
    assert texts(ask("9.9.9.10.sub.dbl.test", "TXT")) == [b"second set"]
    # a miss carries the SOA of the zone, at the zone's offset in the question
    miss = ask("nope.dbl.test", "A")
    assert miss.rcode() == dns.rcode.NXDOMAIN and len(miss.authority) == 1
    # names with several values are left to Python
    assert engine.answer(dns.message.make_query("multi.example.dbl.test", "A").to_wire()) is None


def test_truncates_like_the_python_path() -> None:
    big = "\n".join([":127.0.0.2:base"] + [f"192.0.2.1 :{2 + i}:{'long text ' * 8}{i}" for i in range(30)])
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        Path(d, "big.zone").write_text(big + "\n")
        zs = build_zoneset([ZoneSpec.parse("big.test:ip4set:big.zone")], Limits(), workdir=d).zoneset
    engine = native.engine_for(zs)
    for payload, edns in ((512, -1), (512, 0), (1232, 0), (4096, 0)):
        p = dns.message.make_query("1.2.0.192.big.test", "TXT", use_edns=edns, payload=payload).to_wire()
        got = engine.answer(p)
        assert got == answer_fast(zs, p, "127.0.0.1")
        assert got is not None and len(got) <= min(max(payload, 512) if edns == 0 else 512, 1232)
        assert got[2] & 0x02  # TC: 30 long texts fit in no UDP answer, the client asks over TCP


def level(nkeys: int, buckets: int = 65537) -> tuple[object, ...]:
    return (np.zeros(nkeys, np.uint16).data, np.zeros(nkeys, np.uint8).data,
            np.zeros(buckets, np.uint32).data, 0xFFFFFFFF)


@pytest.mark.parametrize("bad", [
    [(b"\x02bl\x00", True, True, None, [(1, 60, [level(3, 10)], [])])],       # bucket table too short
    [(b"\x02bl\x00", True, True, None, [(1, 60, [level(3)] * 5, [])])],       # five levels
    [(b"\x02bl\x00", True, True, None, [(7, 60, [], [])])],                   # unknown kind
    [(b"\x02bl\x00", True, True, None, [(1, 60, [], [(b"short", None)])])],   # A tail not 14 bytes
    [(b"\x02bl\x00", True, True, None, [(1, 60, [], [(b"x" * 14, ())])])],    # empty TXT parts
    [(b"", True, True, None, [])],                                            # empty zone name
    [(b"\x02bl\x00", True, True, b"x" * 700, [])],                            # SOA tail too long
    [(b"\x02bl\x00", True, True, None, [(2, 60, (b"", b"", b"", b"", "x"), None, 1, [])])],  # itemsizes
])
def test_refuses_tables_of_the_wrong_shape(bad: list[tuple[object, ...]]) -> None:
    from relayguard.dnsbl import _fastdns

    with pytest.raises((ValueError, TypeError)):
        _fastdns.Engine(bad, OPT_DEFAULT)  # type: ignore[arg-type]


def test_bucket_edges_past_the_keys_are_left_to_python() -> None:
    from relayguard.dnsbl import _fastdns

    keys, vals, _buckets, mask = level(2)
    edges = np.zeros(65537, np.uint32)
    edges[0x0A00 + 1 :] = 1000  # claims 1000 keys where there are 2
    eng = _fastdns.Engine([(b"\x02bl\x00", True, True, None, [(1, 60, [(keys, vals, edges.data, mask)], [None])])],
                          OPT_DEFAULT)
    assert eng.answer(dns.message.make_query("1.0.0.10.bl", "A").to_wire()) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(list(packets())[:400]), flips=st.lists(st.tuples(st.integers(0, 120),
                                                                             st.integers(0, 255)), max_size=4),
       cut=st.integers(0, 200), extra=st.binary(max_size=20))
def test_hostile_packets(zs: ZoneSet, base: bytes, flips: list[tuple[int, int]], cut: int, extra: bytes) -> None:
    engine = native.engine_for(zs)
    pkt = bytearray(base)
    for pos, val in flips:
        if pos < len(pkt):
            pkt[pos] = val
    for p in (bytes(pkt), bytes(pkt[:cut]), bytes(pkt) + extra):
        got = engine.answer(p)
        if got is not None:
            assert got == answer_fast(zs, p, "127.0.0.1")
            assert len(got) <= 1232


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_receive_and_reply_on_a_real_socket(zs: ZoneSet, family: int, host: str) -> None:
    """A burst larger than one batch: every plain question answered by the engine, the rest handed back
    with the sender's address, nothing lost."""
    engine = native.engine_for(zs)
    srv = socket.socket(family, socket.SOCK_DGRAM)
    cli = socket.socket(family, socket.SOCK_DGRAM)
    with srv, cli:
        srv.bind((host, 0))
        cli.settimeout(2)
        pk = list(packets())[:100]
        for p in pk:
            cli.sendto(p, srv.getsockname()[:2])
        scratch = bytearray(native.SCRATCH)
        answered = 0
        handed: list[tuple[bytes, tuple[object, ...]]] = []
        while answered + len(handed) < len(pk):
            count, err = native.receive(srv.fileno(), scratch)
            assert err == 0 and 1 <= count <= 32
            n, rest = engine.reply(srv.fileno(), scratch, count)
            answered += n
            handed += rest
        assert handed and answered
        assert all(addr[0] == host and addr[1] == cli.getsockname()[1] for _, addr in handed)
        assert {q for q, _ in handed} <= set(pk)
        replies = {}
        for _ in range(answered):
            r = cli.recv(4096)
            replies[r[:2]] = r
        by_id = {p[:2]: p for p in pk}
        for rid, r in replies.items():
            assert r == answer_fast(zs, by_id[rid], host)
        assert len(replies) == answered


def test_receive_reports_a_closed_socket() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = s.fileno()
    s.close()
    count, err = native.receive(fd, bytearray(native.SCRATCH))
    assert count == 0 and err != 0


def test_scratch_too_small_is_an_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(ValueError):
        native.receive(s.fileno(), bytearray(100))


def test_types_the_engine_does_not_cover_go_to_python(zs: ZoneSet) -> None:
    engine = native.engine_for(zs)
    for rtype in ("MX", "ANY", "AAAA", "NS"):
        assert engine.answer(dns.message.make_query("1.0.0.10.ip.test", rtype).to_wire()) is None
    assert engine.answer(dns.message.make_query("www.gen.test", "A").to_wire()) is None  # generic zone
    assert engine.answer(dns.message.make_query("1.0.0.10.ip.test", "A").to_wire()) is not None  # A is its


TRIE = ("$TTL 120\n:127.0.0.2:Trie $\n0/0 :9:everything\n10.0.0.0/8 :3:ten $\n10.1.0.0/16 :4:\n!10.1.2.0/24\n"
        "10.1.2.3/32 :5:host $\n10.1.2.3/32 :6:second line for the same prefix loses\n172.16.0.0/12\n")


def test_ip4trie_zone(tmp_path: Path) -> None:
    """ip4trie: the longest prefix decides, with one value; `!` excludes; the first line for a prefix wins."""
    (tmp_path / "trie.zone").write_text(TRIE)
    zs = build_zoneset([ZoneSpec.parse("trie.test:ip4trie:trie.zone")], Limits(), workdir=str(tmp_path)).zoneset
    engine = native.engine_for(zs)
    seen = set()
    for ip in ["10.0.0.1", "10.1.0.1", "10.1.2.1", "10.1.2.3", "10.1.3.3", "172.20.1.1", "8.8.8.8", "0.0.0.0"]:
        for rtype in ("A", "TXT"):
            p = dns.message.make_query(".".join(reversed(ip.split("."))) + ".trie.test", rtype).to_wire()
            got = engine.answer(p)
            assert got is not None and got == answer_fast(zs, p, "127.0.0.1")
            seen.add(tuple(rd.to_text() for rrset in dns.message.from_wire(got).answer for rd in rrset))
    assert ('"host 10.1.2.3"',) in seen and ('"ten 10.0.0.1"',) in seen and ('"everything"',) in seen
    assert ("127.0.0.5",) in seen and () in seen  # () : 10.1.2.1, excluded from the /16


def test_live_zone(tmp_path: Path) -> None:
    """A zone of live listings (IPv4 trie, IPv6 trie, names in one dataset): the engine answers the IPv4
    and name questions and leaves the IPv6 ones to Python."""
    from relayguard.dnsbl.live import LiveZones, SqliteStore

    st = SqliteStore(str(tmp_path / "live.sqlite3"))
    try:
        st.add("live.test", "192.0.2.7", code="127.0.0.4", reason="open proxy", evidence="incident:42")
        st.add("live.test", "198.51.100.0/24", reason="spam run")
        st.add("live.test", "spam.example", reason="spamvertised")
        st.add("live.test", "2001:db8::1", reason="v6")
        _version, zones = LiveZones(st, ["live.test"])()
    finally:
        st.close()
    zs = ZoneSet(zones)
    engine = native.engine_for(zs)
    v6 = ".".join(reversed("20010db8000000000000000000000001")) + ".live.test"
    answered = 0
    for name in ["7.2.0.192.live.test", "8.2.0.192.live.test", "9.100.51.198.live.test", "spam.example.live.test",
                 "www.spam.example.live.test", "ham.example.live.test", v6]:
        for rtype in ("A", "TXT"):
            p = dns.message.make_query(name, rtype).to_wire()
            got = engine.answer(p)
            if name == v6:
                assert got is None
                continue
            assert got is not None and got == answer_fast(zs, p, "127.0.0.1"), name
            answered += 1
    assert answered == 12
    listed = engine.answer(dns.message.make_query("7.2.0.192.live.test", "A").to_wire())
    assert listed is not None
    assert [rd.to_text() for rrset in dns.message.from_wire(listed).answer for rd in rrset] == ["127.0.0.4"]


def test_ip4tset_zone(tmp_path: Path) -> None:
    """ip4tset: single addresses sharing the first `:` value."""
    (tmp_path / "tset.zone").write_text(":127.0.0.3:Listed $\n10.0.0.1\n10.0.0.3\n192.0.2.200\n10.0.0.2\n")
    zs = build_zoneset([ZoneSpec.parse("tset.test:ip4tset:tset.zone")], Limits(), workdir=str(tmp_path)).zoneset
    engine = native.engine_for(zs)
    hits = 0
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "192.0.2.200", "0.0.0.0", "255.255.255.255"]:
        for rtype in ("A", "TXT"):
            p = dns.message.make_query(".".join(reversed(ip.split("."))) + ".tset.test", rtype).to_wire()
            got = engine.answer(p)
            assert got is not None and got == answer_fast(zs, p, "127.0.0.1")
            hits += bool(dns.message.from_wire(got).answer)
    assert hits == 8
