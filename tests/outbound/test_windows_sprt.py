from __future__ import annotations

import math

import pytest

from relayguard.outbound.sprt import Evidence, Sprt, SprtParams, SprtState
from relayguard.outbound.windows import Baseline, CustomerWindows, Observation


def test_windows_count_exactly_per_window() -> None:
    w = CustomerWindows(horizon=86400)
    for i in range(10):
        w.add(Observation(i * 60.0, 2, (f"d{i % 3}.example",), f"s{i % 2}@x", "x.example", "helo", 100, 0.1))
    w.add_rejected(540.0, 3)
    ten = w.stats(540.0, 600.0)
    assert (ten.messages, ten.recipients, ten.rcpt_domains, ten.env_senders, ten.helos) == (10, 20, 3, 2, 1)
    assert ten.rejected == 3 and ten.bytes == 1000
    assert ten.mean_spam_p == pytest.approx(0.1)
    two = w.stats(540.0, 120.0)
    assert two.messages == 3


def test_windows_prune_and_roundtrip() -> None:
    w = CustomerWindows(horizon=100, max_events=100, max_distinct=10)
    w.add(Observation(0.0, 1, ("a",), "s", "f", "h"))
    w.add(Observation(200.0, 1, ("b",), "s", "f", "h"))
    assert w.stats(200.0, 1000.0).messages == 1
    assert w.stats(200.0, 1000.0).rcpt_domains == 1
    again = CustomerWindows.from_dict(w.to_dict(), 100, 100, 10)
    assert again.stats(200.0, 1000.0) == w.stats(200.0, 1000.0)


def test_windows_bounded() -> None:
    w = CustomerWindows(horizon=1e9, max_events=100, max_distinct=10)
    for i in range(500):
        w.add(Observation(float(i), 1, (f"d{i}",), f"s{i}", "", ""))
    assert len(w.events) == 100
    assert all(len(v) <= 10 for v in w.distinct.values())


def test_baseline_learns_heavy_sender() -> None:
    b = Baseline(halflife_hours=168)
    for h in range(48):
        for k in range(100):
            b.observe(h * 3600.0 + k)
    assert b.expected_per_hour(prior=6.0) == pytest.approx(100.0, rel=0.05)
    assert Baseline().expected_per_hour(prior=6.0) == 6.0


def test_sprt_bounds_are_walds() -> None:
    p = SprtParams()
    assert p.upper == pytest.approx(math.log(0.99 / 0.01))
    assert p.lower == pytest.approx(math.log(0.01 / 0.99))
    assert p.content_llr(1.0) == pytest.approx(math.log(0.9 / 0.2))
    assert p.content_llr(0.0) == pytest.approx(math.log(0.1 / 0.8))
    assert abs(p.content_llr(0.5 * (0.1 + 0.8) / 0.9)) < 1.0  # unsure verdicts move the test little


def test_sprt_four_spam_verdicts_decide() -> None:
    s = Sprt(SprtParams())
    st = SprtState()
    outcomes = [
        s.step(st, float(i), [Evidence("content", s.params.content_llr(1.0), "p=1.00")]).outcome for i in range(4)
    ]
    assert outcomes == ["continue", "continue", "continue", "compromised"]
    d = s.step(st, 5.0, [Evidence("content", -5.0, "p=0")])
    assert d.outcome == "already"  # a decision sticks until released
    assert st.reason is not None and "4.60" in st.reason and "content" in st.reason
    Sprt.clear(st)
    assert st.compromised_at is None and st.llr == 0.0


def test_sprt_restarts_after_normal() -> None:
    s = Sprt(SprtParams())
    st = SprtState()
    for i in range(3):
        d = s.step(st, float(i), [Evidence("content", s.params.content_llr(0.0), "p=0")])
    assert d.outcome == "normal" and st.llr == 0.0 and st.restarts == 1
    # Ham history is not a credit a later compromise can spend: four spam still decide.
    for i in range(4):
        d = s.step(st, 10.0 + i, [Evidence("content", s.params.content_llr(1.0), "p=1")])
    assert d.outcome == "compromised"


def test_sprt_state_roundtrip() -> None:
    s = Sprt(SprtParams())
    st = SprtState()
    s.step(st, 1.0, [Evidence("content", 1.2, "p=0.9"), Evidence("burst", 0.3, "40 msgs/h")])
    again = SprtState.from_dict(st.to_dict())
    assert again.llr == st.llr and list(again.recent) == list(st.recent)


def test_sprt_params_validated() -> None:
    with pytest.raises(ValueError):
        SprtParams(theta0=0.9, theta1=0.2)
    with pytest.raises(ValueError):
        SprtParams(alpha=0.7)
