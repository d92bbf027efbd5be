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


def test_from_settings_loads_identity_files_and_sqlite(tmp_path: Path) -> None:
    from outbound.helpers import FIXTURES
    from relayguard.config import load_config_text

    leases = tmp_path / "radacct.log"
    leases.write_text(
        "Acct-Status-Type=Start User-Name=dyn1 Framed-IP-Address=203.0.113.50 Event-Timestamp=1000\nbroken\n"
    )
    settings = load_config_text(
        f'[storage]\ndata_dir = "{tmp_path.as_posix()}"\n'
        f'[outbound]\nstate = "sqlite"\nstatic_assignments = "{(FIXTURES / "static.cidr").as_posix()}"\n'
        f'lease_file = "{leases.as_posix()}"\nipv6_prefix = 56\n'
    )
    det = OutboundDetector.from_settings(settings, ManualClock(2000.0))
    assert det.identify(facts(ip="198.51.100.7")).customer == "sub:biz-0042"
    assert det.identify(facts(ip="203.0.113.50")).customer == "sub:dyn1"
    assert det.identify(facts(ip="2001:db8:9:ff::1")).customer == "net6:2001:db8:9::/56"
    det.observe(facts(ip="203.0.113.50"), 0.1)
    assert (tmp_path / "outbound.sqlite3").exists()
    assert det.identity.leases.errors == 1


def test_stand_in_classifier_separates_obvious_text() -> None:
    from relayguard.outbound.verdicts import StandInNaiveBayes

    nb = StandInNaiveBayes()
    for i in range(20):
        nb.learn(facts(f"cheap pills viagra offer casino winner money {i}"), True)
        nb.learn(facts(f"meeting agenda minutes project schedule lunch {i}"), False)
    spam = nb.spam_probability(facts("casino winner cheap pills"))
    ham = nb.spam_probability(facts("project meeting schedule"))
    assert spam is not None and ham is not None and spam > 0.9 > 0.1 > ham


def test_verdict_source_from_settings(tmp_path: Path) -> None:
    from relayguard.config import load_config_text
    from relayguard.outbound.verdicts import ClassifierVerdicts, verdict_source_from_settings

    off = load_config_text(f'[storage]\ndata_dir = "{tmp_path.as_posix()}"\n[classifier]\nenabled = false\n')
    assert verdict_source_from_settings(off) is None
    on = load_config_text(f'[storage]\ndata_dir = "{tmp_path.as_posix()}"\n[classifier]\nstarter = false\n')
    src = verdict_source_from_settings(on)
    assert isinstance(src, ClassifierVerdicts)
    p = src.spam_probability(facts("hello"))
    assert p is not None and 0.0 <= p <= 1.0
