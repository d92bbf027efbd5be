"""`relayguard arf demo`: feedback-loop complaints about leaked spam, traced to the right incident.

A self-contained run in a scratch directory: an ISP relay (smtp1.isp.example), three customers, the
relay's decision log and incidents (containment), the RADIUS lease history (outbound identity), and
five complaints in the shapes the big loops send. The twist: 198.51.100.7 was SUB-A's when its
infected PC sent spam, and SUB-B's by the time the complaints came in.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayguard.arf.build import Redaction, build_report
from relayguard.arf.model import FeedbackReport

RELAY = "smtp1.isp.example"
RELAY_IP = "192.0.2.25"
DYN_IP = "198.51.100.7"
CAROL_IP = "203.0.113.9"
T0 = 1_791_194_400.0  # Mon, 05 Oct 2026 10:00:00 +0000: the spam run
T_SWITCH = T0 + 3 * 3600  # the address passes from SUB-A to SUB-B
T_COMPLAINTS = T0 + 2 * 86400


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    reporter: str
    status: str
    customer: str
    method: str


def _spam(n: int, client_ip: str, t: float, qid: str, mid: str | None, helo: str = "pc7") -> bytes:
    lines = [
        f"Received: from {helo} (dyn.isp.example [{client_ip}])",
        f"\tby {RELAY} (Postfix) with ESMTP id {qid}",
        f"\tfor <victim{n}@mail.example>; {email.utils.formatdate(t)}",
        'From: "Pharmacy" <sales@pills.example>',
        f"To: victim{n}@mail.example",
        f"Subject: Cheap meds {n}",
    ]
    if mid:
        lines.append(f"Message-ID: <{mid}>")
    lines += [f"Date: {email.utils.formatdate(t - 2)}", "", "Buy now http://pills.example/buy", ""]
    return "\n".join(lines).encode()


def _report(original: bytes, agent: str, reporter: str, arrival: float) -> bytes:
    r = FeedbackReport(
        user_agent=agent,
        version="1",
        source_ip=RELAY_IP,  # the provider saw our relay, not the customer
        arrival_date=email.utils.formatdate(arrival),
        arrival_time=arrival,
        reported_domain=("pills.example",),
    )
    return build_report(
        r, from_addr=reporter, to_addrs=["fbl@isp.example"], original=original, redaction=Redaction(), date=arrival
    )


def _jmrp(original: bytes) -> bytes:
    """Microsoft JMRP style: no feedback part, the message in a multipart/mixed."""
    b = "jmrp-demo-boundary"
    head = (
        "From: staff@hotmail.example\nTo: fbl@isp.example\nSubject: complaint about message from "
        f'{RELAY_IP}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="{b}"\n\n'
        f"--{b}\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n"
        "X-HmXmrOriginalRecipient: victim3@mail.example\n"
        f"Received: from {RELAY} ([{RELAY_IP}]) by mx.hotmail.example with Microsoft SMTPSVC;\n"
        f"\t {email.utils.formatdate(T0 + 5)}\n"
    )
    return head.encode() + original + f"--{b}--\n".encode()


def complaints() -> list[tuple[str, bytes]]:
    carol = _spam(1, CAROL_IP, T0, "QC1", "carol-1@laptop", "laptop")
    sub_a_unlogged = _spam(2, DYN_IP, T0 - 3600, "QGONE", "not-logged@pc7")
    sub_a_qid = _spam(3, DYN_IP, T0 + 120, "QA1", None)
    yahoo = _report(carol, "Yahoo!-Mail-Feedback/2.0", "feedback@arf.yahoo.example", T0 + 10)
    return [
        ("1-yahoo-carol.eml", yahoo),
        ("2-aol-sub-a.eml", _report(sub_a_unlogged, "AOL SComp", "scomp@aol.example", T0 - 3590)),
        ("3-jmrp-sub-a.eml", _jmrp(sub_a_qid)),
        ("4-yahoo-resent.eml", yahoo),
        ("5-not-ours.eml", _report(b"Message-ID: <x@elsewhere>\n\nhi\n", "abusix/1", "no-reply@abusix.example", T0)),
    ]


def setup(workdir: Path) -> Path:
    """Write the configuration and lease file; returns the configuration path."""
    workdir.mkdir(parents=True, exist_ok=True)
    leases = workdir / "radius-accounting.log"
    leases.write_text(
        f"Acct-Status-Type=Start User-Name=SUB-A Framed-IP-Address={DYN_IP} Event-Timestamp={int(T0 - 86400)}\n"
        f"Acct-Status-Type=Stop User-Name=SUB-A Framed-IP-Address={DYN_IP} Event-Timestamp={int(T_SWITCH)}\n"
        f"Acct-Status-Type=Start User-Name=SUB-B Framed-IP-Address={DYN_IP} Event-Timestamp={int(T_SWITCH)}\n"
    )
    cfg = workdir / "relayguard.toml"
    cfg.write_text(
        f'[storage]\ndata_dir = "{workdir / "data"}"\n'
        f'[outbound]\nlease_file = "{leases}"\n'
        f'[containment]\nrelay = "{RELAY}"\n'
        f'[arf]\nrelay_hostnames = ["{RELAY}"]\nrelay_networks = ["{RELAY_IP}/32"]\nreport_from = "abuse@isp.example"\n'
    )
    return cfg


def run(workdir: Path) -> dict[str, Any]:
    """The whole demo; returns what happened (the CLI prints it, tests check it)."""
    from relayguard.arf.wiring import wire
    from relayguard.config import load_config
    from relayguard.containment.decisions import DecisionRecord
    from relayguard.core.clock import ManualClock

    settings = load_config(str(setup(workdir)))
    clock = ManualClock(T_COMPLAINTS)
    w = wire(settings, clock=clock)
    c = w.containment
    if c is None:
        raise RuntimeError("the demo needs containment (issue 8): " + "; ".join(w.notes))
    # What the relay logged while the spam went out. Message 2 (an hour earlier) is not in the log (the
    # log keeps 30 days, or the relay was not logging yet), so only the lease history can answer for it.
    c.record(DecisionRecord(T0, "login:carol", "DUNNO", RELAY, "QC1", "carol-1@laptop", CAROL_IP, "carol"))
    c.record(DecisionRecord(T0 + 120, "sub:SUB-A", "DUNNO", RELAY, "QA1", "", DYN_IP))
    c.record(DecisionRecord(T_SWITCH + 600, "sub:SUB-B", "DUNNO", RELAY, "QB1", "b1@pc9", DYN_IP))
    ing = w.ingestor(clock)
    rows = []
    for name, raw in complaints():
        res = ing.ingest(raw, name)
        k = res.complaint
        rows.append(Row(name, k.reporter, res.status, k.customer or "-", f"{k.method}: {k.detail}"))
    incidents = {}
    for customer in ("login:carol", "sub:SUB-A", "sub:SUB-B"):
        inc = c.store.current_incident(customer)
        incidents[customer] = 0 if inc is None else len(inc.complaints)
    holder_now = w.identity.holder(DYN_IP, T_COMPLAINTS) if w.identity is not None else None
    out = {"rows": rows, "incidents": incidents, "counts": w.store.counts(), "holder_now": holder_now}
    c.store.close()
    w.store.close()
    return out
