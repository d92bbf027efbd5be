"""The Rspamd-compatible HTTP front end with the real `rspamc`, plus bounds, fail modes and metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from forced_action_check import ForcedAction
from test_spamd_server import HAM, SPAM, BrokenPipeline

from relayguard.config.load import load_config_text
from relayguard.core.http_endpoint import UvicornServer
from relayguard.frontends.http_server import HttpService
from relayguard.frontends.scan import Scanner
from relayguard.frontends.settings import FailMode, HttpSettings, ListenAddress

pytestmark = pytest.mark.peer


def make_scanner(tmp: Path) -> Scanner:
    from relayguard.app.build import build_pipeline

    settings = load_config_text(f'[storage]\ndata_dir = "{tmp}"\n')
    return Scanner(settings, build_pipeline(settings, [ForcedAction()]))


async def start(service: HttpService) -> UvicornServer:
    server = UvicornServer(service.app(), ListenAddress(host="127.0.0.1", port=0))
    await server.start()
    return server


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[int]:
    service = HttpService(make_scanner(tmp_path), HttpSettings(max_message_bytes=4096))
    server = await start(service)
    yield server.port
    await server.stop()


async def rspamc(port: int, *args: str, data: bytes = HAM) -> tuple[int, str]:
    p = await asyncio.create_subprocess_exec(
        "rspamc", "-h", f"127.0.0.1:{port}", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(p.communicate(data), 60)
    assert p.returncode is not None
    return p.returncode, out.decode()


async def test_rspamc_check_symbols_and_envelope(http: int) -> None:
    rc, out = await rspamc(http)
    assert rc == 0 and "Action: no action" in out and "Spam: false" in out
    rc, out = await rspamc(http, "-i", "198.18.0.7", "-F", "a@isp.example", "-r", "b@example.org", "-u", "cust7",
                           "--helo", "pc7", "--json", data=SPAM)  # fmt: skip
    reply = json.loads(out[out.index("{") :])
    assert reply["action"] == "add header"
    assert "TEST_FORCED_ACTION" in reply["symbols"]
    assert reply["message-id"] == "1@isp.example"
    adds = reply["milter"]["add_headers"]
    assert adds["X-Spam-Flag"]["value"] == "YES"
    assert "smtp.auth=cust7" in adds["Authentication-Results"]["value"]
    assert "X-Spam-Flag" in reply["milter"]["remove_headers"]


@pytest.mark.parametrize(("action", "reject"), [("quarantine", "quarantine"), ("discard", "discard")])
async def test_milter_block_reject(http: int, action: str, reject: str) -> None:
    _rc, out = await rspamc(
        http, "--json", data=HAM.replace(b"Subject:", f"X-Test-Action: {action}\r\nSubject:".encode())
    )
    reply = json.loads(out[out.index("{") :])
    assert reply["action"] == action and reply["milter"]["reject"] == reject


async def test_rspamc_learn(http: int) -> None:
    rc, out = await rspamc(http, "learn_spam", data=SPAM)
    assert rc == 0 and "success = true" in out
    rc, out = await rspamc(http, "learn_ham", data=HAM)
    assert rc == 0 and "success = true" in out


async def test_ping_metrics_and_bounds(http: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}") as c:
        assert (await c.get("/ping")).text == "pong\r\n"
        assert (await c.post("/checkv2", content=HAM)).status_code == 200
        big = await c.post("/checkv2", content=b"x" * 10_000)
        assert big.status_code == 413
        bad = await c.post("/checkv2", content=HAM, headers={"Rcpt": "a" * 5000})
        assert bad.status_code == 400 and "error" in bad.json()
        z = await c.post("/checkv2", content=HAM, headers={"Compression": "zstd"})
        assert z.status_code == 415
        metrics = (await c.get("/metrics")).text
        assert 'relayguard_http_checks_total{action="no action"} 1.0' in metrics
        assert (await c.get("/checkv2")).status_code == 405


@pytest.mark.parametrize("mode", [FailMode.ACCEPT, FailMode.TEMPFAIL])
async def test_fail_modes(mode: FailMode) -> None:
    service = HttpService(Scanner(load_config_text(""), BrokenPipeline()), HttpSettings(fail_mode=mode))  # type: ignore[arg-type]
    server = await start(service)
    try:
        _rc, out = await rspamc(server.port, "--json")
        reply = json.loads(out[out.index("{") :])
        assert reply["action"] == ("no action" if mode is FailMode.ACCEPT else "soft reject")
        assert "secret" not in out and "redis" not in out
    finally:
        await server.stop()
