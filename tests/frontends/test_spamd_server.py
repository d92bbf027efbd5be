"""The spamd front end with the real `spamc`, plus the legacy RSPAMC/1.3 line protocol on the same port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from forced_action_check import ForcedAction

from relayguard.config.load import load_config_text
from relayguard.frontends.listen import bound_port, open_stream_server
from relayguard.frontends.scan import Scanner
from relayguard.frontends.settings import FailMode, SpamdSettings
from relayguard.frontends.settings import ListenAddress as LA
from relayguard.frontends.spamd_server import SpamdService
from relayguard.message.facts import MessageFacts

pytestmark = pytest.mark.peer

HAM = (
    b"From: a@isp.example\r\nTo: b@example.org\r\nSubject: lunch\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <1@isp.example>\r\n\r\nsee you at noon\r\n"
)
SPAM = HAM.replace(b"Subject: lunch", b"Subject: offer\r\nX-Test-Action: add header")


def make_scanner(tmp: Path) -> Scanner:
    from relayguard.app.build import build_pipeline

    settings = load_config_text(f'[storage]\ndata_dir = "{tmp}"\n')
    return Scanner(settings, build_pipeline(settings, [ForcedAction()]))


class BrokenPipeline:
    checks = ()

    async def process(self, facts: MessageFacts) -> object:
        raise ConnectionError("redis://secret-host down")

    async def check(self, facts: MessageFacts) -> object:
        raise ConnectionError("redis://secret-host down")


async def serve(service: SpamdService) -> tuple[asyncio.AbstractServer, int]:
    srv = await open_stream_server(LA(host="127.0.0.1", port=0), service.handle)
    return srv, bound_port(srv)


@pytest.fixture
async def spamd(tmp_path: Path) -> AsyncIterator[int]:
    service = SpamdService(make_scanner(tmp_path), SpamdSettings())
    srv, port = await serve(service)
    yield port
    srv.close()
    await srv.wait_closed()


async def spamc(port: int, *args: str, data: bytes = HAM) -> tuple[int, bytes]:
    p = await asyncio.create_subprocess_exec(
        "spamc", "-d", "127.0.0.1", "-p", str(port), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(p.communicate(data), 60)
    assert p.returncode is not None
    return p.returncode, out


async def test_spamc_commands(spamd: int) -> None:
    rc, out = await spamc(spamd, "-c")  # CHECK: score/threshold, exit 0 for ham
    assert rc == 0 and out.strip().endswith(b"/6.0")
    rc, out = await spamc(spamd, "-c", data=SPAM)
    assert rc == 1  # spam
    rc, out = await spamc(spamd, "-y", data=SPAM)  # SYMBOLS
    assert b"TEST_FORCED_ACTION" in out
    rc, out = await spamc(spamd, "-R", data=SPAM)  # REPORT
    assert b"Content analysis details" in out and b"TEST_FORCED_ACTION" in out
    rc, out = await spamc(spamd, "-r")  # REPORT_IFSPAM on ham: nothing
    assert out == b""
    rc, out = await spamc(spamd, "-r", data=SPAM)
    assert b"Content analysis details" in out
    rc, out = await spamc(spamd, data=SPAM)  # PROCESS
    assert out.startswith(b"X-Spamd-Result: default: True") and out.endswith(b"see you at noon\r\n")
    assert b"X-Spam-Flag: YES" in out
    rc, out = await spamc(spamd, "--headers", data=SPAM)  # HEADERS: spamc puts the original body back
    assert b"X-Spam-Flag: YES" in out and out.count(b"see you at noon") == 1
    rc, out = await spamc(spamd, "-K")  # PING
    assert rc == 0 and b"SPAMD/1.5 0" in out
    # (Debian's spamc is built without zlib, so `Compress: zlib` is covered in tests/protocols only.)
    rc, out = await spamc(spamd, "-L", "spam")  # TELL: learn into the classifier
    assert rc == 0 and b"Message successfully un/learned" in out
    rc, out = await spamc(spamd, "-L", "forget")
    assert b"successfully" in out


@pytest.mark.parametrize("mode", [FailMode.ACCEPT, FailMode.TEMPFAIL])
async def test_fail_modes_with_spamc(mode: FailMode) -> None:
    settings = load_config_text("")
    service = SpamdService(Scanner(settings, BrokenPipeline()), SpamdSettings(fail_mode=mode))  # type: ignore[arg-type]
    srv, port = await serve(service)
    try:
        rc, out = await spamc(port, "-x", "-c")  # -x: no safe fallback, show the server's answer
        if mode is FailMode.ACCEPT:
            assert rc == 0 and out.strip() == b"0.0/6.0"
            rc, out = await spamc(port, "-x")  # PROCESS returns the message unchanged
            assert out == HAM
        else:
            # We answer EX_TEMPFAIL (75); spamc -x turns any server error into its own EX_IOERR (74):
            # neither ham (0) nor spam (1), so the MTA's pipe defers and keeps the message.
            assert rc == 74
        rc, out = await spamc(port)  # default spamc: safe fallback always hands the message back
        assert out == HAM
        assert b"secret" not in out
    finally:
        srv.close()
        await srv.wait_closed()


async def test_rspamc_legacy_on_the_same_port(spamd: int) -> None:
    for body, flag in ((HAM, b"False"), (SPAM, b"True")):
        reader, writer = await asyncio.open_connection("127.0.0.1", spamd)
        writer.write(
            b"CHECK RSPAMC/1.3\r\nContent-length: %d\r\nQueue-Id: 1ab-00\r\nFrom: <a@isp.example>\r\n"
            b"Recipient-Number: 1\r\nRcpt: <b@example.org>\r\nHelo: pc\r\nIP: 198.18.0.1\r\n\r\n" % len(body) + body
        )
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(), 30)  # the server closes after the reply (Exim waits for it)
        writer.close()
        lines = reply.split(b"\r\n")
        assert lines[0] == b"RSPAMD/1.3 0 EX_OK"
        assert lines[1].startswith(b"Metric: default; " + flag + b"; ")
        assert lines[2].startswith(b"Action: ")


async def test_garbage_gets_a_protocol_error_not_a_crash(spamd: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", spamd)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    assert reply == b"SPAMD/1.0 76 Bad header line: (protocol error)\r\n"
