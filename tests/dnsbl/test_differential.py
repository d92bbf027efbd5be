"""relayguard against the real rbldnsd: same files, same questions, same rcode/AA/A/TXT/TTL/authority.

Deviations we chose are listed in docs/dnsbl.md; none of them shows up in these questions.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Iterator

import pytest

from dnsbl import gen_data
from dnsbl.oracle import Rbldnsd, compare, ours, world_readable_dir

pytestmark = [pytest.mark.peer]

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "dnsbl")

FIXTURE_SPECS = [
    "set.test:ip4set:ip4set.zone", "base.test:ip4set:ip4set-base.zone", "tset.test:ip4tset:ip4tset.zone",
    "trie.test:ip4trie:ip4trie.zone", "six.test:ip6trie:ip6trie.zone", "sixt.test:ip6tset:ip6tset.zone",
    "dn.test:dnset:dnset.zone", "gen.test:generic:generic.zone", "comb.test:combined:combined.zone",
]


@pytest.fixture(scope="module")
def workdir() -> Iterator[str]:
    d = world_readable_dir()
    for f in os.listdir(FIXTURES):
        shutil.copy(os.path.join(FIXTURES, f), d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _rev4(ip: str) -> str:
    return ".".join(reversed(ip.split(".")))


def _rev6(ip: str) -> str:
    return ".".join(reversed(ipaddress.IPv6Address(ip).exploded.replace(":", "")))


def fixture_questions() -> list[tuple[str, str]]:
    qs: list[tuple[str, str]] = []
    v4 = [f"{a}.{b}.{c}.{d}" for a, b, c, d in [
        (10, 1, 0, 1), (10, 1, 1, 9), (10, 1, 2, 3), (10, 1, 3, 0), (10, 1, 3, 7), (10, 16, 0, 1),
        (10, 31, 255, 255), (10, 32, 0, 0), (10, 48, 3, 3), (10, 64, 1, 1), (11, 0, 0, 1), (11, 1, 2, 3),
        (11, 2, 3, 4), (11, 2, 3, 5), (11, 2, 3, 20), (12, 0, 0, 1), (13, 0, 0, 249), (13, 0, 0, 250),
        (13, 0, 1, 7), (13, 0, 2, 5), (13, 0, 2, 6), (14, 0, 0, 1), (14, 0, 0, 9), (14, 1, 0, 1),
        (30, 0, 0, 1), (30, 0, 0, 2), (30, 0, 0, 3), (30, 0, 1, 0), (30, 0, 0, 4), (30, 0, 0, 5),
        (40, 1, 2, 3), (40, 1, 2, 130), (40, 1, 2, 200), (40, 1, 3, 3), (40, 9, 9, 9), (40, 2, 0, 1),
        (40, 3, 0, 1), (40, 4, 1, 1), (40, 5, 1, 1), (41, 0, 0, 7), (50, 0, 0, 1), (50, 0, 0, 2),
        (50, 0, 1, 9), (9, 9, 9, 9)]]
    v4 += [f"10.65.0.{i}" for i in range(1, 10)] + [f"20.0.0.{i}" for i in range(1, 7)]
    zones4 = ["set.test", "base.test", "tset.test", "trie.test", "comb.test", "open.comb.test",
              "relay.comb.test", "names.comb.test"]
    for ip in v4:
        for z in zones4:
            for t in ("A", "TXT", "ANY", "MX"):
                qs.append((f"{_rev4(ip)}.{z}", t))
    for ip6 in ["2001:db8:a000::1", "2001:db8:afff::1", "2001:db8:b000::1", "2001:db8:beef:1::5",
                "2001:db8:42::dead", "2001:db8:42::1", "2001:db8:42::2", "::1", "2001:db8:1:1::bad",
                "2001:db8:1:1::1", "2001:db8:1:2::7", "2001:db8:1:3::1"]:
        for z in ["six.test", "sixt.test"]:
            for t in ("A", "TXT", "ANY"):
                qs.append((f"{_rev6(ip6)}.{z}", t))
    for n in ["spam.example", "x.spam.example", "wild.example", "a.wild.example", "b.a.wild.example",
              "ok.wild.example", "both.example", "x.both.example", "ok.both.example", "deep.a.b.c.example",
              "MIXEDcase.example", "multi.example", "other.example", "example", "bad.example"]:
        for z in ["dn.test", "names.comb.test", "comb.test"]:
            for t in ("A", "TXT", "ANY", "AAAA"):
                qs.append((f"{n}.{z}", t))
    for pre in ["", "www.", "mail.", "a.b.c.", "b.c.", "c.", "nope.", "open.", "relay.", "www.open.", "names.",
                "www.names."]:
        for z in ["gen.test", "comb.test", "set.test", "dn.test"]:
            for t in ("A", "TXT", "ANY", "MX", "NS", "SOA", "AAAA"):
                qs.append((pre + z, t))
    qs += [("1.0.1.10.set.test.other", "A"), ("foo.invalid", "A"), ("0.1.10.set.test", "A"),
           ("1.0.1.010.set.test", "A"), ("1.0.1.10.1.set.test", "A"), ("1.0.1.10.SET.Test", "TXT")]
    return qs


@pytest.mark.parametrize("lazy", [True, False], ids=["-a", "-A"])
def test_fixture_files_answer_like_rbldnsd(workdir: str, lazy: bool) -> None:
    zs = ours(FIXTURE_SPECS, workdir, lazy=lazy)
    with Rbldnsd(workdir, FIXTURE_SPECS, opts=["-a" if lazy else "-A"]) as server:
        total, mism, _ = compare(zs, server, fixture_questions())
    assert total > 2000
    assert mism == []


def test_generated_data_answers_like_rbldnsd(workdir: str) -> None:
    specs = gen_data.write_all(workdir, seed=2026, n=1500)
    zs = ours(specs, workdir)
    with Rbldnsd(workdir, specs, opts=["-a", "-t", "2100:60:86400"]) as server:
        total, mism, truncated = compare(zs, server, gen_data.questions(2026, 6000))
    assert total == 6000
    assert mism[:5] == []
    assert truncated < 50


ACL = """# relayguard fixture: clients on loopback addresses get different treatment
127.0.0.2 :refuse
127.0.0.3 :empty
127.0.0.4 :127.0.0.9:Everything is listed for $
127.0.0.5 :ignore
127.0.0.6/31 :refuse
!127.0.0.7
"""


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5",
                                    "127.0.0.6", "127.0.0.7"])
def test_acl_answers_like_rbldnsd(workdir: str, source: str) -> None:
    with open(os.path.join(workdir, "acl.zone"), "w") as f:
        f.write(ACL)
    specs = ["set.test:ip4set:ip4set.zone", "set.test:acl:acl.zone", "gen.test:generic:generic.zone",
             "gen.test:acl:acl.zone"]
    zs = ours(specs, workdir)
    qs = [(f"{_rev4(ip)}.set.test", t) for ip in ("10.1.0.1", "10.65.0.3", "9.9.9.9") for t in ("A", "TXT")]
    qs += [("www.gen.test", "A"), ("gen.test", "TXT"), ("set.test", "SOA"), ("nothing.gen.test", "A")]
    with Rbldnsd(workdir, specs) as server:
        total, mism, _ = compare(zs, server, qs, source=source)
    assert total == len(qs)
    assert mism == []
