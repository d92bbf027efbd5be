from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from peers import eventually
from relayguard.core.netset import parse_ip
from relayguard.outbound.identity import LeaseHistory
from relayguard.outbound.leasefeed import LeaseFeed, LineDecoder

START = b"Acct-Status-Type=Start User-Name=cust7 Framed-IP-Address=203.0.113.7 Event-Timestamp=100\n"


def holder(h: LeaseHistory, ip: str, t: float) -> str | None:
    a = parse_ip(ip)
    assert a is not None
    r = h.lookup(a, t)
    return r[0] if r else None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet="abc=\r", max_size=30), max_size=10),
    st.lists(st.integers(1, 50), min_size=1, max_size=20),
)
def test_decoder_is_independent_of_chunking(lines: list[str], cuts: list[int]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    whole = LineDecoder().feed(data)
    dec = LineDecoder()
    got: list[str] = []
    pos = 0
    for c in cuts * (len(data) // max(1, sum(cuts)) + 1):
        if pos >= len(data):
            break
        got += dec.feed(data[pos : pos + c])
        pos += c
    got += dec.feed(data[pos:])
    assert got == whole == [line.rstrip("\r") for line in lines]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_decoder_and_feed_survive_any_bytes(data: bytes) -> None:
    dec = LineDecoder(max_line=100)
    feed = LeaseFeed(LeaseHistory())
    feed.apply(dec.feed(data) + dec.close(), "fuzz")
    assert all(len(x) <= 100 for x in dec.feed(b""))


def test_overlong_lines_are_dropped_whole() -> None:
    dec = LineDecoder(max_line=10)
    assert dec.feed(b"x" * 25) == []
    assert dec.feed(b"yyy\nok\n") == ["ok"]
    assert dec.overlong == 1


async def test_tcp_feed_on_loopback() -> None:
    h = LeaseHistory()
    feed = LeaseFeed(h)
    server = await feed.serve_tcp("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(START[:30])
    await w.drain()
    w.write(START[30:] + b"garbage line\n")
    w.write(b"Acct-Status-Type=Stop User-Name=cust7 Framed-IP-Address=203.0.113.7 Event-Timestamp=200")
    await w.drain()
    w.close()
    await w.wait_closed()
    for _ in range(200):  # bounded wait for the server to process the closed connection
        if feed.stats.records == 2:
            break
        await asyncio.sleep(0.01)
    server.close()
    await server.wait_closed()
    assert feed.stats.records == 2 and feed.stats.errors == 1
    assert holder(h, "203.0.113.7", 150) == "cust7"
    assert holder(h, "203.0.113.7", 250) is None


async def test_unix_feed(tmp_path: Path) -> None:
    h = LeaseHistory()
    feed = LeaseFeed(h)
    sock = str(tmp_path / "lease.sock")
    server = await feed.serve(f"unix:{sock}")
    _, w = await asyncio.open_unix_connection(sock)
    w.write(START)
    await w.drain()
    w.close()
    await w.wait_closed()
    await eventually(lambda: feed.stats.records == 1)
    server.close()
    await server.wait_closed()
    assert holder(h, "203.0.113.7", 150) == "cust7"


async def test_follow_file_reads_appends_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "radacct.log"
    path.write_bytes(START)
    h = LeaseHistory()
    feed = LeaseFeed(h)
    stop = asyncio.Event()
    task = asyncio.create_task(feed.follow_file(path, interval=0.01, stop=stop))

    async def until(n: int) -> None:
        assert await eventually(lambda: feed.stats.records >= n)

    await until(1)
    with path.open("ab") as fh:
        fh.write(b"Acct-Status-Type=Start User-Name=cust8 Framed-IP-Address=203.0.113.8 Event-Timestamp=100\n")
    await until(2)
    path.unlink()
    path.write_bytes(b"Acct-Status-Type=Start User-Name=cust9 Framed-IP-Address=203.0.113.9 Event-Timestamp=100\n")
    await until(3)
    stop.set()
    await task
    assert [holder(h, f"203.0.113.{i}", 150) for i in (7, 8, 9)] == ["cust7", "cust8", "cust9"]
