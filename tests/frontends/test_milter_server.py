"""The milter front end with the real `miltertest` (libmilter's test driver), fail modes and hostile input."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from forced_action_check import ForcedAction
from test_spamd_server import BrokenPipeline

from relayguard.config.load import load_config_text
from relayguard.frontends.listen import bound_port, open_stream_server
from relayguard.frontends.milter_server import MilterService
from relayguard.frontends.scan import Scanner
from relayguard.frontends.settings import FailMode, ListenAddress, MilterSettings
from relayguard.protocols import milter as m

pytestmark = pytest.mark.peer

LUA = """
conn = mt.connect("inet:{port}@127.0.0.1")
if conn == nil then error("connect") end
if mt.negotiate(conn, nil, nil, nil) ~= nil then error("negotiate") end
mt.macro(conn, SMFIC_CONNECT, "j", "relay.test", "{{client_addr}}", "198.18.0.9")
if mt.conninfo(conn, "host9.example", "198.18.0.9") ~= nil then error("conninfo") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("conninfo reply") end
mt.helo(conn, "desktop")
mt.macro(conn, SMFIC_MAIL, "i", "QID1", "{{auth_authen}}", "cust9@isp.example")
mt.mailfrom(conn, "<cust9@isp.example>")
mt.rcptto(conn, "<x@example.org>")
mt.header(conn, "From", "cust9@isp.example")
mt.header(conn, "Subject", "hi")
mt.header(conn, "X-Spam-Flag", "YES")
{extra}
mt.eoh(conn)
mt.bodystring(conn, "hello there\\r\\n")
mt.eom(conn)
{checks}
mt.disconnect(conn)
print("OK")
"""

ACCEPTED = """
if not mt.eom_check(conn, MT_HDRADD, "X-Spam-Status") then error("no X-Spam-Status") end
if not mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results") then error("no A-R") end
if not mt.eom_check(conn, MT_HDRCHANGE, "X-Spam-Flag") then error("forged X-Spam-Flag not removed") end
if mt.getreply(conn) ~= SMFIR_ACCEPT then error("not accepted") end
"""


def make_scanner(tmp: Path) -> Scanner:
    from relayguard.app.build import build_pipeline

    settings = load_config_text(f'[storage]\ndata_dir = "{tmp}"\n')
    return Scanner(settings, build_pipeline(settings, [ForcedAction()]))


async def serve(service: MilterService) -> tuple[asyncio.AbstractServer, int]:
    srv = await open_stream_server(ListenAddress(host="127.0.0.1", port=0), service.handle)
    return srv, bound_port(srv)


@pytest.fixture
async def milter(tmp_path: Path) -> AsyncIterator[tuple[MilterService, int]]:
    service = MilterService(make_scanner(tmp_path), MilterSettings())
    srv, port = await serve(service)
    yield service, port
    service.close_all()
    srv.close()
    await srv.wait_closed()


async def miltertest(tmp: Path, port: int, extra: str, checks: str) -> tuple[int, str]:
    script = tmp / "t.lua"
    script.write_text(LUA.format(port=port, extra=extra, checks=checks))
    p = await asyncio.create_subprocess_exec(
        "miltertest", "-s", str(script), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(p.communicate(), 60)
    assert p.returncode is not None
    return p.returncode, out.decode()


@pytest.mark.parametrize(
    ("extra", "checks"),
    [
        ("", ACCEPTED),
        ('mt.header(conn, "X-Test-Action", "reject")',
         'if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("not rejected") end'),
        ('mt.header(conn, "X-Test-Action", "soft reject")',
         'if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("not deferred") end'),
        ('mt.header(conn, "X-Test-Action", "quarantine")',
         'if not mt.eom_check(conn, MT_QUARANTINE) then error("no quarantine") end\n'
         'if mt.getreply(conn) ~= SMFIR_ACCEPT then error("not accepted") end'),
        ('mt.header(conn, "X-Test-Action", "discard")',
         'if mt.getreply(conn) ~= SMFIR_DISCARD then error("not discarded") end'),
        ('mt.header(conn, "X-Test-Action", "rewrite subject")',
         'if not mt.eom_check(conn, MT_HDRCHANGE, "Subject", "***SPAM*** hi") then error("subject") end'),
    ],
)  # fmt: skip
async def test_miltertest_actions(milter: tuple[MilterService, int], tmp_path: Path, extra: str, checks: str) -> None:
    _, port = milter
    rc, out = await miltertest(tmp_path, port, extra, checks)
    assert rc == 0 and "OK" in out, out


async def exchange(port: int, data: bytes) -> list[tuple[str, bytes]]:
    """Send the packets, read replies up to the final one of the message (or the server closing)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    mta = m.MtaSide()
    writer.write(mta.optneg() + data)
    await writer.drain()
    got: list[tuple[str, bytes]] = []
    while not got or got[-1][0] not in "artdy":
        chunk = await asyncio.wait_for(reader.read(65536), 30)
        if not chunk:
            break
        got += mta.feed(chunk)
    writer.close()
    return got


MESSAGE = (
    m.MtaSide.connect("h", "198.18.0.1") + m.MtaSide.mail("<a@isp.example>") + m.MtaSide.rcpt("<b@x.example>")
    + m.MtaSide.header("Subject", "x") + m.MtaSide.simple("N") + m.MtaSide.simple("B", b"hi\r\n")
    + m.MtaSide.simple("E")
)  # fmt: skip


@pytest.mark.parametrize("mode", [FailMode.TEMPFAIL, FailMode.ACCEPT])
async def test_fail_modes(mode: FailMode) -> None:
    service = MilterService(Scanner(load_config_text(""), BrokenPipeline()), MilterSettings(fail_mode=mode))  # type: ignore[arg-type]
    srv, port = await serve(service)
    try:
        got = await exchange(port, MESSAGE)
        final = got[-1]
        if mode is FailMode.TEMPFAIL:
            assert final == ("y", b"451 4.3.0 Temporary failure in message scanning, try again later\0")
        else:
            assert final == ("a", b"")
        assert all(b"secret" not in d for _, d in got)
    finally:
        service.close_all()
        srv.close()
        await srv.wait_closed()


async def test_hostile_packets_close_only_that_connection(milter: tuple[MilterService, int]) -> None:
    service, port = milter
    for junk in (struct.pack(">I", 1 << 30) + b"O", b"\0\0\0\0", m.packet(b"Z"), b"\xff" * 10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(m.MtaSide().optneg() + junk)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 30)  # negotiation reply, then closed
        assert data.startswith(struct.pack(">I", len(data) - 4)[:1]) or data == b""
        writer.close()
    got = await exchange(port, MESSAGE)  # the server still works
    assert got[-1] == ("a", b"")
    assert service.inflight.count == 0
