"""`relayguard serve` as a process: SIGTERM finishes transactions in flight, SIGHUP reloads safely."""

from __future__ import annotations

import signal
import socket
import time

from conftest import Served, write_config
from relayguard.protocols import milter as m
from relayguard.protocols.policy import PolicyAction, encode_request, parse_reply


def recv_replies(sock: socket.socket, mta: m.MtaSide, n: int, until_final: bool = False) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        (until_final and (not got or got[-1][0] not in "artdy")) or (not until_final and len(got) < n)
    ):
        data = sock.recv(65536)
        if not data:
            break
        got += mta.feed(data)
    return got


def test_sigterm_finishes_the_message_in_flight(served: Served) -> None:
    served.start()
    mta = m.MtaSide()
    s = socket.create_connection(("127.0.0.1", served.ports["milter"]), timeout=30)
    s.sendall(mta.optneg() + mta.connect("h", "198.18.0.1") + mta.mail("<a@isp.example>") + mta.rcpt("<b@x>"))
    assert [c for c, _ in recv_replies(s, mta, 4)] == ["O", "c", "c", "c"]
    served.signal(signal.SIGTERM)
    time.sleep(1.0)
    # New connections are refused while the old transaction finishes.
    try:
        socket.create_connection(("127.0.0.1", served.ports["milter"]), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    assert refused
    assert served.proc is not None and served.proc.poll() is None  # still finishing
    s.sendall(mta.header("Subject", "in flight") + mta.simple("N") + mta.simple("B", b"body\r\n") + mta.simple("E"))
    replies = recv_replies(s, mta, 0, until_final=True)
    assert replies[-1][0] == "a"  # the message got its answer
    assert any(c == "h" and b"X-Spam-Status" in d for c, d in replies)
    assert s.recv(100) == b""  # then the connection closes
    s.close()
    assert served.proc.wait(30) == 0


def ask_policy(port: int, login: str) -> PolicyAction:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            encode_request(
                {
                    "request": "smtpd_access_policy",
                    "protocol_state": "RCPT",
                    "sasl_username": login,
                    "client_address": "198.18.0.1",
                }
            )
        )
        data = b""
        while not data.endswith(b"\n\n"):
            chunk = s.recv(4096)
            assert chunk
            data += chunk
    return parse_reply(data).action


def test_sighup_reload_keeps_old_config_when_invalid(served: Served) -> None:
    served.start()
    port = served.ports["policy"]
    # rate_limit = 5 from the fixture
    assert [ask_policy(port, "u1") for _ in range(6)][-1] is PolicyAction.DEFER_IF_PERMIT
    good = served.config.read_text()
    served.config.write_text(good + "\n[frontends.http]\nlisten = ['nonsense no port']\n")
    served.signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "reload refused" not in served.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "reload refused" in served.output()
    assert ask_policy(port, "u2") is PolicyAction.DUNNO  # still serving, old rules
    # a valid change takes effect: limit 1
    write_config(served.config, served.ports, {"policy": "rate_limit = 1"})
    served.signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "configuration reloaded" not in served.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [ask_policy(port, "u3") for _ in range(2)] == [PolicyAction.DUNNO, PolicyAction.DEFER_IF_PERMIT]
    assert served.stop() == 0
