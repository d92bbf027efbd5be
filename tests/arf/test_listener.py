"""Complaints over a real aiosmtpd SMTP/LMTP listener on 127.0.0.1, driven by smtplib and swaks."""

from __future__ import annotations

import smtplib
import subprocess
from collections.abc import Iterator

import pytest

from arf import scenario as sc
from peers import free_port
from relayguard.arf.ingest import Ingestor, make_controller
from relayguard.arf.settings import ArfSettings
from relayguard.arf.store import ComplaintStore


@pytest.fixture(params=[False, True], ids=["smtp", "lmtp"])
def listener(request: pytest.FixtureRequest) -> Iterator[tuple[Ingestor, int, bool]]:
    lmtp = bool(request.param)
    ing = Ingestor(ArfSettings(relay_hostnames=[sc.RELAY]), ComplaintStore(":memory:"))
    port = free_port()
    ctl = make_controller(ing, "127.0.0.1", port, lmtp)
    ctl.start()
    try:
        yield ing, port, lmtp
    finally:
        ctl.stop()


def _client(port: int, lmtp: bool) -> smtplib.SMTP:
    return smtplib.LMTP("127.0.0.1", port, timeout=30) if lmtp else smtplib.SMTP("127.0.0.1", port, timeout=30)


def test_smtplib_delivers_complaints(listener: tuple[Ingestor, int, bool]) -> None:
    ing, port, lmtp = listener
    with _client(port, lmtp) as c:
        # smtplib's LMTP reads one DATA reply, so one recipient per transaction here (see below for more).
        rcpts = ["fbl@isp.example"] if lmtp else ["fbl@isp.example", "abuse@isp.example"]
        c.sendmail("feedback@arf.yahoo.example", rcpts, sc.complaint(sc.spam(1)))
        c.sendmail("feedback@arf.yahoo.example", ["fbl@isp.example"], sc.complaint(sc.spam(1)))  # the same again
        c.sendmail("x@y.example", ["fbl@isp.example"], b"Subject: hello\r\n\r\nnot a report\r\n")
        code, _ = c.noop()
        assert code == 250
    counts = ing.store.counts()
    assert counts["unmatched"] == 1 and counts["duplicates"] == 1 and counts["unparseable"] == 1
    stored = ing.store.recent(status="unmatched")[0]
    assert stored.source.startswith("lmtp:127.0.0.1" if lmtp else "smtp:127.0.0.1")
    assert stored.reporter == "feedback@arf.yahoo.example"


def test_lmtp_answers_per_recipient(listener: tuple[Ingestor, int, bool]) -> None:
    ing, port, lmtp = listener
    if not lmtp:
        pytest.skip("LMTP only")
    rcpts = ["a@isp.example", "b@isp.example", "c@isp.example"]
    with smtplib.LMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo_or_helo_if_needed()
        assert c.mail("f@arf.example")[0] == 250
        for r in rcpts:
            assert c.rcpt(r)[0] == 250
        assert c.docmd("DATA")[0] == 354
        data = sc.complaint(sc.spam(7))  # CRLF already
        c.send(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        replies = [c.getreply() for _ in rcpts]  # RFC 2033: one reply per accepted recipient
    assert [code for code, _ in replies] == [250, 250, 250]
    assert ing.store.counts()["total"] == 1


def test_swaks_delivers_a_complaint(listener: tuple[Ingestor, int, bool]) -> None:
    ing, port, lmtp = listener
    args = ["swaks", "--server", f"127.0.0.1:{port}", "--from", "feedback@arf.aol.example", "--to", "fbl@isp.example"]
    args += ["--protocol", "LMTP"] if lmtp else []
    args += ["--data", "-", "--silent", "2"]
    out = subprocess.run(args, input=sc.complaint(sc.spam(3), reporter="aol"), capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    got = ing.store.recent()
    assert len(got) == 1 and got[0].reporter == "feedback@arf.aol.example" and got[0].user_agent.startswith("Yahoo")
