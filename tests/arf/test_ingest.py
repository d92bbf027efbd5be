"""Complaints in: kept (always), duplicates once, traced to the customer by Message-ID, queue id, our
relay's Received line or Source-IP with time-aware leases, and fed to the sinks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from arf import scenario as sc
from arf import variants as v
from arf.helpers import REAL, RFC, crlf
from relayguard.arf.ingest import Ingestor, complaint_key, iter_reports
from relayguard.arf.match import Matcher
from relayguard.arf.parse import parse_report
from relayguard.arf.ports import CallbackSink, DetectorSink, ResolverIdentity, Trace
from relayguard.arf.settings import ArfSettings
from relayguard.arf.store import ComplaintStore
from relayguard.core.clock import ManualClock
from relayguard.outbound.detector import OutboundDetector

SETTINGS = ArfSettings(relay_hostnames=[sc.RELAY], relay_networks=[f"{sc.RELAY_IP}/32"])


class FakeLog:
    """A decision log in memory with the containment DecisionLog's lookups."""

    def __init__(self, traces: Sequence[Trace]) -> None:
        self.traces = list(traces)

    def by_message_id(self, message_id: str) -> Sequence[Trace]:
        return [t for t in self.traces if t.message_id == message_id]

    def by_queue_id(self, queue_id: str, relay: str | None = None) -> Sequence[Trace]:
        return [t for t in self.traces if t.queue_id == queue_id and (relay is None or t.relay == relay)]

    def by_client(self, client_ip: str, t: float, slack: float) -> Sequence[Trace]:
        got = [x for x in self.traces if x.client_ip == client_ip and abs(x.t - t) <= slack]
        return sorted(got, key=lambda x: abs(x.t - t))


def _ingestor(decisions: Any = None, identity: Any = None, sinks: Sequence[Any] = ()) -> Ingestor:
    store = ComplaintStore(":memory:")
    return Ingestor(SETTINGS, store, Matcher(SETTINGS, decisions, identity), sinks, ManualClock(sc.T_COMPLAINT))


def test_every_fixture_is_kept_and_counted() -> None:
    ing = _ingestor()
    errors: list[str] = []
    files = [str(p) for p in sorted([*RFC.glob("*.eml"), *REAL.glob("*.eml")])]
    results = [ing.ingest(data, src) for src, data in iter_reports(files, errors)]
    assert not errors
    assert len(results) == 27  # 5 RFC + 21 real + 1 not a report
    c = ing.store.counts()
    assert c["unparseable"] == 1 and c["matched"] == 0 and c["unmatched"] == 26 and c["total"] == 27
    bad = ing.store.recent(status="unparseable")[0]
    assert "not a feedback report" in bad.detail and ing.store.raw(bad.id or 0)


def test_duplicates_count_once_even_reformatted() -> None:
    seen: list[str] = []
    ing = _ingestor(
        FakeLog([Trace("sub:SUB-A", sc.T_SPAM, sc.RELAY, message_id="spam-1@pc7")]),
        sinks=[CallbackSink(lambda c, comp, t: seen.append(c))],
    )
    raw = sc.complaint(sc.spam())
    first = ing.ingest(raw, "a")
    again = ing.ingest(crlf(raw).replace(b"\r\n", b"\n"), "b")
    refolded = ing.ingest(raw.replace(b"Subject: Cheap meds 1", b"Subject:   Cheap\r\n  meds 1"), "c")
    assert first.new and first.status == "matched"
    assert not again.new and again.status == "duplicate"
    assert not refolded.new
    assert seen == ["sub:SUB-A"]
    assert ing.store.counts()["duplicates"] == 2 and ing.store.counts()["total"] == 1
    # Another reporter complaining about the same message is another complaint.
    other = ing.ingest(sc.complaint(sc.spam(), reporter="aol"), "d")
    assert other.new and seen == ["sub:SUB-A", "sub:SUB-A"]
    # Another recipient's copy of the campaign is another complaint too.
    assert ing.ingest(sc.complaint(sc.spam(n=2)), "e").new


def test_key_is_stable_across_line_endings() -> None:
    raw = sc.complaint(sc.spam())
    assert complaint_key(parse_report(raw)) == complaint_key(parse_report(crlf(raw)))


def test_trace_by_message_id_then_queue_id() -> None:
    log = FakeLog(
        [
            Trace("login:alice", sc.T_SPAM, sc.RELAY, "QID1", "known@pc", "203.0.113.9"),
            Trace("login:bob", sc.T_SPAM, sc.RELAY, "QID2", "", "203.0.113.10"),
        ]
    )
    ing = _ingestor(log)
    by_mid = ing.ingest(sc.complaint(sc.spam(mid="known@pc", qid="QIDX")), "x").complaint
    assert (by_mid.customer, by_mid.method) == ("login:alice", "message-id")
    by_qid = ing.ingest(sc.complaint(sc.spam(mid="unknown@pc", qid="QID2")), "y").complaint
    assert (by_qid.customer, by_qid.method, by_qid.relay) == ("login:bob", "queue-id", sc.RELAY)


def test_dynamic_address_that_changed_hands_reaches_the_holder_at_spam_time() -> None:
    """No decision for this message (the log was purged, or the relay never logged it): the relay's
    Received line gives the client address and the time; the lease history says SUB-A held it then,
    although SUB-B holds it when the complaint arrives."""
    identity = ResolverIdentity(sc.resolver())
    assert identity.holder(sc.DYN_IP, sc.T_COMPLAINT) == "sub:SUB-B"
    ing = _ingestor(FakeLog([]), identity)
    c = ing.ingest(sc.complaint(sc.spam(mid="purged@pc7")), "fbl").complaint
    assert (c.customer, c.method) == ("sub:SUB-A", "received")


