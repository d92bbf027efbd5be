"""Reloads built in a forked child process: same answers as an in-process load, atomic swaps under
load, failed builds keep the old data, and the UDP side (receive buffer, answering thread) around it."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
import time
from pathlib import Path

import dns.asyncquery
import dns.message
import pytest

from dnsbl.test_differential import FIXTURE_SPECS, fixture_questions
from relayguard.dnsbl.answer import Limits
from relayguard.dnsbl.handover import BuildFailed, build_in_child
from relayguard.dnsbl.server import RCVBUF, Catalog, DnsblServer
from relayguard.dnsbl.zonespec import ZoneSpec, build_zoneset, load_checked

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dnsbl"


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    for f in os.listdir(FIXTURES):
        shutil.copy(FIXTURES / f, tmp_path / f)
    return tmp_path


def test_every_dataset_type_built_in_a_child_answers_as_one_loaded_here(datadir: Path) -> None:
    specs = [ZoneSpec.parse(s) for s in FIXTURE_SPECS] + [ZoneSpec.parse(":acl:acl.zone")]
    here = build_zoneset(specs, Limits(), workdir=str(datadir))
    fresh = {}
    for key in here.datasets:
        built = build_in_child(functools.partial(load_checked, key, Limits()))
        fresh[key] = built.value
        assert built.child_peak_kib > 0
    there = build_zoneset(specs, Limits(), workdir=str(datadir), reuse={}, reuse_mtimes={}, fresh=fresh)
    assert all(there.datasets[k] is fresh[k][0] for k in fresh)  # nothing was loaded in this process
    questions = fixture_questions()
    assert len(questions) > 1000
    for name, qtype in questions:
        labels = tuple(name.lower().split("."))
        for peer in ("127.0.0.1", "10.9.9.9", "::1"):
            qt = {"A": 1, "TXT": 16, "ANY": 255, "NS": 2, "SOA": 6}.get(qtype, 1)
            assert here.zoneset.resolve(labels, qt, 1, peer) == there.zoneset.resolve(labels, qt, 1, peer), name


def test_a_failing_build_raises_with_the_childs_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.zone")
    with pytest.raises(BuildFailed, match=r"missing\.zone"):
        build_in_child(functools.partial(load_checked, ("ip4set", (missing,)), Limits()))

    def die() -> None:
        os._exit(9)  # a child killed mid-build (out of memory, a signal) leaves nothing to map

    with pytest.raises(BuildFailed):
        build_in_child(die)


def _catalog(datadir: Path) -> Catalog:
    cat = Catalog([ZoneSpec.parse("bl.test:ip4set:big.zone")], Limits(), workdir=str(datadir))
    return cat


def _write(path: Path, code: int, n: int = 20000) -> None:
    """n addresses, all listed with 127.0.0.<code>; published with a rename, as an operator would."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(f"$SOA 60 ns.bl.test hm.bl.test {code} 60 60 600 30\n:{code}:listed\n")
        for i in range(n):
            f.write(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
    os.utime(tmp, (1_000_000_000 + code, 1_000_000_000 + code))
    tmp.replace(path)


async def test_reload_in_a_child_swaps_atomically_under_queries(tmp_path: Path) -> None:
    _write(tmp_path / "big.zone", 2)
    cat = _catalog(tmp_path)
    assert cat.fork_builds
    cat.load()
    srv = DnsblServer(cat, [("127.0.0.1", 0)], check_interval=0)
    await srv.start()
    host, port = srv.bound[0]
    try:
        seen: set[str] = set()
        stop = asyncio.Event()

        async def ask() -> None:
            i = 0
            while not stop.is_set():
                i = (i + 7919) % 20000
                q = dns.message.make_query(f"{i & 255}.{i >> 8 & 255}.{i >> 16 & 255}.10.bl.test", "A")
                r = await dns.asyncquery.udp(q, host, port=port, timeout=2)
                # every answer is wholly the old data or wholly the new
                assert [rd.to_text() for rr in r.answer for rd in rr] in (["127.0.0.2"], ["127.0.0.3"])
                seen.add(r.answer[0][0].to_text())

        task = asyncio.create_task(ask())
        await asyncio.sleep(0.2)
        _write(tmp_path / "big.zone", 3)
        srv.request_reload()
        for _ in range(200):
            if cat.reloads:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        stop.set()
        await task
        assert cat.reloads == 1
        assert seen == {"127.0.0.2", "127.0.0.3"}
        r = await dns.asyncquery.udp(dns.message.make_query("bl.test", "SOA"), host, port=port, timeout=2)
        assert r.answer[0][0].serial == 3
    finally:
        await srv.stop()


async def test_a_failed_build_in_the_child_keeps_the_old_data(tmp_path: Path) -> None:
    _write(tmp_path / "big.zone", 2, n=100)
    cat = _catalog(tmp_path)
    cat.load()
    old = cat.zoneset
    (tmp_path / "big.zone").unlink()
    (tmp_path / "big.zone").mkdir()  # unreadable as a file: the child fails
    cat.loaded.files[str(tmp_path / "big.zone")] = 0.0  # type: ignore[union-attr]
    with pytest.raises(BuildFailed):
        cat.reload_files()
    assert cat.zoneset is old and cat.reloads == 0
    assert old.resolve(("1", "0", "0", "10", "bl", "test"), 1, 1).answer[0].rdata == bytes((127, 0, 0, 2))


def test_reload_without_fork_still_works(tmp_path: Path) -> None:
    _write(tmp_path / "big.zone", 2, n=100)
    cat = _catalog(tmp_path)
    cat.fork_builds = False
    cat.load()
    _write(tmp_path / "big.zone", 4, n=100)
    assert cat.reload_files() == 1
    assert cat.zoneset.resolve(("1", "0", "0", "10", "bl", "test"), 1, 1).answer[0].rdata == bytes((127, 0, 0, 4))


async def test_udp_socket_buffer_and_answering_thread(tmp_path: Path) -> None:
    _write(tmp_path / "big.zone", 2, n=100)
    cat = _catalog(tmp_path)
    cat.load()
    srv = DnsblServer(cat, [("127.0.0.1", 0)], check_interval=0)
    await srv.start()
    ul = srv.udp[0]
    try:
        if os.geteuid() == 0:  # SO_RCVBUFFORCE goes past net.core.rmem_max (the kernel doubles the value)
            assert ul.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 2 * RCVBUF
        assert ul.thread.is_alive()
        host, port = srv.bound[0]
        r = await dns.asyncquery.udp(dns.message.make_query("1.0.0.10.bl.test", "A"), host, port=port, timeout=2)
        assert r.answer[0][0].to_text() == "127.0.0.2"
    finally:
        await srv.stop()
    assert not ul.thread.is_alive()


def test_a_build_past_its_time_is_killed() -> None:
    def hang() -> None:
        time.sleep(60)

    # had the child not been killed, hang() would return and the build succeed: no BuildFailed
    with pytest.raises(BuildFailed, match="killed"):
        build_in_child(hang, timeout=0.5)


def test_a_name_table_is_refused_under_another_hash_secret(tmp_path: Path) -> None:
    """Names are ordered by str hash: a table only makes sense where the hash secret is the same (a fork)."""
    import pickle
    import subprocess
    import sys

    from relayguard.dnsbl.dnset import NameTable

    table = NameTable({"spam.example": 2, "ham.example": 3})
    assert pickle.loads(pickle.dumps(table, protocol=5)).get("spam.example") == 2
    (tmp_path / "t.pickle").write_bytes(pickle.dumps(table, protocol=5))
    code = "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())"
    seed = "54321" if os.environ.get("PYTHONHASHSEED") == "12345" else "12345"  # not ours, whatever ours is
    env = {**os.environ, "PYTHONHASHSEED": seed}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t.pickle")], capture_output=True, text=True,
                       env=env)
    assert r.returncode != 0 and "hash secret" in r.stderr
