"""A private Postfix instance on loopback: own config and queue directories, high ports on 127.0.0.1.

Moved here from the front-end tests so the demo can run relayguard in front of a real Postfix
smarthost: it relays everything to a local sink (aiosmtpd) standing for the Internet, and can ask
relayguard as policy service and milter. SASL comes from a tiny Dovecot-auth-protocol server in this
process (`smtpd_sasl_type = dovecot`), so authenticated sessions (`{auth_authen}`, `sasl_username`)
are real Postfix behaviour. Needs root (`postfix set-permissions`) and the Debian postfix package.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SinkMessage:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


def available() -> str | None:
    """Why a private instance cannot run here, or None when it can."""
    if shutil.which("postfix") is None or shutil.which("postsuper") is None:
        return "Postfix is not installed"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (postfix set-permissions)"
    return None


class _SinkHandler:
    def __init__(self, store: list[SinkMessage]) -> None:
        self.store = store

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.store.append(
            SinkMessage(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))  # type: ignore[attr-defined]
        )
        return "250 2.0.0 Ok: stored"


class Sink:
    def __init__(self) -> None:
        self.messages: list[SinkMessage] = []
        self.port = free_port()
        self.controller = Controller(_SinkHandler(self.messages), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def subjects(self) -> list[str]:
        out = []
        for msg in self.messages:
            for line in msg.content.split(b"\n"):
                if line.lower().startswith(b"subject:"):
                    out.append(line[8:].strip().decode())
                    break
        return out


class _DovecotAuth(socketserver.StreamRequestHandler):
    """Enough of Dovecot's auth protocol 1.1 for Postfix: PLAIN and LOGIN against a dict of users."""

    users: ClassVar[dict[str, str]] = {}

    def handle(self) -> None:
        w = self.wfile
        w.write(
            b"VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t1\nCUID\t1\n"
            b"COOKIE\t" + b"0" * 32 + b"\nDONE\n"
        )
        w.flush()
        pending_login: dict[str, list[str]] = {}
        for raw in self.rfile:
            parts = raw.rstrip(b"\n").decode().split("\t")
            if parts[0] == "AUTH":
                rid, mech = parts[1], parts[2].upper()
                resp = next((p[5:] for p in parts if p.startswith("resp=")), None)
                if mech == "PLAIN":
                    if resp is None:
                        w.write(f"CONT\t{rid}\t\n".encode())
                        w.flush()
                        pending_login[rid] = ["PLAIN"]
                        continue
                    self._plain(rid, resp)
                else:
                    pending_login[rid] = []
                    w.write(f"CONT\t{rid}\t{base64.b64encode(b'Username:').decode()}\n".encode())
                    w.flush()
            elif parts[0] == "CONT":
                rid, data = parts[1], parts[2] if len(parts) > 2 else ""
                state = pending_login.get(rid, [])
                if state == ["PLAIN"]:
                    del pending_login[rid]
                    self._plain(rid, data)
                    continue
                state.append(base64.b64decode(data).decode())
                if len(state) == 1:
                    w.write(f"CONT\t{rid}\t{base64.b64encode(b'Password:').decode()}\n".encode())
                    w.flush()
                else:
                    del pending_login[rid]
                    self._result(rid, state[0], state[1])

    def _plain(self, rid: str, resp: str) -> None:
        try:
            _, user, password = base64.b64decode(resp).decode().split("\0")
        except ValueError:
            user, password = "", ""
        self._result(rid, user, password)

    def _result(self, rid: str, user: str, password: str) -> None:
        if self.users.get(user) == password:
            self.wfile.write(f"OK\t{rid}\tuser={user}\n".encode())
        else:
            self.wfile.write(f"FAIL\t{rid}\tuser={user}\n".encode())
        self.wfile.flush()


class DovecotAuthServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


