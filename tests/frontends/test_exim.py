"""Real Exim (unpacked by scripts/unpack-exim, never installed) asking relayguard's spamd front end.

Exim's `spamd_address` speaks SpamAssassin's protocol (`REPORT SPAMC/1.2`) or, with `variant=rspamd`,
Rspamd's legacy `CHECK RSPAMC/1.3`; both land on relayguard's spamd port. Exim runs `-bs` (SMTP on its
stdin) with its own `-C` configuration, spool and log, and queues what it accepts (`-odq`): the
headers the ACL added are read from the spool's `-H` files. (Delivering would re-exec Exim as root from
an unpacked tree, where the dynamic loader ignores LD_LIBRARY_PATH.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from postfix_instance import Sink

from conftest import Served, free_port, write_config

pytestmark = pytest.mark.peer

ROOT = Path(__file__).resolve().parents[2]

CONF = """\
exim_user = Debian-exim
exim_group = Debian-exim
primary_hostname = exim.test
spool_directory = {spool}
log_file_path = {log}/%slog
exim_path = {exim}
keep_environment = LD_LIBRARY_PATH : LD_PRELOAD : NSS_WRAPPER_PASSWD : NSS_WRAPPER_GROUP
never_users =
spamd_address = 127.0.0.1 {spamd_port}{variant} retry=0s tmo=30s
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data

begin acl
acl_rcpt:
  accept
acl_data:
  warn    spam       = nobody:true/defer_ok
          add_header = X-Spam-Score: $spam_score
          add_header = X-Spam-Action: $spam_action
  defer   condition  = ${{if eq{{$spam_action}}{{soft reject}}}}
          message    = 451 4.7.1 Try again later
  deny    condition  = ${{if eq{{$spam_action}}{{reject}}}}
          message    = 550 5.7.1 Message rejected as spam
  accept

begin routers
sink:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = to_sink

begin transports
to_sink:
  driver = smtp
  port = {sink_port}
  allow_localhost
  hosts_try_chunking =
  hosts_try_prdr =
"""


@pytest.fixture(scope="module")
def exim_root() -> Path:
    out = subprocess.run([str(ROOT / "scripts" / "unpack-exim")], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()) / "tree"


class Exim:
    def __init__(self, root: Path, work: Path, spamd_port: int, sink_port: int, variant: str) -> None:
        self.root = root
        self.work = work
        spool, log = work / "spool", work / "log"
        for d in (spool, log):
            d.mkdir(parents=True)
            os.chown(d, 65534, 65534)
        self.conf = work / "exim.conf"
        self.conf.write_text(
            CONF.format(
                spool=spool,
                log=log,
                spamd_port=spamd_port,
                sink_port=sink_port,
                variant=variant,
                exim=root / "usr/sbin/exim4",
            )
        )
        (work / "passwd").write_text(Path("/etc/passwd").read_text() + "Debian-exim:x:65534:65534::/tmp:/bin/false\n")
        (work / "group").write_text(Path("/etc/group").read_text() + "Debian-exim:x:65534:\n")
        self.log = log
        libs = [str(root / "usr/lib/x86_64-linux-gnu"), str(root / "usr/lib")]
        self.env = dict(
            os.environ,
            LD_LIBRARY_PATH=os.pathsep.join(libs),
            LD_PRELOAD=str(root / "usr/lib/x86_64-linux-gnu/libnss_wrapper.so"),
            NSS_WRAPPER_PASSWD=str(work / "passwd"),
            NSS_WRAPPER_GROUP=str(work / "group"),
        )

    def smtp(self, subject: str, extra_header: str = "") -> str:
        """One SMTP session on `exim -bs`, queue only; returns the transcript."""
        msg = (
            f"From: cust@isp.example\r\nTo: rcpt@example.org\r\nSubject: {subject}\r\n"
            f"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{subject}@isp.example>\r\n"
            f"{extra_header}\r\nhello\r\n"
        )
        script = (
            "EHLO client.test\r\nMAIL FROM:<cust@isp.example>\r\nRCPT TO:<rcpt@example.org>\r\nDATA\r\n"
            + msg + ".\r\nQUIT\r\n"
        )  # fmt: skip
        p = subprocess.run(
            [str(self.root / "usr/sbin/exim4"), "-C", str(self.conf), "-odq", "-oMa", "198.18.0.5", "-bs"],
            input=script.encode(), capture_output=True, env=self.env, timeout=120, check=False,
        )  # fmt: skip
        return (p.stdout + p.stderr).decode("utf-8", "replace")

    def queued(self) -> dict[str, str]:
        """Subject -> the spool header file of each queued message."""
        out = {}
        for f in (self.work / "spool" / "input").rglob("*-H"):
            text = f.read_text(errors="replace")
            for line in text.splitlines():
                if "Subject: " in line:
                    out[line.split("Subject: ", 1)[1].strip()] = text
        return out

    def logs(self) -> str:
        return "".join(f.read_text(errors="replace") for f in self.log.glob("*log"))


@pytest.fixture(params=["", " variant=rspamd"], ids=["spamassassin", "rspamd"])
def exim(request: pytest.FixtureRequest, exim_root: Path, tmp_path: Path) -> Iterator[tuple[Exim, Sink, Served]]:
    port = free_port()
    cfg = tmp_path / "relayguard.toml"
    write_config(cfg, {"spamd": port})
    served = Served(cfg, {"spamd": port}, tmp_path / "relayguard.log")
    served.start()
    sink = Sink()  # unused while Exim only queues; kept so the route stays valid
    sink.start()
    work = Path(tempfile.mkdtemp(prefix="relayguard-exim-"))
    os.chmod(work, 0o755)
    try:
        yield Exim(exim_root, work, port, sink.port, request.param), sink, served
    finally:
        sink.stop()
        served.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_exim_asks_relayguard(exim: tuple[Exim, Sink, Served]) -> None:
    ex, _, served = exim
    rspamd = "variant=rspamd" in ex.conf.read_text()
    out = ex.smtp("ham")
    assert "250 OK id=" in out, out + ex.logs()
    out_spam = ex.smtp("spam", "X-Test-Action: reject\r\n")
    queued = ex.queued()
    assert "X-Spam-Score: " in queued["ham"], queued["ham"]
    assert "cannot parse" not in ex.logs(), ex.logs()
    if rspamd:
        # Rspamd's variant carries the action: the ACL refuses with the text configured there.
        assert "X-Spam-Action: no action" in queued["ham"]
        assert "550 5.7.1 Message rejected as spam" in out_spam, out_spam + ex.logs()
        assert "spam" not in queued
    else:
        # SpamAssassin's variant carries score and threshold only; $spam_action is derived by Exim.
        assert "250 OK id=" in out_spam and "spam" in queued
    # relayguard down: /defer_ok lets the ACL go on as if ham; the message is queued, not refused.
    served.stop()
    out = ex.smtp("unchecked")
    assert "250 OK id=" in out, out + ex.logs()
    assert "unchecked" in ex.queued()
