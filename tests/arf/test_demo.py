"""The demo, end to end with the real pieces: containment's decision log and incidents (issue 8),
outbound identity with lease history (issue 7), the `relayguard arf` and `relayguard incidents`
commands. Complaints about leaked spam reach the right customer's incident, including a customer
whose dynamic address changed hands between the message and the complaint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import relayguard.containment.decisions as decisions_mod
import relayguard.containment.factory as containment_factory
from arf import scenario as sc
from arf.reference import read
from relayguard.app.cli import cli
from relayguard.arf.parse import parse_report
from relayguard.config import load_config


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, Path]:
    leases = tmp_path / "leases.txt"
    leases.write_text(
        f"Acct-Status-Type=Start User-Name=SUB-A Framed-IP-Address={sc.DYN_IP} Event-Timestamp={int(sc.T_LEASE_A)}\n"
        f"Acct-Status-Type=Stop User-Name=SUB-A Framed-IP-Address={sc.DYN_IP} Event-Timestamp={int(sc.T_SWITCH)}\n"
        f"Acct-Status-Type=Start User-Name=SUB-B Framed-IP-Address={sc.DYN_IP} Event-Timestamp={int(sc.T_SWITCH)}\n"
    )
    cfg = tmp_path / "relayguard.toml"
    cfg.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[outbound]\nlease_file = "{leases}"\n'
        f'[arf]\nrelay_hostnames = ["{sc.RELAY}"]\nrelay_networks = ["{sc.RELAY_IP}/32"]\n'
        f'report_from = "abuse@isp.example"\n'
    )
    return tmp_path, cfg


def test_complaints_reach_the_right_incident(env: tuple[Path, Path]) -> None:
    tmp, cfg = env
    settings = load_config(str(cfg))
    c = containment_factory.build(settings)
    rec = decisions_mod.DecisionRecord
    # What the relay logged when the spam went out: carol (SASL) and SUB-A (dynamic address).
    c.record(rec(sc.T_SPAM, "login:carol", "DUNNO", sc.RELAY, "QC1", "carol-1@laptop", "203.0.113.9", "carol"))
    for i in range(3):
        c.record(rec(sc.T_SPAM + i, "sub:SUB-A", "DUNNO", sc.RELAY, f"QA{i}", f"a{i}@pc7", sc.DYN_IP))
    c.record(rec(sc.T_SWITCH + 60, "sub:SUB-B", "DUNNO", sc.RELAY, "QB1", "b1@pc9", sc.DYN_IP))
    c.store.close()

    inbox = tmp / "fbl"
    inbox.mkdir()
    # 1. carol's spam, traced by Message-ID.
    (inbox / "1.eml").write_bytes(sc.complaint(sc.spam(1, "203.0.113.9", mid="carol-1@laptop", qid="QC1")))
    # 2. SUB-A's spam whose decision was purged: traced by our Received line + the lease history, at the
    #    message's time; the address belongs to SUB-B by now.
    (inbox / "2.eml").write_bytes(sc.complaint(sc.spam(2, mid="gone@pc7", qid="QGONE")))
    # 3. SUB-A again, traced by queue id (the reporter's copy lost its Message-ID).
    (inbox / "3.eml").write_bytes(sc.complaint(sc.spam(3, mid="", qid="QA1").replace(b"Message-ID: <>\n", b"")))
    # 4. a duplicate of 1 (the loop resent it), 5. a complaint about somebody else's mail.
    (inbox / "4.eml").write_bytes(sc.complaint(sc.spam(1, "203.0.113.9", mid="carol-1@laptop", qid="QC1")))
    (inbox / "5.eml").write_bytes(sc.complaint(b"Message-ID: <x@elsewhere>\n\nhi\n", source_ip="203.0.113.200"))

    runner = CliRunner()
    res = runner.invoke(cli, ["arf", "ingest", "--config", str(cfg), "--json", str(inbox)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    got = {Path(r["source"]).name: (r["status"], r["customer"], r["method"]) for r in rows}
    assert got == {
        "1.eml": ("matched", "login:carol", "message-id"),
        "2.eml": ("matched", "sub:SUB-A", "received"),
        "3.eml": ("matched", "sub:SUB-A", "queue-id"),
        "4.eml": ("duplicate", "login:carol", "message-id"),
        "5.eml": ("unmatched", "", "none"),
    }

    # The incidents: complaints beside the evidence, on the right customers, once each.
    c = containment_factory.build(load_config(str(cfg)))
    carol = c.store.current_incident("login:carol")
    sub_a = c.store.current_incident("sub:SUB-A")
    assert carol is not None and len(carol.complaints) == 1
    assert sub_a is not None and len(sub_a.complaints) == 2
    assert c.store.current_incident("sub:SUB-B") is None
    assert {e.data["method"] for e in sub_a.complaints} == {"received", "queue-id"}
    c.store.close()
    shown = runner.invoke(cli, ["incidents", "show", str(sub_a.id), "--config", str(cfg), "--json"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count('"complaint"') >= 2

    # Ingesting the same folder again changes nothing but the duplicate count.
    again = runner.invoke(cli, ["arf", "ingest", "--config", str(cfg), str(inbox)])
    assert again.exit_code == 0 and "5 duplicate" in again.output

    stats = runner.invoke(cli, ["arf", "stats", "--config", str(cfg), "--json", "--days", "100000"])
    assert stats.exit_code == 0, stats.output
    data = json.loads(stats.output)
    assert data["counts"] == {"matched": 3, "unmatched": 1, "unparseable": 0, "duplicates": 6, "total": 4}
    per = {r["customer"]: r for r in data["customers"]}
    assert per["sub:SUB-A"]["complaints"] == 2 and per["sub:SUB-A"]["messages"] == 3
    assert per["sub:SUB-A"]["rate"] == pytest.approx(2 / 3)
    assert per["login:carol"]["rate"] == 1.0
    assert data["relays"] == [{"relay": sc.RELAY, "complaints": 3, "share": 1.0, "messages": 5, "rate": 0.6}]
    text = runner.invoke(cli, ["arf", "stats", "--config", str(cfg), "--days", "100000"])
    assert "sub:SUB-A" in text.output and "per 1000 messages" in text.output


def test_report_an_incident_to_a_folder_and_by_smtp(env: tuple[Path, Path], tmp_path: Path) -> None:
    _, cfg = env
    settings = load_config(str(cfg))
    c = containment_factory.build(settings)
    rec = decisions_mod.DecisionRecord
    c.record(rec(sc.T_SPAM, "sub:SUB-A", "HOLD", sc.RELAY, "QA1", "a1@pc7", sc.DYN_IP, mail_from="sales@pills.example"))
    inc = c.store.open_incident("sub:SUB-A", sc.T_SPAM, "held", "test")
    c.add_evidence(
        "sub:SUB-A",
        t=sc.T_SPAM,
        message_id="a1@pc7",
        queue_id="QA1",
        mail_from="sales@pills.example",
        rcpt_to=("victim@yahoo.example",),
        subject="Cheap meds",
        body="Buy now",
        verdict="spam",
        action="HOLD",
    )
    c.store.close()
    out = tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(cli, ["arf", "report", str(inc.id), "--config", str(cfg), "--folder", str(out), "--json"])
    assert res.exit_code == 0, res.output
    files = sorted(out.glob("*.eml"))
    assert len(files) >= 1
    p = parse_report(files[0].read_bytes())
    assert p.report.source_ip == sc.DYN_IP and p.report.original is not None
    assert p.report.original.kind == "headers" and b"a1@pc7" in p.report.original.data
    assert b"victim@" not in files[0].read_bytes()  # redacted by default (RFC 6590)
    assert dict(read(files[0].read_bytes())["fields"])["Source-IP"] == sc.DYN_IP

    # A whole message by SMTP to a peer's abuse address (an aiosmtpd sink on loopback).
    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self) -> None:
            self.got: list[bytes] = []

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            self.got.append(envelope.original_content)  # type: ignore[attr-defined]
            return "250 OK"

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = Sink()
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        cfg.write_text(cfg.read_text() + f'smtp_server = "127.0.0.1:{port}"\n')
        msg = tmp_path / "spam.eml"
        msg.write_bytes(sc.spam(9, mid="a1@pc7"))
        res = runner.invoke(
            cli, ["arf", "report", "x", "--config", str(cfg), "--message", str(msg), "--to", "abuse@peer.example"]
        )
    finally:
        ctl.stop()
    assert res.exit_code == 0, res.output
    assert len(sink.got) == 1
    sent = parse_report(sink.got[0])
    assert sent.report.source_ip == sc.DYN_IP  # from the decision log, by Message-ID
    assert sent.report.original is not None and sent.report.original.kind == "message"
    assert sent.report.reported_uri == ("http://pills.example/buy",)
    assert sent.report.reporting_mta == sc.RELAY


@pytest.mark.parametrize("moment", ["opened", "contained"])
def test_automatic_mode_reports_each_incident_once(env: tuple[Path, Path], tmp_path: Path, moment: str) -> None:
    from relayguard.arf.outgoing import AutoReporter
    from relayguard.arf.ports import DecisionLogLookup
    from relayguard.arf.settings import ArfSettings
    from relayguard.arf.store import ComplaintStore

    _, cfg = env
    c = containment_factory.build(load_config(str(cfg)))
    rec = decisions_mod.DecisionRecord
    c.record(rec(sc.T_SPAM, "sub:SUB-A", "HOLD", sc.RELAY, "QA1", "a1@pc7", sc.DYN_IP))
    c.store.open_incident("sub:SUB-A", sc.T_SPAM, "watched", "test")
    c.add_evidence("sub:SUB-A", t=sc.T_SPAM, message_id="a1@pc7", queue_id="QA1", mail_from="s@pills.example")
    out = tmp_path / "auto"
    a = ArfSettings(auto=moment, folder=str(out))  # type: ignore[arg-type]
    auto = AutoReporter(a, c.store, ComplaintStore(":memory:"), DecisionLogLookup(c.store))
    first = auto.poll(sc.T_SPAM + 60)
    assert len(first) == (1 if moment == "opened" else 0)
    from relayguard.containment.states import ContainmentState

    c.escalate("sub:SUB-A", ContainmentState.HELD, "spam", t=sc.T_SPAM + 120)
    second = auto.poll(sc.T_SPAM + 180)
    assert len(second) == (0 if moment == "opened" else 1)
    assert auto.poll(sc.T_SPAM + 240) == []  # once per incident
    files = list(out.glob("*.eml"))
    assert len(files) == 1 and parse_report(files[0].read_bytes()).report.source_ip == sc.DYN_IP
    assert ArfSettings().auto == "off" and AutoReporter(ArfSettings(), c.store, ComplaintStore()).poll(0) == []
    c.store.close()


def test_arf_demo_command(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["--log-level", "ERROR", "arf", "demo", "--dir", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line for line in res.output.splitlines() if line.endswith(".eml") or ".eml " in line}
    assert "login:carol  message-id" in lines["1-yahoo-carol.eml"]
    assert "sub:SUB-A    received" in lines["2-aol-sub-a.eml"] and "lease history" in lines["2-aol-sub-a.eml"]
    assert "sub:SUB-A    queue-id" in lines["3-jmrp-sub-a.eml"]
    assert "duplicate" in lines["4-yahoo-resent.eml"] and "unmatched" in lines["5-not-ours.eml"]
    assert "login:carol 1, sub:SUB-A 2, sub:SUB-B 0" in res.output
    assert "it is sub:SUB-B's now" in res.output