MASTER_CF = """\
{smtp_port} inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class PostfixInstance:
    root: Path
    sink_port: int
    milter: str | None = None  # e.g. "inet:127.0.0.1:10450"
    policy: str | None = None  # e.g. "inet:127.0.0.1:10440"
    milter_default_action: str = "tempfail"
    policy_default_action: str = "451 4.3.5 Server configuration problem"
    users: dict[str, str] = field(default_factory=dict)
    smtp_port: int = field(default_factory=free_port)
    hostname: str = "relay.test"
    # The queue id is known only at END-OF-MESSAGE: containment's policy decider wants to be asked there too.
    policy_at_end_of_data: bool = False
    extra: dict[str, str] = field(default_factory=dict)  # more main.cf parameters

    def __post_init__(self) -> None:
        self.config = self.root / "etc"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.maillog = self.root / "maillog"
        self.auth_socket = self.queue / "private" / "auth"
        self._auth_server: DovecotAuthServer | None = None

    def main_cf(self) -> str:
        restrictions = []
        if self.policy:
            restrictions.append(f"check_policy_service {self.policy}")
        restrictions += ["permit_sasl_authenticated", "permit_mynetworks", "reject_unauth_destination"]
        lines = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue),
            "data_directory": str(self.data),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydomain": self.hostname.partition(".")[2] or "test",
            "myorigin": self.hostname,
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/24",  # 127.0.1.x-127.0.9.x are "customers" that must log in
            "relayhost": f"[127.0.0.1]:{self.sink_port}",
            "smtp_dns_support_level": "disabled",
            "smtpd_helo_required": "no",
            "smtpd_recipient_restrictions": ", ".join(restrictions),
            "smtpd_relay_restrictions": "permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination",
            "smtpd_policy_service_default_action": self.policy_default_action,
            "smtpd_policy_service_timeout": "10s",
            "smtpd_policy_service_try_limit": "2",
            "milter_default_action": self.milter_default_action,
            "milter_protocol": "6",
            "milter_connect_timeout": "5s",
            "milter_command_timeout": "10s",
            "milter_content_timeout": "30s",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.root),
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": "private/auth",
            "smtpd_tls_security_level": "none",
            "smtp_tls_security_level": "none",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "1000",
            "smtpd_hard_error_limit": "1000",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "shlib_directory": "/usr/lib/postfix",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "command_directory": "/usr/sbin",
            "meta_directory": "/etc/postfix",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
        }
        if self.milter:
            lines["smtpd_milters"] = self.milter
        lines.update(self.extra)
        if self.policy and self.policy_at_end_of_data:
            lines["smtpd_end_of_data_restrictions"] = f"check_policy_service {self.policy}"
        return "".join(f"{k} = {v}\n" for k, v in lines.items())

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=check)

    def write_config(self) -> None:
        self.config.mkdir(parents=True, exist_ok=True)
        (self.config / "main.cf").write_text(self.main_cf())
        (self.config / "master.cf").write_text(MASTER_CF.format(smtp_port=f"127.0.0.1:{self.smtp_port}"))

    def start(self) -> None:
        self.write_config()
        for d in (self.queue, self.data):
            d.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.data, "postfix")
        os.chmod(self.root, 0o755)
        self._run("postfix", "-c", str(self.config), "set-permissions")
        self._run("postfix", "-c", str(self.config), "check")
        (self.queue / "private").mkdir(exist_ok=True)
        _DovecotAuth.users = self.users
        self._auth_server = DovecotAuthServer(str(self.auth_socket), _DovecotAuth)
        os.chmod(self.auth_socket, 0o666)
        threading.Thread(target=self._auth_server.serve_forever, daemon=True).start()
        self._run("postfix", "-c", str(self.config), "start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.smtp_port), 1):
                return
            time.sleep(0.1)
        raise RuntimeError("postfix did not open its SMTP port:\n" + self.log())

    def reload(self) -> None:
        self.write_config()
        self._run("postfix", "-c", str(self.config), "reload")

    def stop(self) -> None:
        self._run("postfix", "-c", str(self.config), "stop", check=False)
        if self._auth_server is not None:
            self._auth_server.shutdown()
            self._auth_server.server_close()

    def flush(self) -> None:
        self._run("postqueue", "-c", str(self.config), "-f", check=False)

    def queue_entries(self) -> list[dict[str, object]]:
        out = self._run("postqueue", "-c", str(self.config), "-j", check=False).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def held(self) -> list[dict[str, object]]:
        return [e for e in self.queue_entries() if e.get("queue_name") == "hold"]

    def release_held(self) -> None:
        self._run("postsuper", "-c", str(self.config), "-H", "ALL")
        self.flush()

    def log(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except OSError:
            return ""

    def wait_queue_empty(self, timeout: float = 60.0, ignore_hold: bool = True) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = [e for e in self.queue_entries() if not (ignore_hold and e.get("queue_name") == "hold")]
            if not entries:
                return True
            self.flush()
            time.sleep(0.5)
        return False
