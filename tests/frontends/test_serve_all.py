"""`relayguard serve` with every front end at once: each answers, /metrics sees them all, SIGTERM exits 0."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest
from test_signals import ask_policy, recv_replies

from conftest import Served, free_port, write_config
from relayguard.protocols import milter as m
from relayguard.protocols import spamd as sp
from relayguard.protocols.policy import PolicyAction

pytestmark = pytest.mark.peer

MSG = b"From: a@isp.example\r\nTo: b@example.org\r\nSubject: all\r\n\r\nhello\r\n"


def test_every_front_end_in_one_process(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("policy", "milter", "spamd", "http")}
    cfg = tmp_path / "relayguard.toml"
    write_config(cfg, ports)
    served = Served(cfg, ports, tmp_path / "relayguard.log")
    served.start()
    try:
        assert ask_policy(ports["policy"], "u1") is PolicyAction.DUNNO

        mta = m.MtaSide()
        with socket.create_connection(("127.0.0.1", ports["milter"]), timeout=30) as s:
            s.sendall(
                mta.optneg() + mta.connect("h", "198.18.0.1") + mta.mail("<a@isp.example>") + mta.rcpt("<b@x>")
                + mta.header("Subject", "all") + mta.simple("N") + mta.simple("B", b"hello\r\n") + mta.simple("E")
            )  # fmt: skip
            assert recv_replies(s, mta, 0, until_final=True)[-1][0] == "a"

        with socket.create_connection(("127.0.0.1", ports["spamd"]), timeout=30) as s:
            s.sendall(sp.encode_request("CHECK", MSG))
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            assert data.startswith(b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; ")

        base = f"http://127.0.0.1:{ports['http']}"
        assert httpx.get(base + "/ping", timeout=30).text == "pong\r\n"
        assert httpx.post(base + "/checkv2", content=MSG, timeout=30).json()["action"] == "no action"
        metrics = httpx.get(base + "/metrics", timeout=30).text
        assert "relayguard_policy_requests_total 1.0" in metrics
        assert "relayguard_milter_messages_total 1.0" in metrics
        assert "relayguard_spamd_requests_total 1.0" in metrics
        assert 'relayguard_scans_total{outcome="ok"} 3.0' in metrics
    finally:
        served.signal(signal.SIGTERM)
        assert served.proc is not None and served.proc.wait(60) == 0, served.output()
