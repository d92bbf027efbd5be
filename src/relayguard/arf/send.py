"""Deliver reports: over SMTP to the configured abuse addresses (stdlib smtplib: one short
synchronous session per batch is all an abuse desk needs), or into a folder as `.eml` files.

A folder write is atomic (a temporary name, then rename), so a watcher never reads half a report.
"""

from __future__ import annotations

import hashlib
import logging
import os
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from relayguard.arf.settings import ArfSettings, split_hostport

log = logging.getLogger("relayguard.arf")


@dataclass(frozen=True, slots=True)
class Delivery:
    target: str  # "smtp:host:port" or a file path
    recipients: tuple[str, ...]
    ok: bool
    detail: str = ""


def send_smtp(
    messages: Sequence[bytes], from_addr: str, to_addrs: Sequence[str], settings: ArfSettings
) -> list[Delivery]:
    """Send each message to `to_addrs` in one SMTP session; per-message results, never an exception
    for a refusal (an unreachable server raises OSError / smtplib.SMTPException for the caller)."""
    host, port = split_hostport(settings.smtp_server)
    out: list[Delivery] = []
    with smtplib.SMTP(host, port, timeout=settings.smtp_timeout) as smtp:
        smtp.ehlo_or_helo_if_needed()
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        for msg in messages:
            try:
                refused = smtp.sendmail(from_addr, list(to_addrs), msg)
            except smtplib.SMTPRecipientsRefused as exc:
                out.append(Delivery(f"smtp:{host}:{port}", tuple(to_addrs), False, f"refused: {exc.recipients}"))
                continue
            except smtplib.SMTPResponseException as exc:
                out.append(
                    Delivery(f"smtp:{host}:{port}", tuple(to_addrs), False, f"{exc.smtp_code} {exc.smtp_error!r}")
                )
                continue
            ok = [a for a in to_addrs if a not in refused]
            out.append(
                Delivery(f"smtp:{host}:{port}", tuple(ok), bool(ok), f"refused: {sorted(refused)}" if refused else "")
            )
    for d in out:
        log.info(
            "arf report to %s via %s: %s %s", ",".join(d.recipients), d.target, "ok" if d.ok else "FAILED", d.detail
        )
    return out


def write_folder(messages: Sequence[bytes], folder: str | Path, to_addrs: Sequence[str] = ()) -> list[Delivery]:
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    out: list[Delivery] = []
    for msg in messages:
        name = "arf-" + hashlib.sha256(msg).hexdigest()[:20] + ".eml"
        tmp = d / f".{name}.tmp"
        tmp.write_bytes(msg)
        os.replace(tmp, d / name)
        out.append(Delivery(str(d / name), tuple(to_addrs), True))
    return out
