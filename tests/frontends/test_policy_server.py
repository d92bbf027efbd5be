from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relayguard.core.clock import ManualClock
from relayguard.core.netset import NetSet
from relayguard.frontends.decider import AlwaysDunno, DecisionResult, FirstAnswer, RateLimitDecider
from relayguard.frontends.listen import bound_port, open_server
from relayguard.frontends.policy_server import PolicyService
from relayguard.frontends.settings import FailMode, ListenAddress
from relayguard.protocols.policy import (
    DUNNO,
    PolicyAction,
    PolicyReply,
    PolicyRequest,
    encode_request,
    parse_reply,
)


def rcpt(login: str = "", ip: str = "198.18.0.1", instance: str = "i1", state: str = "RCPT") -> bytes:
    return encode_request(
        {
            "request": "smtpd_access_policy",
            "protocol_state": state,
            "client_address": ip,
            "sasl_username": login,
            "instance": instance,
        }
    )


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> PolicyReply:
    writer.write(data)
    await writer.drain()
    return parse_reply(await asyncio.wait_for(reader.readuntil(b"\n\n"), 5))


@pytest.fixture
async def server() -> AsyncIterator[tuple[PolicyService, int]]:
    clock = ManualClock(1000.0)
    service = PolicyService(RateLimitDecider(limit=3, window=60, exempt=NetSet(["198.19.255.0/24"]), clock=clock))
    srv = await open_server(ListenAddress(host="127.0.0.1", port=0), service.protocol)
    service.clock = clock  # type: ignore[attr-defined]
    yield service, bound_port(srv)
    srv.close()
    for c in list(service.connections):
        c.close()
    await srv.wait_closed()


def test_rate_limit_rule_unit() -> None:
    clock = ManualClock(0.0)
    d = RateLimitDecider(limit=2, window=10, clock=clock)

    def r(**a: str) -> PolicyRequest:
        return PolicyRequest({"request": "smtpd_access_policy", "protocol_state": "RCPT", **a})

    assert d.decide(r(sasl_username="a")) is DUNNO
    assert d.decide(r(sasl_username="a")) is DUNNO
    over = d.decide(r(sasl_username="a"))
    assert isinstance(over, PolicyReply) and over.action is PolicyAction.DEFER_IF_PERMIT
    assert "for a," in over.text
    assert d.decide(r(sasl_username="b")) is DUNNO  # another customer
    assert d.decide(r(client_address="10.0.0.1")) is DUNNO  # unauthenticated: keyed by address
    assert d.decide(r(sasl_username="a", protocol_state="MAIL")) is DUNNO  # only RCPT counts
    clock.advance(10)
    assert d.decide(r(sasl_username="a")) is DUNNO  # a new window
    assert d.count("a") == 1


def test_rate_limit_table_is_bounded() -> None:
    clock = ManualClock(0.0)
    d = RateLimitDecider(limit=5, window=100, clock=clock, max_keys=100)
    for i in range(1000):
        clock.advance(0.01)
        d.decide(PolicyRequest({"protocol_state": "RCPT", "sasl_username": f"u{i}"}))
    assert len(d._windows) <= 100


async def test_reused_connection_rate_limit_and_exempt(server: tuple[PolicyService, int]) -> None:
    service, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    actions = [(await ask(reader, writer, rcpt("cust1", instance=f"m{i}"))).action for i in range(5)]
    assert actions == [PolicyAction.DUNNO] * 3 + [PolicyAction.DEFER_IF_PERMIT] * 2
    # exempt network: never limited, even for the same login
    for _ in range(5):
        assert (await ask(reader, writer, rcpt("cust1", ip="198.19.255.7"))).action is PolicyAction.DUNNO
    # pipelined requests are answered in order
    writer.write(rcpt("p1") + rcpt("p1") + rcpt("p1") + rcpt("p1"))
    await writer.drain()
    got = [parse_reply(await reader.readuntil(b"\n\n")).action for _ in range(4)]
    assert got == [PolicyAction.DUNNO] * 3 + [PolicyAction.DEFER_IF_PERMIT]
    writer.close()
    await writer.wait_closed()
    assert service.requests == 14


async def test_garbage_closes_connection_without_text(server: tuple[PolicyService, int]) -> None:
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"this is not a policy request\n\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing echoed
    writer.close()


async def test_oversized_request_is_refused(server: tuple[PolicyService, int]) -> None:
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"request=smtpd_access_policy\nx=" + b"a" * 200_000)
    with pytest.raises((ConnectionError, OSError)):
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"more")
        await writer.drain()
        if await asyncio.wait_for(reader.read(), 5) == b"":
            raise ConnectionResetError
    writer.close()


class Broken:
    def decide(self, request: PolicyRequest) -> DecisionResult:
        raise RuntimeError("storage is down: secret detail")


class SlowBroken:
    def decide(self, request: PolicyRequest) -> DecisionResult:
        async def fail() -> PolicyReply:
            await asyncio.sleep(0.01)
            raise ConnectionError("redis gone")

        return fail()


class SlowHold:
    def decide(self, request: PolicyRequest) -> DecisionResult:
        async def hold() -> PolicyReply:
            await asyncio.sleep(0.01)
            return PolicyReply(PolicyAction.HOLD, "suspicious burst")

        return hold()


@pytest.mark.parametrize("decider", [Broken(), SlowBroken()])
@pytest.mark.parametrize("mode", [FailMode.ACCEPT, FailMode.TEMPFAIL])
async def test_fail_modes(decider: object, mode: FailMode) -> None:
    service = PolicyService(decider, mode)  # type: ignore[arg-type]
    srv = await open_server(ListenAddress(host="127.0.0.1", port=0), service.protocol)
    reader, writer = await asyncio.open_connection("127.0.0.1", bound_port(srv))
    reply = await ask(reader, writer, rcpt("x"))
    expected = PolicyAction.DUNNO if mode is FailMode.ACCEPT else PolicyAction.DEFER_IF_PERMIT
    assert reply.action is expected
    assert "secret" not in reply.text and "redis" not in reply.text
    assert reply.action is not PolicyAction.REJECT
    # the connection stays usable after a failure
    assert (await ask(reader, writer, rcpt("y"))).action is expected
    writer.close()
    srv.close()
    for c in list(service.connections):
        c.close()
    await srv.wait_closed()


async def test_async_decider_chain_and_unix_socket(tmp_path: Path) -> None:
    service = PolicyService(FirstAnswer([AlwaysDunno(), SlowHold()]))
    path = str(tmp_path / "policy.sock")
    srv = await open_server(ListenAddress(path=path), service.protocol)
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(rcpt("a") + rcpt("b"))
    await writer.drain()
    for _ in range(2):
        r = parse_reply(await asyncio.wait_for(reader.readuntil(b"\n\n"), 5))
        assert (r.action, r.text) == (PolicyAction.HOLD, "suspicious burst")
    writer.close()
    srv.close()
    for c in list(service.connections):
        c.close()
    await srv.wait_closed()


async def test_half_close_still_gets_the_async_answer() -> None:
    service = PolicyService(SlowHold())
    srv = await open_server(ListenAddress(host="127.0.0.1", port=0), service.protocol)
    reader, writer = await asyncio.open_connection("127.0.0.1", bound_port(srv))
    writer.write(rcpt("a"))
    writer.write_eof()  # a one-shot client (nc, a script) closes its side right after the request
    data = await asyncio.wait_for(reader.read(), 5)
    assert parse_reply(data).action is PolicyAction.HOLD
    writer.close()
    srv.close()
    await srv.wait_closed()
