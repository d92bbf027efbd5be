"""Reports out by SMTP (to an aiosmtpd peer on loopback) and to a folder."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from arf import scenario as sc
from relayguard.arf.outgoing import ReportedMessage, deliver, reports_for
from relayguard.arf.parse import parse_report
from relayguard.arf.settings import ArfSettings


class Peer:
    def __init__(self) -> None:
        self.got: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.got.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_smtp_delivery_and_partial_refusal() -> None:
    peer = Peer()
    port = _port()
    ctl = Controller(peer, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        a = ArfSettings(smtp_server=f"127.0.0.1:{port}", report_from="abuse@isp.example")
        msgs = [
            ReportedMessage(raw=sc.spam(i), client_ip=sc.DYN_IP, rcpt_to=(f"victim{i}@mail.example",)) for i in (1, 2)
        ]
        reports = reports_for(msgs, a, ["abuse@peer.example", "nobody@peer.example"], now=sc.T_COMPLAINT)
        done = deliver(reports, a, ["abuse@peer.example", "nobody@peer.example"])
    finally:
        ctl.stop()
    assert [d.ok for d in done] == [True, True]
    assert all(d.recipients == ("abuse@peer.example",) and "nobody" in d.detail for d in done)
    assert [r for r, _ in peer.got] == [["abuse@peer.example"], ["abuse@peer.example"]]
    p = parse_report(peer.got[0][1])
    assert p.report.source_ip == sc.DYN_IP and p.report.user_agent == "relayguard/0.1"
    assert b"victim1@" not in peer.got[0][1]


def test_folder_delivery_is_atomic_and_named_by_content(tmp_path: Path) -> None:
    a = ArfSettings(folder=str(tmp_path / "out"))
    reports = reports_for([ReportedMessage(raw=sc.spam(1))], a, ["x@peer.example"], now=0.0)
    done = deliver(reports, a, [])
    again = deliver(reports, a, [])
    assert done[0].target == again[0].target and Path(done[0].target).read_bytes() == reports[0]
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_max_messages_caps_reports() -> None:
    a = ArfSettings(max_messages=2)
    assert len(reports_for([ReportedMessage(raw=sc.spam(i)) for i in range(5)], a, ["x@p.example"])) == 2
