"""Containment in front of a real, private Postfix: held mail waits in the hold queue and a release
(`postsuper -c DIR -H QUEUEID`, queued as a command and applied by the relay's poll) delivers it intact.

Twice: Postfix asks relayguard's policy service (the real asyncio server with the containment decider) at
RCPT and at END-OF-MESSAGE (HOLD), or relayguard's milter (the containment check and updater in the
pipeline: quarantine). swaks submits with SASL; an aiosmtpd sink stands for the Internet.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from peers import wait_port
from relayguard.containment.decider import ContainmentDecider
from relayguard.containment.release import PostsuperCli
from relayguard.containment.service import Containment
from relayguard.containment.settings import ContainmentSettings
from relayguard.containment.shared_state import MemorySharedState
from relayguard.containment.states import ContainmentState
from relayguard.containment.store_sqlite import SqliteStore

pytestmark = pytest.mark.peer

USERS = {"alice@isp.example": "pw-a", "bob@isp.example": "pw-b"}


def _helper() -> ModuleType:
    # The front-end tests' private-Postfix helper (shared test code, loaded by path: tests/ is no package).
    path = Path(__file__).resolve().parents[1] / "frontends" / "postfix_instance.py"
    spec = importlib.util.spec_from_file_location("rg_postfix_instance", path)
    if spec is None or spec.loader is None or not path.exists():
        pytest.fail("tests/frontends/postfix_instance.py not available")
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


class PolicyThread:
    """relayguard's policy server (frontends.policy_server) on its own event loop thread."""

    def __init__(self, decider: ContainmentDecider, port: int) -> None:
        self.decider = decider
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Any = None

    def start(self) -> None:
        from relayguard.frontends.listen import open_server
        from relayguard.frontends.policy_server import PolicyService
        from relayguard.frontends.settings import FailMode, ListenAddress

        service = PolicyService(self.decider, FailMode.TEMPFAIL)
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(open_server(ListenAddress("127.0.0.1", self.port), service.protocol),
                                               self.loop)  # fmt: skip
        self.server = fut.result(10)
        self.port = int(self.server.sockets[0].getsockname()[1])  # bound to port 0: no race for a free port
        wait_port(self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class MilterThread(PolicyThread):
    """relayguard's milter server with a pipeline of only the containment check and updater."""

    def __init__(self, containment: Containment, port: int) -> None:
        super().__init__(ContainmentDecider(containment), port)
        self.containment = containment

    def start(self) -> None:
        from relayguard.config import load_config
        from relayguard.containment.check import ContainmentCheck, ContainmentUpdater
        from relayguard.frontends.listen import open_stream_server
        from relayguard.frontends.milter_server import MilterService
        from relayguard.frontends.scan import Scanner
        from relayguard.frontends.settings import ListenAddress, MilterSettings
        from relayguard.pipeline import Pipeline

        settings = load_config()
        c = self.containment
        pipeline = Pipeline(settings, [ContainmentCheck(c)], [ContainmentUpdater(c)])
        service = MilterService(Scanner(settings, pipeline), MilterSettings())
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            open_stream_server(ListenAddress("127.0.0.1", self.port), service.handle), self.loop
        )
        self.server = fut.result(10)
        self.port = int(self.server.sockets[0].getsockname()[1])
        wait_port(self.port)


