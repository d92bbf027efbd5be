"""The end-to-end demo on the embedded path (no sockets at the relay, no Postfix): every message accounted
for, every infected customer contained and listed, the neighbour refuses the spam that left, held
legitimate mail released intact; the CLI exits 0 and prints the accounting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relayguard.app.demo_cmd import demo
from relayguard.demo.run import DemoConfig, run_demo
from relayguard.demo.world import build_world

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "corpus"


@pytest.fixture(autouse=True)
def _private_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def assert_demo_story(r: dict[str, Any]) -> None:
    m = r["messages"]
    assert r["ok"], r["problems"]
    assert m["unaccounted"] == 0
    assert m["submitted"] == m["delivered"] + m["released_then_delivered"] + m["held"] + m["refused"] + m["deferred"]
    assert r["infected_contained"] == r["infected"] and r["infected_listed"] == r["infected"]
    assert r["legit"]["refused_or_deferred_at_relay"] == 0
    assert r["legit"]["still_held"] == 0
    assert r["legit"]["held_then_released"] >= 1  # the mistaken complaint's customer
    assert r["legit"]["released_intact"] == r["legit"]["held_then_released"]
    assert r["legit"]["refused_by_receiver"] == 0  # the neighbours' mail flows
    sp = r["spam"]
    assert sp["left_the_isp"] > 0 and sp["refused_by_receiver"] == sp["left_the_isp"]
    assert sp["held"] > 0 and sp["refused_at_relay"] > 0
    assert set(r["receiver"]["reasons"]) == {"RBL_ISP_EXPLOITED"}
    per = {p["customer"]: p for p in r["per_customer"]}
    assert sum(p["submitted"] for p in per.values()) == m["submitted"]
    for p in per.values():
        if p["role"] == "infected":
            assert p["state"] == "blocked" and p["listed"] and p["contained_after_spam"] is not None
        else:
            assert p["state"] == "normal" and p["refused"] == 0 and p["held"] == 0


def test_world_is_deterministic_for_a_seed() -> None:
    a = build_world(SAMPLES, 12, 3, seed=5)
    b = build_world(SAMPLES, 12, 3, seed=5)
    assert [(s.customer, s.spam, s.message_id, s.data) for s in a.plan] == [
        (s.customer, s.spam, s.message_id, s.data) for s in b.plan
    ]
    assert sum(c.infected for c in a.customers) == 3
    assert all(b"\nReceived:" not in s.data and not s.data.startswith(b"Received:") for s in a.plan)


def test_embedded_demo_accounts_for_every_message(tmp_path: Path) -> None:
    cfg = DemoConfig(SAMPLES, customers=20, infected=3, seed=2, mode="embedded", workdir=tmp_path / "w")
    r = run_demo(cfg)
    assert r["mode"] == "embedded"
    assert_demo_story(r)
    # the same seed, the same story
    again = run_demo(DemoConfig(SAMPLES, customers=20, infected=3, seed=2, mode="embedded", workdir=tmp_path / "w2"))
    assert again["messages"] == r["messages"] and again["spam"] == r["spam"]


def test_demo_cli_embedded(tmp_path: Path) -> None:
    res = CliRunner().invoke(demo, ["--mode", "embedded", "--customers", "12", "--infected", "2",
                                    "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "every message accounted for" in res.output
    assert "customer by customer" in res.output and "RBL_ISP_EXPLOITED" in res.output
    assert "relayguard on 238 real messages" in res.output  # the sample scan stays as the first section


def test_demo_cli_scan_only() -> None:
    res = CliRunner().invoke(demo, ["--scan-only"])
    assert res.exit_code == 0, res.output
    assert "relayguard on 238 real messages" in res.output and "customer by customer" not in res.output
