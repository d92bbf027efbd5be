"""The policy front end writes containment's decision log behind the replies, and loses none of it on stop."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from conftest import Served, free_port, write_config
from relayguard.config import load_config
from relayguard.containment.decisions import DecisionRecord
from relayguard.containment.factory import build
from relayguard.containment.states import ContainmentState
from relayguard.containment.store_sqlite import SqliteStore
from relayguard.frontends.runtime import Frontends
from relayguard.protocols.policy import PolicyAction, encode_request, parse_reply

CUSTOMER = "login:held@isp.example"


def request(state: str, instance: str, **extra: str) -> bytes:
    attrs = {
        "request": "smtpd_access_policy",
        "protocol_state": state,
        "client_address": "198.18.7.7",
        "sasl_username": "held@isp.example",
        "sender": "held@isp.example",
        "instance": instance,
    }
    attrs.update(extra)
    return encode_request(attrs)


def messages(n: int) -> list[bytes]:
    """Each message: one RCPT, then END-OF-MESSAGE with its queue id (where the decision is logged)."""
    out = []
    for i in range(n):
        inst = f"wb.{i}"
        out.append(request("RCPT", inst, recipient=f"r{i}@example.org"))
        out.append(request("END-OF-MESSAGE", inst, queue_id=f"4W{i:08X}", recipient_count="1"))
    return out


def held_in_store(config: Path) -> int:
    """HOLD decisions in the store, read by another connection (what an operator's CLI sees)."""
    store = SqliteStore(config.parent / "data" / "containment.sqlite3")
    try:
        return len(store.decisions_for(CUSTOMER, action="HOLD", limit=100_000))
    finally:
        store.close()


def hold_customer(config: Path) -> None:
    """Put the customer in HELD in the store before serve starts (it warms its state from there)."""
    c = build(load_config(config))
    assert c.escalate(CUSTOMER, ContainmentState.HELD, "test") is not None
    c.close()


async def test_stop_writes_every_queued_decision(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "relayguard.toml"
    write_config(cfg, {"policy": port})
    hold_customer(cfg)
    fe = Frontends(load_config(cfg), containment=build(load_config(cfg)))
    assert fe.containment is not None and fe.containment_decider is not None
    # a slow store: the writer is still busy when stop() is called, with most decisions queued
    slow_record = fe.containment.record_many
    started = threading.Event()

    def record_many(items: Sequence[tuple[DecisionRecord, str]]) -> None:
        started.set()
        time.sleep(0.3)
        slow_record(items)

    fe.containment.record_many = record_many  # type: ignore[method-assign]
    await fe.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for data in messages(200):
        writer.write(data)
        reply = parse_reply(await asyncio.wait_for(reader.readuntil(b"\n\n"), 10))
        assert reply.action is PolicyAction.HOLD
    writer.close()
    assert started.wait(10)
    assert held_in_store(cfg) < 200  # answered, not yet written: the log is behind the replies
    await fe.stop()
    assert held_in_store(cfg) == 200


def test_sigterm_loses_no_decision(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "relayguard.toml"
    write_config(cfg, {"policy": port})
    hold_customer(cfg)
    served = Served(cfg, {"policy": port}, tmp_path / "relayguard.log")
    served.start()
    try:
        n = 500
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"".join(messages(n)))  # pipelined, as fast as the server answers
            data = b""
            while data.count(b"\n\n") < 2 * n:
                chunk = s.recv(65536)
                assert chunk, "connection closed early"
                data += chunk
            served.signal(signal.SIGTERM)  # at once: the last decisions are still queued for the log
        replies = [parse_reply(r + b"\n\n").action for r in data.split(b"\n\n")[:-1]]
        assert replies == [PolicyAction.HOLD] * (2 * n)
        assert served.proc is not None and served.proc.wait(60) == 0
    finally:
        served.kill()
    assert held_in_store(cfg) == n, served.output()[-2000:]
