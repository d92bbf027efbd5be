"""`dnsbl serve --metrics`: Prometheus text read from the running server, in-process and from the CLI."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import dns.asyncquery
import dns.message
import pytest
from prometheus_client.parser import text_string_to_metric_families

from peers import eventually, free_port, wait_port
from relayguard.core.http_endpoint import UvicornServer
from relayguard.dnsbl.answer import Limits
from relayguard.dnsbl.metrics import metrics_server
from relayguard.dnsbl.server import Catalog, DnsblServer
from relayguard.dnsbl.zonespec import ZoneSpec
from relayguard.frontends.settings import ListenAddress

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dnsbl"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        return samples(r.read().decode())


@pytest.fixture(params=["compiled", "python"])
async def served(tmp_path: Path, request: pytest.FixtureRequest,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[DnsblServer, UvicornServer, str]]:
    monkeypatch.setenv("RELAYGUARD_DNSBL_NATIVE", "1" if request.param == "compiled" else "0")
    for f in ("ip4set.zone", "dnset.zone"):
        shutil.copy(FIXTURES / f, tmp_path / f)
    specs = [ZoneSpec.parse(s) for s in ("bl.test:ip4set:ip4set.zone", "dbl.test:dnset:dnset.zone")]
    cat = Catalog(specs, Limits(), workdir=str(tmp_path))
    cat.load()
    srv = DnsblServer(cat, [("127.0.0.1", 0)], check_interval=0)
    await srv.start()
    ep = metrics_server(srv, ListenAddress(host="127.0.0.1", port=0))
    await ep.start()
    yield srv, ep, request.param
    await ep.stop()
    await srv.stop()


async def test_counts_what_the_server_answered(served: tuple[DnsblServer, UvicornServer, str]) -> None:
    srv, ep, path = served
    host, port = srv.bound[0]
    for name in ["1.0.65.10.bl.test", "2.0.0.127.bl.test", "spam.example.dbl.test"]:
        await dns.asyncquery.udp(dns.message.make_query(name, "A"), host, port=port, timeout=2)
    await dns.asyncquery.udp(dns.message.make_query("bl.test", "SOA"), host, port=port, timeout=2)  # Python's
    await dns.asyncquery.tcp(dns.message.make_query("1.0.65.10.bl.test", "TXT"), host, port=port, timeout=2)
    m = await asyncio.to_thread(scrape, ep.port)
    assert m[("relayguard_dnsbl_queries_total", (("transport", "udp"),))] == 4
    assert m[("relayguard_dnsbl_queries_total", (("transport", "tcp"),))] == 1
    compiled = m[("relayguard_dnsbl_compiled_answers_total", ())]
    assert compiled == (3 if path == "compiled" else 0)
    assert m[("relayguard_dnsbl_udp_sockets", (("path", path),))] == 1
    assert m[("relayguard_dnsbl_zone_entries", (("zone", "bl.test"),))] > 10
    assert m[("relayguard_dnsbl_zone_serial", (("zone", "bl.test"),))] == 20260101  # the file's $SOA
    assert m[("relayguard_dnsbl_reloads_total", ())] == 0
    assert m[("relayguard_dnsbl_reload_failures_total", ())] == 0


async def test_counts_reloads_and_failed_ones(served: tuple[DnsblServer, UvicornServer, str]) -> None:
    srv, ep, _ = served
    zone = Path(srv.catalog.workdir or ".") / "ip4set.zone"
    zone.write_text(zone.read_text() + "\n99.99.99.99 :9:new\n")
    srv.catalog.loaded.files[str(zone)] = 0.0  # type: ignore[union-attr]
    srv.request_reload()
    assert await eventually(lambda: srv.catalog.reloads)
    m = await asyncio.to_thread(scrape, ep.port)
    assert m[("relayguard_dnsbl_reloads_total", ())] == 1
    zone.unlink()
    zone.mkdir()  # a file that can no longer be read: the reload fails, the old data keeps answering
    srv.request_reload()
    assert await eventually(lambda: srv.reload_failures)
    m = await asyncio.to_thread(scrape, ep.port)
    assert m[("relayguard_dnsbl_reload_failures_total", ())] == 1
    assert m[("relayguard_dnsbl_reloads_total", ())] == 1


def test_cli_serves_metrics(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "ip4set.zone", tmp_path / "ip4set.zone")
    dns_port, metrics_port = free_port(), free_port()
    exe = Path(sys.executable).with_name("relayguard")
    proc = subprocess.Popen([str(exe), "dnsbl", "serve", "-V", "--listen", f"127.0.0.1:{dns_port}", "--metrics",
                             f"127.0.0.1:{metrics_port}", "bl.test:ip4set:ip4set.zone"], cwd=tmp_path,
                            stderr=subprocess.PIPE)
    try:
        wait_port(metrics_port, 30, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/ping", timeout=5) as r:
            assert r.read() == b"pong\r\n"
        m = scrape(metrics_port)
        assert m[("relayguard_dnsbl_zone_entries", (("zone", "bl.test"),))] > 10
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"metrics at [127.0.0.1]:{metrics_port}/metrics".encode() in err
    assert b"UDP answered by the compiled engine" in err  # -V says which path runs


def test_cli_rejects_a_bad_metrics_address(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("relayguard")
    r = subprocess.run([str(exe), "dnsbl", "serve", "--listen", "127.0.0.1:0", "--metrics", "nowhere",
                        "bl.test:ip4set:ip4set.zone"], cwd=tmp_path, capture_output=True, env=dict(os.environ))
    assert r.returncode == 2
    assert b"--metrics" in r.stderr
