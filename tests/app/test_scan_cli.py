"""`relayguard scan` end to end through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RELAYGUARD = [sys.executable, "-m", "relayguard.app"]
RELAY_KEYS = {
    "ip",
    "rdns",
    "helo",
    "by",
    "ident",
    "id",
    "envfrom",
    "auth",
    "trusted",
    "internal",
    "msa",
    "protocol",
    "time",
    "no_rdns",
    "dialect",
}
TOP_KEYS = {
    "path",
    "index",
    "action",
    "score",
    "symbols",
    "relays",
    "origin_ip",
    "authenticated",
    "unparsed_received",
}
ACTIONS = {"no action", "greylist", "add header", "rewrite subject", "soft reject", "reject", "quarantine", "discard"}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RELAYGUARD, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_json_contract_on_real_mail(samples: Path) -> None:
    r = run("scan", "--json", str(samples / "spam"))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == len(list((samples / "spam").iterdir()))
    for obj in lines:
        assert set(obj) >= TOP_KEYS
        assert obj["action"] in ACTIONS
        assert obj["index"] is None
        for rel in obj["relays"]:
            assert set(rel) == RELAY_KEYS
        for sym in obj["symbols"].values():
            assert set(sym) == {"score", "options"}
    assert sum(1 for o in lines if o["origin_ip"]) > len(lines) // 2


def test_mbox_and_maildir_and_unreadable_path(tmp_path: Path, samples: Path) -> None:
    msgs = sorted((samples / "ham").iterdir())[:3]
    mbox = tmp_path / "box.mbox"
    with mbox.open("wb") as f:
        for m in msgs:
            data = m.read_bytes()
            if not data.startswith(b"From "):
                data = b"From x@example.com Mon Jan  1 00:00:00 2001\n" + data
            f.write(data.rstrip(b"\n") + b"\n\n")
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i, m in enumerate(msgs[:2]):
        (md / "new" / f"{i}.host").write_bytes(m.read_bytes())
    r = run("scan", "--json", str(mbox), str(md), str(tmp_path / "missing"))
    assert r.returncode == 1
    assert "missing" in r.stderr
    objs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["index"] for o in objs if o["path"] == str(mbox)] == [0, 1, 2]
    assert [o["index"] for o in objs if o["path"] == str(md)] == [0, 1]


def test_unreadable_file_does_not_stop_the_scan(tmp_path: Path, samples: Path) -> None:
    if os.geteuid() == 0:
        # root reads everything; a dangling symlink is unreadable for root too.
        (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    else:
        p = tmp_path / "secret"
        p.write_bytes(b"Subject: x\n\n")
        p.chmod(0)
    good = tmp_path / "good.eml"
    good.write_bytes((samples / "ham" / "easy_ham.00001.7c53336b37003a9286aba55d2945844c").read_bytes())
    r = run("scan", "--json", str(tmp_path))
    assert r.returncode == 1
    assert len(r.stdout.splitlines()) == 1


def test_bad_config_is_exit_2(tmp_path: Path, samples: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[trust]\ntrusted_networks = ['not-a-net']\n")
    r = run("scan", "--config", str(cfg), str(samples))
    assert r.returncode == 2 and "trust.trusted_networks" in r.stderr
    assert run("scan").returncode == 2


def test_table_output(samples: Path) -> None:
    r = run("scan", str(samples / "ham" / "easy_ham.00001.7c53336b37003a9286aba55d2945844c"))
    assert r.returncode == 0 and "no action" in r.stdout and "1 messages" in r.stdout


def test_demo_runs_offline_on_the_shipped_sample() -> None:
    r = run("demo")
    assert r.returncode == 0, r.stderr
    assert "238 messages" in r.stdout


def test_json_says_which_hops_had_no_reverse_dns(tmp_path: Path) -> None:
    # Sendmail looked the client up and found no name: SpamAssassin's no_reverse_dns; the hop above
    # has a name, and an address-only qmail line says nothing either way.
    msg = tmp_path / "m.eml"
    msg.write_bytes(
        b"Received: from ratree.psu.ac.th (delta.coe.psu.ac.th [172.30.0.98]) by mx2.example.org"
        b" (8.11.6/8.11.6) with ESMTP id g7MBWel29762; Thu, 22 Aug 2002 18:32:40 +0700\n"
        b"Received: from ratree.psu.ac.th ([202.28.97.6]) by mx1.example.org (8.11.6/8.11.6)"
        b" with SMTP id g7MBIhl25223; Thu, 22 Aug 2002 07:18:55 -0400\n"
        b"From: a@example.org\nTo: b@example.org\nSubject: hi\n\nhello\n"
    )
    r = run("scan", "--json", str(msg))
    assert r.returncode == 0, r.stderr
    relays = json.loads(r.stdout)["relays"]
    assert [(x["ip"], x["no_rdns"]) for x in relays] == [("172.30.0.98", False), ("202.28.97.6", True)]
    assert all(x["dialect"] == "sendmail" for x in relays)
