"""A private Postfix for tests: the instance, the sink and the Dovecot-auth stand-in live in
relayguard.demo.postfix (the demo runs the same relay); this module adds the swaks driver."""

from __future__ import annotations

import subprocess

from relayguard.demo.postfix import (
    DovecotAuthServer,
    PostfixInstance,
    Sink,
    SinkMessage,
    available,
    free_port,
)

__all__ = ["DovecotAuthServer", "PostfixInstance", "Sink", "SinkMessage", "available", "free_port", "swaks"]


def swaks(
    port: int,
    *,
    to: str = "rcpt@example.org",
    sender: str = "cust@isp.example",
    source: str = "127.0.0.1",
    auth: tuple[str, str] | None = None,
    subject: str = "test",
    body: str = "hello",
    headers: dict[str, str] | None = None,
    timeout: int = 60,
) -> tuple[int, str]:
    """Send one message with swaks; returns (exit status, transcript). swaks exits 0 on 250 after DATA."""
    cmd = [
        "swaks", "--server", "127.0.0.1", "--port", str(port), "--local-interface", source,
        "--to", to, "--from", sender, "--helo", "desktop.isp.example",
        "--header", f"Subject: {subject}", "--body", body, "--timeout", "60",
    ]  # fmt: skip
    for k, v in (headers or {}).items():
        cmd += ["--add-header", f"{k}: {v}"]
    if auth:
        cmd += ["--auth", "PLAIN", "--auth-user", auth[0], "--auth-password", auth[1]]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    return p.returncode, p.stdout + p.stderr
