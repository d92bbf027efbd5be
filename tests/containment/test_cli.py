"""`relayguard incidents ...` against an embedded store, with the relay's service applying the commands."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayguard.app.cli import cli
from relayguard.config import load_config
from relayguard.containment.cli import check_customer
from relayguard.containment.decisions import DecisionRecord
from relayguard.containment.factory import build
from relayguard.containment.release import FakePostsuper
from relayguard.containment.service import Containment
from relayguard.containment.states import ContainmentState


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "relayguard.toml"
    p.write_text(f'[storage]\ndata_dir = "{tmp_path}"\n\n[containment]\nrelay = "relay1"\n')
    return p


@pytest.fixture
def relay(cfg: Path) -> Containment:
    c = build(load_config(cfg), postsuper=FakePostsuper())
    c.escalate(
        "login:bob",
        ContainmentState.HELD,
        "sequential test: compromised",
        {"sprt": {"llr": 4.8, "upper": 4.6, "steps": 5}},
    )
    c.record(
        DecisionRecord(
            t=c.clock.now(),
            customer="login:bob",
            action="HOLD",
            relay="relay1",
            queue_id="4Xy7AbCdE",
            message_id="<spam1@bob.example>",
            client_ip="127.0.3.9",
            sasl_username="bob",
            state="held",
        )
    )
    c.add_evidence(
        "login:bob",
        message_id="<spam1@bob.example>",
        queue_id="4Xy7AbCdE",
        subject="Cheap meds",
        body="buy",
        rcpt_to=("a@example.org",),
        verdict="spam 17",
        action="HOLD",
    )
    return c


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["incidents", *args], catch_exceptions=False)
    return r.exit_code, r.output


def test_list_show_trace(relay: Containment, cfg: Path) -> None:
    code, out = run("list", "--config", str(cfg), "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["customer"], r["status"], r["current_state"]) for r in rows] == [("login:bob", "open", "held")]
    code, out = run("list", "--config", str(cfg))
    assert code == 0 and "login:bob" in out and "held" in out
    code, out = run("show", "login:bob", "--config", str(cfg), "--json")
    d = json.loads(out)
    assert d["sprt"]["llr"] == 4.8 and d["evidence_count"] == 1
    assert d["recent_decisions"][0]["queue_id"] == "4Xy7AbCdE"
    assert [e["kind"] for e in d["timeline"]] == ["transition", "evidence"]
    code, out = run("show", str(d["id"]), "--config", str(cfg))
    assert code == 0 and "normal -> held by detection" in out and "llr=4.8" in out
    code, out = run("trace", "--message-id", "spam1@bob.example", "--config", str(cfg), "--json")
    assert json.loads(out)[0]["customer"] == "login:bob"
    code, out = run("trace", "--queue-id", "4Xy7AbCdE", "--relay", "relay1", "--config", str(cfg))
    assert code == 0 and "login:bob" in out
    code, out = run("show", "login:nobody", "--config", str(cfg))
    assert code == 1


def test_release_whitelist_block_close(relay: Containment, cfg: Path) -> None:
    code, out = run("release", "login:bob", "--config", str(cfg), "--reason", "cleaned", "--json")
    assert code == 0 and json.loads(out)["queued"] is True
    assert relay.decide("login:bob").state is ContainmentState.HELD  # until the relay polls
    res = relay.poll()
    assert res[0].applied and res[0].released == ["4Xy7AbCdE"]
    assert relay.decide("login:bob").state is ContainmentState.NORMAL
    assert run("whitelist", "login:news", "--config", str(cfg))[0] == 0
    assert run("block", "login:evil", "--config", str(cfg), "--by", "abuse-desk")[0] == 0
    relay.poll()
    assert relay.decide("login:news").action.policy == "DUNNO"
    assert relay.decide("login:news").state is ContainmentState.WHITELISTED
    assert relay.decide("login:evil").action.policy == "REJECT"
    inc = relay.store.current_incident("login:evil")
    assert inc is not None and inc.transitions[0].data["evidence"]["by"] == "abuse-desk"
    code, _ = run("close", "login:evil", "--config", str(cfg))
    assert code == 0
    relay.poll()
    assert relay.store.current_incident("login:evil") is None
    code, out = run("list", "--status", "closed", "--config", str(cfg), "--json")
    assert "login:evil" in {r["customer"] for r in json.loads(out)}
    assert run("close", "login:evil", "--config", str(cfg))[0] == 1  # nothing open any more


def test_bad_input(cfg: Path) -> None:
    code, _ = run("release", "  ", "--config", str(cfg))
    assert code == 2
    code, _ = run("block", "x" * 400, "--config", str(cfg))
    assert code == 2
    code, _ = run("release", "login:a", "--reason", "bad\x00reason", "--config", str(cfg))
    assert code == 2


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_check_customer_fuzz(value: str) -> None:
    try:
        v = check_customer(value)
    except click.BadParameter:
        return
    assert v == v.strip() and 0 < len(v) <= 320 and v.isprintable()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["show", "close", "release", "block", "whitelist"]),
    st.text(max_size=60),
    st.sampled_from(["--message-id", "--queue-id", "--client"]),
    st.text(max_size=60),
)
def test_cli_hostile_arguments(cfg: Path, command: str, arg: str, flag: str, value: str) -> None:
    """Whatever the operator types, the CLI answers with a status (0, 1 or 2), never a traceback."""
    runner = CliRunner()
    for argv in (
        ["incidents", command, "--config", str(cfg), "--", arg],
        ["incidents", "trace", "--config", str(cfg), flag, value],
    ):
        r = runner.invoke(cli, argv)
        assert r.exit_code in (0, 1, 2), (argv, r.output, r.exception)
        assert r.exception is None or isinstance(r.exception, SystemExit), (argv, r.exception)


def test_show_prints_complaints_for_a_reader(relay: Containment, cfg: Path) -> None:
    from relayguard.arf.model import Complaint

    relay.attach_complaint(
        "login:bob",
        Complaint(
            key="k1",
            received_at=relay.clock.now(),
            status="matched",
            reporter="fbl@receiver.example",
            message_id="<spam1@bob.example>",
            source_ip="127.0.3.9",
            customer="login:bob",
            method="message-id",
            detail="decision log of relay1",
        ),
    )
    relay.attach_complaint("login:bob", {"note": "phoned in by a user"})
    code, out = run("show", "login:bob", "--config", str(cfg))
    assert code == 0
    lines = [x for x in out.splitlines() if " complaint " in x]
    assert len(lines) == 2
    assert "abuse report from fbl@receiver.example, traced by message-id (decision log of relay1)" in lines[0]
    assert "[message <spam1@bob.example>, source 127.0.3.9]" in lines[0]
    assert '{"note": "phoned in by a user"}' in lines[1]  # an unknown shape is shown whole, never dropped