def test_decision_log_by_client_uses_the_message_time() -> None:
    log = FakeLog(
        [
            Trace("sub:SUB-A", sc.T_SPAM + 1, sc.RELAY, "Q-A", "a@pc", sc.DYN_IP),
            Trace("sub:SUB-B", sc.T_SWITCH + 600, sc.RELAY, "Q-B", "b@pc", sc.DYN_IP),
        ]
    )
    ing = _ingestor(log)
    c = ing.ingest(sc.complaint(sc.spam(mid="other@pc", qid="Q-Z")), "fbl").complaint
    assert (c.customer, c.method) == ("sub:SUB-A", "received")


def test_source_ip_path_for_direct_to_mx_and_our_relay_excluded() -> None:
    identity = ResolverIdentity(sc.resolver())
    ing = _ingestor(None, identity)
    direct = b"Received: from pc7 by mx.yahoo.example; Mon, 5 Oct 2026 10:00:00 +0000\nMessage-ID: <d@pc7>\n\nspam\n"
    c = ing.ingest(sc.complaint(direct, source_ip=sc.DYN_IP), "fbl").complaint
    assert (c.customer, c.method) == ("sub:SUB-A", "source-ip")
    later = direct.replace(b"d@pc7", b"later@pc7")
    late = ing.ingest(sc.complaint(later, source_ip=sc.DYN_IP, arrival=sc.T_SWITCH + 60), "fbl").complaint
    assert late.customer == "sub:SUB-B"  # the message itself came after the switch
    via_relay = ing.ingest(sc.complaint(direct.replace(b"d@pc7", b"e@pc7"), source_ip=sc.RELAY_IP), "fbl").complaint
    assert via_relay.status == "unmatched" and "Source-IP is our relay" in via_relay.detail


def test_unmatched_complaints_are_kept_and_rematched_later() -> None:
    seen: list[str] = []
    log = FakeLog([])
    ing = _ingestor(log, sinks=[CallbackSink(lambda c, comp, t: seen.append(c))])
    res = ing.ingest(sc.complaint(sc.spam(mid="late@pc7")), "fbl")
    assert res.status == "unmatched" and seen == []
    log.traces.append(Trace("sub:SUB-A", sc.T_SPAM, sc.RELAY, message_id="late@pc7"))
    assert ing.rematch() == 1 and seen == ["sub:SUB-A"]
    assert ing.store.counts()["matched"] == 1


def test_a_failing_sink_loses_nothing() -> None:
    def boom(c: str, comp: Any, t: float) -> None:
        raise RuntimeError("incident store down")

    seen: list[str] = []
    log = FakeLog([Trace("sub:SUB-A", sc.T_SPAM, sc.RELAY, message_id="spam-1@pc7")])
    ing = _ingestor(log, sinks=[CallbackSink(boom), CallbackSink(lambda c, comp, t: seen.append(c))])
    assert ing.ingest(sc.complaint(sc.spam()), "fbl").status == "matched"
    assert seen == ["sub:SUB-A"] and ing.store.counts()["matched"] == 1


def test_complaint_is_strong_evidence_for_detection() -> None:
    det = OutboundDetector(clock=ManualClock(sc.T_COMPLAINT))
    log = FakeLog([Trace("sub:SUB-A", sc.T_SPAM, sc.RELAY, message_id=f"spam-{i}@pc7") for i in range(1, 4)])
    ing = _ingestor(log, sinks=[DetectorSink(det, SETTINGS.complaint_llr)])
    ing.ingest(sc.complaint(sc.spam(n=1, mid="spam-1@pc7")), "fbl")
    st = det.state_of("sub:SUB-A")
    assert st is not None and not st.compromised and st.sprt.llr == SETTINGS.complaint_llr
    ing.ingest(sc.complaint(sc.spam(n=2, mid="spam-2@pc7")), "fbl")
    st = det.state_of("sub:SUB-A")
    assert st is not None and st.compromised and "complaint" in (st.sprt.reason or "")
    assert det.state_of("sub:SUB-B") is None


def test_real_loops_traced_through_message_id() -> None:
    """Real reports carry real Message-IDs: with those in the decision log, they reach the customer."""
    mids = {
        "sisimai-yahoo.eml": "000000000000000000000000.smtp@example.com",
        "mailio-aol-scomp.eml": "1283450583.6569568232097351@mf12.sendgrid.net",
        "sisimai-arf-13.eml": "d4cb0d6593464552a34f4429b3e7f92f@example.com",
        "sisimai-arf-09.eml": "asdjhi9ldn14@example.net",
    }
    log = FakeLog([Trace(f"login:{i}", 0.0, "relay", message_id=m) for i, m in enumerate(mids.values())])
    ing = _ingestor(log)
    for i, name in enumerate(mids):
        c = ing.ingest((REAL / name).read_bytes(), name).complaint
        assert (c.customer, c.method) == (f"login:{i}", "message-id"), name


def test_hotmail_style_complaint_without_feedback_part_is_traced() -> None:
    log = FakeLog([Trace("login:carol", sc.T_SPAM, sc.RELAY, message_id="spam-1@pc7")])
    c = _ingestor(log).ingest(v.hotmail(), "jmrp").complaint
    assert c.customer == "login:carol" and c.reporter == "staff@hotmail.example"
