from __future__ import annotations

from pathlib import Path

from outbound.helpers import facts
from relayguard.core.clock import ManualClock
from relayguard.outbound.detector import OutboundDetector
from relayguard.outbound.settings import OutboundSettings
from relayguard.outbound.state import MemoryStateStore, SqliteStateStore, StateFactory


def test_sqlite_store_keeps_state_across_instances(tmp_path: Path) -> None:
    s = OutboundSettings()
    factory = StateFactory(86400, 1000, 100, 168)
    db = tmp_path / "o.sqlite3"
    clock = ManualClock(0.0)
    det = OutboundDetector(s, clock, SqliteStateStore(db, factory))
    for i in range(5):
        clock.advance(30)
        det.observe(facts(f"spam spam offer number {i} buy now cheap cheap pills", sasl="bot"), 0.99)
    before = det.state_of("login:bot")
    assert before is not None and before.compromised
    again = SqliteStateStore(db, factory)
    st = again.get("login:bot")
    assert st is not None and st.compromised and st.sprt.reason == before.sprt.reason
    assert st.windows.stats(150.0, 3600).messages == 5
    assert again.customers() == ["login:bot"]


def test_memory_store_is_bounded() -> None:
    m = MemoryStateStore(max_customers=2)
    f = StateFactory(86400, 1000, 100, 168)
    for c in "abc":
        m.put(c, f.new())
    assert m.customers() == ["b", "c"]