@pytest.fixture(params=["policy", "milter"])
def relay(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any, Containment, Any]]:
    if shutil.which("postfix") is None or shutil.which("swaks") is None:
        pytest.fail("postfix and swaks are needed (scripts/apt-packages.txt)")
    if os.geteuid() != 0:
        pytest.fail("a private Postfix instance needs root (postfix set-permissions)")
    h = _helper()
    root = Path(tempfile.mkdtemp(prefix="relayguard-containment-"))
    os.chmod(root, 0o755)  # Postfix's unprivileged daemons must reach the queue
    front = request.param

    class Instance(h.PostfixInstance):  # type: ignore[misc,name-defined]
        def main_cf(self) -> str:
            if self.policy is None:
                return str(super().main_cf())
            # The queue id is known only at END-OF-MESSAGE: ask there too (docs/containment.md).
            return super().main_cf() + f"smtpd_end_of_data_restrictions = check_policy_service {self.policy}\n"

    sink = h.Sink()
    sink.start()
    store = SqliteStore(root / "containment.sqlite3")
    c = Containment(ContainmentSettings(relay="relay1"), store, MemorySharedState(), relay="relay1")
    server: PolicyThread | None = None
    pf: Any = None
    try:
        server = PolicyThread(ContainmentDecider(c), 0) if front == "policy" else MilterThread(c, 0)
        server.start()
        where = f"inet:127.0.0.1:{server.port}"
        if front == "policy":
            pf = Instance(root, sink.port, policy=where, users=USERS)
        else:
            pf = Instance(root, sink.port, milter=where, users=USERS)
        c.postsuper = PostsuperCli(config_dir=str(pf.config))
        pf.start()
        yield pf, sink, c, h
    finally:
        if pf is not None:
            pf.stop()
        if server is not None:
            server.stop()
        sink.stop()
        store.close()
        shutil.rmtree(root, ignore_errors=True)


def _wait(pred: Any, timeout: float = 60.0, poll: Any = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if poll is not None:
            poll()
        time.sleep(0.3)
    return False


def test_hold_then_release_through_postfix(relay: tuple[Any, Any, Containment, Any]) -> None:
    pf, sink, c, h = relay

    def send(user: str, subject: str) -> None:
        code, out = h.swaks(pf.smtp_port, sender=user, auth=(user, USERS[user]), subject=subject,
                            body=f"body of {subject}\nsecond line")  # fmt: skip
        assert code == 0, out

    send("alice@isp.example", "before")
    assert _wait(lambda: "before" in sink.subjects()), pf.log()
    assert c.escalate("login:alice@isp.example", ContainmentState.HELD, "sequential test: compromised") is not None
    send("alice@isp.example", "held-1")
    send("alice@isp.example", "held-2")
    send("bob@isp.example", "neighbour")  # another customer's mail flows
    assert _wait(lambda: "neighbour" in sink.subjects(), poll=pf.flush), pf.log()
    assert _wait(lambda: len(pf.held()) == 2), pf.log()
    held_ids = sorted(str(e["queue_id"]) for e in pf.held())
    logged = c.store.held_unreleased("login:alice@isp.example", "relay1")
    assert sorted(d.queue_id for d in logged) == held_ids  # the decision log knows what Postfix holds
    assert all(d.sasl_username == "alice@isp.example" and d.client_ip == "127.0.0.1" for d in logged)
    assert "held-1" not in sink.subjects()
    # the abuse desk releases: a queued command, applied by this relay's poll
    c.command("release", "login:alice@isp.example", actor="cli:test", reason="false positive")
    res = c.poll()
    assert sorted(res[0].released) == held_ids and res[0].applied
    assert _wait(lambda: {"held-1", "held-2"} <= set(sink.subjects()), poll=pf.flush), pf.log()
    assert pf.held() == []
    got = {m.content.split(b"Subject: ")[1].split(b"\r\n")[0].split(b"\n")[0].decode(): m for m in sink.messages}
    for s in ("held-1", "held-2"):
        assert f"body of {s}".encode() in got[s].content and b"second line" in got[s].content  # intact
        assert got[s].rcpt_tos == ["rcpt@example.org"]
    # released customer is normal again: the next message goes straight out
    send("alice@isp.example", "after")
    assert _wait(lambda: "after" in sink.subjects(), poll=pf.flush), pf.log()
    assert c.store.held_unreleased("login:alice@isp.example", "relay1") == []
    inc = c.store.current_incident("login:alice@isp.example")
    assert inc is not None and any(e.data.get("action") == "released" for e in inc.actions)
