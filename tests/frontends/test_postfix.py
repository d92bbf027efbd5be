"""relayguard as policy service and milter of a real Postfix, driven by swaks, smtp-source and smtplib.

Every message is accounted for where it lands: the sink (aiosmtpd), Postfix's hold queue, a reply the
client saw (5xx: the client knows; 4xx: the client keeps it and retries), or a logged discard.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from postfix_instance import PostfixInstance, Sink, swaks

from conftest import Served

pytestmark = pytest.mark.peer

USERS = {"cust1@isp.example": "pw1", "cust2@isp.example": "pw2", "cust3@isp.example": "pw3"}


@pytest.fixture
def mta(served: Served) -> Iterator[tuple[PostfixInstance, Sink, Served]]:
    # Postfix's unprivileged daemons must reach the queue: pytest's tmp_path (0700) would not do.
    root = Path(tempfile.mkdtemp(prefix="relayguard-postfix-"))
    os.chmod(root, 0o755)
    sink = Sink()
    sink.start()
    pf = PostfixInstance(
        root,
        sink.port,
        milter=f"inet:127.0.0.1:{served.ports['milter']}",
        policy=f"inet:127.0.0.1:{served.ports['policy']}",
        users=USERS,
    )
    served.start()
    try:
        pf.start()
        yield pf, sink, served
    finally:
        pf.stop()
        sink.stop()
        served.stop()
        shutil.rmtree(root, ignore_errors=True)


def sink_by_subject(sink: Sink) -> dict[str, bytes]:
    out = {}
    for msg in sink.messages:
        for line in msg.content.split(b"\n"):
            if line.lower().startswith(b"subject:"):
                out[line[8:].strip().decode()] = msg.content
                break
    return out


def wait_for(cond: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_each_action_lands_where_expected(mta: tuple[PostfixInstance, Sink, Served]) -> None:
    pf, sink, _ = mta
    cases = ["none", "add header", "rewrite subject", "reject", "soft reject", "quarantine", "discard"]
    results = {}
    for case in cases:
        headers = {} if case == "none" else {"X-Test-Action": case}
        results[case] = swaks(pf.smtp_port, subject=f"act-{case}", headers=headers)
    pf.wait_queue_empty(30)
    got = sink_by_subject(sink)

    assert results["none"][0] == 0
    assert b"X-Spam-Status: No," in got["act-none"]
    assert b"Authentication-Results: relay.test;" in got["act-none"]
    assert b"X-Spam-Flag: YES" in got["act-add header"]
    assert "***SPAM*** act-rewrite subject" in got
    # Permanent and temporary refusals reach the client with our text; Postfix queued nothing.
    assert "550 5.7.1 test says reject" in results["reject"][1]
    assert "451 4.7.1 test says soft reject" in results["soft reject"][1]
    assert "act-reject" not in got and "act-soft reject" not in got
    # Quarantine: Postfix's hold queue; released, it is delivered (nothing lost).
    held = pf.held()
    assert len(held) == 1, (sorted(got), pf.queue_entries(), pf.log()[-3000:])
    assert "act-quarantine" not in got
    # Discard: accepted (250) and dropped, and Postfix logged it.
    assert results["discard"][0] == 0 and "act-discard" not in got
    assert "milter triggers DISCARD action" in pf.log()
    pf.release_held()
    assert wait_for(lambda: "act-quarantine" in sink_by_subject(sink))
    # 7 messages: 5 in the sink (none, add header, rewrite, quarantine after release), 2 refused to the
    # client; discard is the only one that lands nowhere, by the operator's choice.
    assert len(sink.messages) == 4


def test_sasl_sources_and_policy_rate_limit(mta: tuple[PostfixInstance, Sink, Served]) -> None:
    pf, sink, _ = mta
    for i, login in enumerate(["cust1@isp.example", "cust2@isp.example"]):
        rc, out = swaks(pf.smtp_port, source=f"127.0.2.{i + 1}", auth=(login, USERS[login]), subject=f"sasl-{i}")
        assert rc == 0, out
    # not authenticated, not in mynetworks: Postfix refuses to relay (the policy never says OK)
    rc, out = swaks(pf.smtp_port, source="127.0.3.1", subject="open-relay?")
    assert rc != 0 and "Relay access denied" in out
    # the per-login limit (5 RCPT) answers DEFER_IF_PERMIT after the fifth
    outcomes = []
    for i in range(7):
        rc, out = swaks(pf.smtp_port, source="127.0.2.9", auth=("cust3@isp.example", "pw3"), subject=f"rl-{i}")
        outcomes.append((rc, out))
    assert [rc == 0 for rc, _ in outcomes] == [True] * 5 + [False] * 2
    for _, out in outcomes[5:]:
        assert (
            "450 4.7.1 <rcpt@example.org>: Recipient address rejected: hourly outbound limit exceeded "
            "for cust3@isp.example" in out
        ), out[-600:]
    assert pf.wait_queue_empty(30)
    got = sink_by_subject(sink)
    assert b"smtp.auth=cust1@isp.example" in got["sasl-0"]
    assert b"smtp.auth=cust2@isp.example" in got["sasl-1"]
    assert {f"rl-{i}" for i in range(5)} <= set(got)
    assert "open-relay?" not in got and "rl-5" not in got


def test_smtp_source_volume(mta: tuple[PostfixInstance, Sink, Served]) -> None:
    pf, sink, _ = mta
    subprocess.run(
        ["smtp-source", "-c", "-m", "40", "-s", "4", "-l", "2000", "-f", "bulk@isp.example",
         "-t", "rcpt@example.org", f"127.0.0.1:{pf.smtp_port}"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert pf.wait_queue_empty(60)
    assert wait_for(lambda: len(sink.messages) == 40)
    assert all(b"X-Spam-Status:" in m.content for m in sink.messages)


def _send(port: int, subject: str, source: str = "127.0.0.1") -> int:
    msg = EmailMessage()
    msg["From"] = "cust@isp.example"
    msg["To"] = "rcpt@example.org"
    msg["Subject"] = subject
    msg.set_content("kill test\n")
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=(source, 0)) as s:
            s.send_message(msg)
        return 250
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code
    except smtplib.SMTPRecipientsRefused as exc:
        return next(iter(exc.recipients.values()))[0]
    except (smtplib.SMTPException, OSError):
        return 421  # connection trouble: the client still holds the message


def test_no_message_lost_when_relayguard_is_killed(mta: tuple[PostfixInstance, Sink, Served]) -> None:
    pf, sink, served = mta
    total = 40
    outcome: dict[str, int] = {}
    done = threading.Event()

    def client() -> None:
        for i in range(total):
            outcome[f"kill-{i}"] = _send(pf.smtp_port, f"kill-{i}")
        done.set()

    t = threading.Thread(target=client)
    t.start()
    assert wait_for(lambda: len(outcome) >= 8, 60)
    served.kill()  # SIGKILL in the middle of the run: no chance to finish anything
    time.sleep(1.0)
    served.start()
    assert done.wait(120)
    t.join()
    assert any(code // 100 == 4 for code in outcome.values()), "the kill should have cost some 4xx"
    assert all(code in (250,) or code // 100 == 4 for code in outcome.values()), outcome
    # What a client would do: retry every temporary failure (bounded).
    for _ in range(5):
        retry = [s for s, code in outcome.items() if code != 250]
        for subject in retry:
            outcome[subject] = _send(pf.smtp_port, subject)
    assert all(code == 250 for code in outcome.values()), outcome
    assert pf.wait_queue_empty(60)
    assert wait_for(lambda: set(sink_by_subject(sink)) >= set(outcome), 60)
    assert pf.held() == []
    # Nothing passed unscanned while relayguard was down (milter_default_action = tempfail).
    assert all(b"X-Spam-Status:" in m.content for m in sink.messages)
