"""External verdict checks against the real rspamd and spamd on loopback, plus the failure paths."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peers import free_port, wait_port
from relayguard.checks.api import CheckContext
from relayguard.classifier.external import (
    PeerError,
    RspamdCheck,
    SpamdCheck,
    parse_rspamd_reply,
    parse_spamd_reply,
)
from relayguard.config.schema import Settings
from relayguard.message.parse import parse_message
from relayguard.pipeline import Pipeline

GTUBE = (
    b"From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\nMessage-ID: <g@example.org>\r\n"
    b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\n"
    b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
)
PLAIN = (
    b"From: a@example.org\r\nTo: b@example.net\r\nSubject: lunch\r\nMessage-ID: <h@example.org>\r\n"
    b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nShall we meet at noon?\r\n"
)




def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def spamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("spamd") is None:
        pytest.fail("spamd not installed (Debian package spamassassin)")
    home = tmp_path_factory.mktemp("spamd")
    os.chmod(home, 0o755)
    port = free_port()
    cmd = ["spamd", "-L", "-x", "-H", str(home), "-i", f"127.0.0.1:{port}", "-m", "1", "-s", "stderr"]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]  # spamd refuses to scan as root
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 240.0, proc)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("rspamd") is None:
        pytest.fail("rspamd not installed (Debian package rspamd)")
    work = tmp_path_factory.mktemp("rspamd")
    local = work / "local"
    for d in ("local/local.d", "local/override.d", "run", "db", "log"):
        (work / d).mkdir(parents=True)
    nport, cport, pport, dead = free_port(), free_port(), free_port(), free_port()
    (local / "override.d" / "worker-normal.inc").write_text(f'bind_socket = "127.0.0.1:{nport}";\ncount = 1;\n')
    (local / "override.d" / "worker-controller.inc").write_text(f'bind_socket = "127.0.0.1:{cport}";\n')
    (local / "override.d" / "worker-proxy.inc").write_text(f'bind_socket = "127.0.0.1:{pport}";\n')
    (local / "override.d" / "worker-fuzzy.inc").write_text("count = -1;\n")
    # Nothing may leave the machine: the resolver points at a port where nobody listens.
    (local / "local.d" / "options.inc").write_text(
        f'dns {{ nameserver = ["127.0.0.1:{dead}"]; timeout = 0.1s; retransmits = 1; }}\n'
        # Compiling hyperscan databases takes minutes on a busy 2-core machine; the test needs none.
        "disable_hyperscan = true;\n"
    )
    for mod in ("phishing", "once_received", "rbl", "fuzzy_check", "spf", "dkim", "dmarc", "asn",
                "emails", "neural", "replies", "ratelimit", "greylist", "mx_check", "dcc", "reputation"):
        (local / "local.d" / f"{mod}.conf").write_text("enabled = false;\n")
    (local / "local.d" / "classifier-bayes.conf").write_text("enabled = false;\n")
    proc = subprocess.Popen(
        ["rspamd", "-f", "-i", "-c", "/etc/rspamd/rspamd.conf", "--var", f"LOCAL_CONFDIR={local}",
         "--var", f"RUNDIR={work / 'run'}", "--var", f"DBDIR={work / 'db'}", "--var", f"LOGDIR={work / 'log'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(nport, 240.0, proc)
        yield f"http://127.0.0.1:{nport}"
    finally:
        stop(proc)


def facts(raw: bytes):  # type: ignore[no-untyped-def]
    return parse_message(raw, Settings())


@pytest.mark.peer
async def test_spamd_verdicts(spamd: str) -> None:
    check = SpamdCheck(spamd, timeout=60)
    hits = await check.run(facts(GTUBE), CheckContext())
    assert hits[0].symbol == "SPAMD_SPAM"
    assert hits[0].factor > 100  # GTUBE scores 1000
    assert "GTUBE" in hits[0].options
    hits = await check.run(facts(PLAIN), CheckContext())
    assert hits[0].symbol == "SPAMD_HAM"
    assert hits[0].options[0].startswith("score=")


@pytest.mark.peer
async def test_rspamd_verdicts(rspamd: str) -> None:
    check = RspamdCheck(rspamd, timeout=60)
    hits = await check.run(facts(GTUBE), CheckContext())
    assert hits[0].symbol == "RSPAMD_SPAM"
    assert "action=reject" in hits[0].options
    hits = await check.run(facts(PLAIN), CheckContext())
    assert hits[0].symbol == "RSPAMD_HAM"


async def test_peer_down_gives_fail_symbols() -> None:
    port = free_port()  # nobody listens there
    st = Settings()
    p = Pipeline(st, [RspamdCheck(f"http://127.0.0.1:{port}", timeout=2), SpamdCheck(f"127.0.0.1:{port}", 2)])
    verdict = await p.check(facts(PLAIN))
    assert "RSPAMD_FAIL" in verdict.symbols and "SPAMD_FAIL" in verdict.symbols


async def test_silent_peer_hits_the_time_budget() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        p = Pipeline(Settings(), [SpamdCheck(f"127.0.0.1:{port}", timeout=0.3),
                                  RspamdCheck(f"http://127.0.0.1:{port}", timeout=0.3)])
        t = time.monotonic()
        verdict = await p.check(facts(PLAIN))
        assert "SPAMD_FAIL" in verdict.symbols and "RSPAMD_FAIL" in verdict.symbols
        assert time.monotonic() - t < 10  # generous: only proves the budget, not a timing
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


def test_parse_spamd_reply() -> None:
    r = parse_spamd_reply(b"SPAMD/1.1 0 EX_OK\r\nContent-length: 9\r\nSpam: True ; 15.5 / 5.0\r\n\r\nGTUBE,FOO")
    assert r.is_spam and r.score == 15.5 and r.threshold == 5.0 and r.symbols == ("GTUBE", "FOO")
    with pytest.raises(PeerError):
        parse_spamd_reply(b"SPAMD/1.1 76 EX_PROTOCOL\r\n\r\n")


def test_parse_rspamd_reply() -> None:
    h = parse_rspamd_reply(b'{"score": 3.5, "required_score": 15, "action": "no action", "symbols": {}}')
    assert h.symbol == "RSPAMD_HAM" and h.options[0] == "score=3.5/15"
    with pytest.raises(PeerError):
        parse_rspamd_reply(b'{"action": 1}')


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_spamd_reply(data: bytes) -> None:
    with contextlib.suppress(PeerError):
        parse_spamd_reply(b"SPAMD/1.1 0 EX_OK\r\n" + data)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5) | st.integers(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                    max_leaves=10))
def test_fuzz_rspamd_reply(value: object) -> None:
    import json

    with contextlib.suppress(PeerError):
        parse_rspamd_reply(json.dumps({"score": 1, "action": "reject", "symbols": value}).encode())
    with contextlib.suppress(PeerError):
        parse_rspamd_reply(json.dumps(value).encode())
