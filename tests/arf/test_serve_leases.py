"""`relayguard arf serve` as an operator runs it: complaints about addresses leased after it started
are traced, because it follows `[outbound] lease_file` while it runs."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from arf import scenario as sc
from peers import free_port, wait_port
from relayguard.arf.store import ComplaintStore


def _send(port: int, report: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.sendmail("feedback@arf.yahoo.example", ["fbl@isp.example"], report)


def _statuses(db: Path) -> dict[str, str]:
    store = ComplaintStore(db)
    return {c.message_id: f"{c.status} {c.customer}".strip() for c in store.recent()}


def test_serve_follows_the_lease_file(tmp_path: Path) -> None:
    leases = tmp_path / "radius.log"
    leases.write_text("# RADIUS accounting, appended by the NAS\n")
    port = free_port()
    cfg = tmp_path / "relayguard.toml"
    cfg.write_text(
        f'[storage]\ndata_dir = "{tmp_path}"\n\n'
        f'[outbound]\nlease_file = "{leases}"\n\n'
        f'[arf]\nlisten = "127.0.0.1:{port}"\nrelay_hostnames = ["{sc.RELAY}"]\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "relayguard.app", "arf", "serve", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port)
        # 1. Before the NAS has said who holds the address: kept, but not traced.
        _send(port, sc.complaint(sc.spam(1, mid="before@pc7")))
        # 2. The NAS appends the lease; the running server must pick it up without a restart.
        with leases.open("a") as fh:
            fh.write(
                f"Acct-Status-Type=Start User-Name=SUB-A Framed-IP-Address={sc.DYN_IP} "
                f"Event-Timestamp={int(sc.T_LEASE_A)}\n"
            )
        db = tmp_path / "arf.sqlite3"
        deadline = time.monotonic() + 20
        n = 0
        while time.monotonic() < deadline:
            n += 1
            _send(port, sc.complaint(sc.spam(1 + n, mid=f"after{n}@pc7")))
            if _statuses(db).get(f"after{n}@pc7", "").startswith("matched"):
                break
            time.sleep(0.5)
        got = _statuses(db)
        assert got["before@pc7"].startswith("unmatched")
        assert got[f"after{n}@pc7"] == "matched sub:SUB-A"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
