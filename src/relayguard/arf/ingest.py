"""Complaints in: files (`relayguard arf ingest PATH...`) and an SMTP/LMTP address (aiosmtpd).

For each report: parse it, compute its duplicate key, keep it (always: unmatched and unparseable ones
too), trace it to a customer (`match.Matcher`), and hand a new, matched complaint to every sink (the
customer's incident, detection as strong evidence). A duplicate is stored once and counted as a
duplicate; sinks see it once.

The listener answers 250 once the complaint is stored, 451 (never the exception text) when storing
failed, so the reporter retries instead of losing the complaint.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from relayguard.arf.match import Matcher, _mid
from relayguard.arf.model import Complaint, ParsedReport
from relayguard.arf.parse import ArfParseError, normalise_newlines, parse_headers, parse_report, split_head, unfold
from relayguard.arf.ports import ComplaintSink
from relayguard.arf.settings import ArfSettings
from relayguard.arf.store import ComplaintStore
from relayguard.core.clock import Clock, SystemClock

log = logging.getLogger("relayguard.arf")


# ---------------------------------------------------------------------------------------------------
# Duplicate key
# ---------------------------------------------------------------------------------------------------


def _canon_message(data: bytes) -> bytes:
    """The reported message with line endings, folding and white space runs normalised, so the same
    message forwarded twice (re-folded, CRLF vs LF) gives the same digest."""
    head, body = split_head(normalise_newlines(data))
    lines = []
    for name, value in parse_headers(head).items():
        lines.append(name.lower() + ":" + " ".join(unfold(str(value)).split()))
    return ("\n".join(lines)).encode("utf-8", "surrogateescape") + b"\n\n" + b" ".join(body.split())


def reporter_of(parsed: ParsedReport) -> str:
    r = parsed.report
    return (parsed.envelope.reporter or r.reporting_mta or r.user_agent or "").lower()


def complaint_key(parsed: ParsedReport) -> str:
    """sha256 over the reporter and the reported message (or, without one, the report's own fields)."""
    r = parsed.report
    h = hashlib.sha256(reporter_of(parsed).encode("utf-8", "replace") + b"\0")
    if r.original is not None and r.original.data.strip():
        h.update(_canon_message(r.original.data))
    else:
        for part in (r.feedback_type, r.source_ip, r.arrival_date, r.original_mail_from, *r.original_rcpt_to):
            h.update((part or "").encode("utf-8", "replace") + b"\0")
    return h.hexdigest()


def raw_key(raw: bytes) -> str:
    return "raw:" + hashlib.sha256(b" ".join(normalise_newlines(raw).split())).hexdigest()


# ---------------------------------------------------------------------------------------------------
# The ingester
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestResult:
    complaint: Complaint
    new: bool  # False: a duplicate of a complaint already kept

    @property
    def status(self) -> str:
        return self.complaint.status if self.new else "duplicate"


class Ingestor:
    def __init__(
        self,
        settings: ArfSettings,
        store: ComplaintStore,
        matcher: Matcher | None = None,
        sinks: Sequence[ComplaintSink] = (),
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.matcher = matcher or Matcher(settings)
        self.sinks = list(sinks)
        self.clock: Clock = clock or SystemClock()

    def ingest(self, raw: bytes, source: str = "") -> IngestResult:
        now = self.clock.now()
        try:
            parsed = parse_report(raw, self.settings.max_report_bytes)
        except ArfParseError as exc:
            c = Complaint(raw_key(raw), now, "unparseable", "", detail=str(exc), source=source)
            stored, new = self.store.add(c, raw)
            log.warning("complaint from %s unparseable (kept as #%s): %s", source or "?", stored.id, exc)
            return IngestResult(stored, new)
        r = parsed.report
        key = complaint_key(parsed)
        m = self.matcher.match(parsed)
        orig_mid = ""
        if r.original is not None and r.original.data:
            head = parse_headers(split_head(r.original.data)[0] if r.original.kind == "message" else r.original.data)
            orig_mid = _mid(str(head.get("Message-ID") or "")) or ""
        c = Complaint(
            key=key,
            received_at=now,
            status="matched" if m.matched else "unmatched",
            feedback_type=r.feedback_type,
            reporter=reporter_of(parsed),
            user_agent=r.user_agent or "",
            source_ip=r.source_ip or "",
            arrival=r.arrival_time,
            message_id=orig_mid,
            customer=m.customer or "",
            relay=m.relay,
            method=m.method,
            detail=m.detail,
            warnings=parsed.warnings,
            source=source,
        )
        stored, new = self.store.add(c, raw)
        if not new:
            log.info("duplicate complaint #%s (%s) from %s", stored.id, stored.reporter, source or "?")
            return IngestResult(stored, False)
        if m.customer is None:
            log.warning("complaint #%s from %s not traced to a customer: %s", stored.id, stored.reporter, m.detail)
            return IngestResult(stored, True)
        log.warning(
            "complaint #%s (%s from %s) traced to %s by %s",
            stored.id,
            r.feedback_type,
            stored.reporter,
            m.customer,
            m.method,
        )
        for sink in self.sinks:
            try:
                sink.complaint(m.customer, stored, m.t if m.t is not None else now)
            except Exception:
                # The complaint is stored; a failing sink must not lose it or stop the others.
                log.exception("complaint #%s: sink %s failed", stored.id, type(sink).__name__)
        return IngestResult(stored, True)

    def rematch(self) -> int:
        """Trace unmatched complaints again (after leases or the decision log caught up); returns how many matched."""
        n = 0
        for c in self.store.recent(status="unmatched", limit=100_000):
            raw = self.store.raw(c.id or 0)
            if raw is None:
                continue
            try:
                parsed = parse_report(raw, self.settings.max_report_bytes)
            except ArfParseError:
                continue
            m = self.matcher.match(parsed)
            if m.customer is None or c.id is None:
                continue
            self.store.set_match(c.id, m.customer, m.relay, m.method, m.detail)
            updated = replace(c, status="matched", customer=m.customer, relay=m.relay, method=m.method)
            for sink in self.sinks:
                try:
                    sink.complaint(m.customer, updated, m.t if m.t is not None else self.clock.now())
                except Exception:
                    log.exception("complaint #%s: sink %s failed", c.id, type(sink).__name__)
            n += 1
        return n


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------


def _split_mbox(data: bytes) -> list[bytes]:
    if not data.startswith(b"From "):
        return [data]
    # mboxo/mboxrd: a separator line follows an empty line ("From " in a body is quoted ">From ").
    starts = [0] + [m.start() + 2 for m in re.finditer(rb"\n\nFrom ", data)]
    return [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]


def iter_reports(paths: Sequence[str], errors: list[str]) -> Iterator[tuple[str, bytes]]:
    """(source, bytes) for every file under `paths` (directories recursively; mbox files split)."""
    for top in paths:
        p = Path(top)
        if p.is_dir():
            files = sorted(Path(root) / f for root, _, names in os.walk(p) for f in names)
        elif p.exists():
            files = [p]
        else:
            errors.append(f"{top}: no such file or directory")
            continue
        for f in files:
            try:
                data = f.read_bytes()
            except OSError as exc:
                errors.append(f"{f}: {exc.strerror or exc}")
                continue
            parts = _split_mbox(data)
            for i, part in enumerate(parts):
                yield (str(f) if len(parts) == 1 else f"{f}#{i}"), part


# ---------------------------------------------------------------------------------------------------
# SMTP / LMTP
# ---------------------------------------------------------------------------------------------------


class ArfHandler:
    """aiosmtpd handler: each message received is one complaint."""

    def __init__(self, ingestor: Ingestor, lmtp: bool = False) -> None:
        self.ingestor = ingestor
        self.lmtp = lmtp
        self.results: list[IngestResult] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        try:
            res = self.ingestor.ingest(data, f"{'lmtp' if self.lmtp else 'smtp'}:{peer}")
        except Exception:
            log.exception("complaint from %s could not be stored", peer)
            status = "451 4.3.0 Temporary failure, please try again later"
            return "\r\n".join([status] * max(1, len(envelope.rcpt_tos))) if self.lmtp else status
        self.results.append(res)
        status = f"250 2.0.0 Complaint {res.complaint.id} {res.status}"
        # LMTP answers once per recipient (RFC 2033).
        return "\r\n".join([status] * max(1, len(envelope.rcpt_tos))) if self.lmtp else status


def make_controller(ingestor: Ingestor, host: str, port: int, lmtp: bool = False) -> Any:
    """A started-on-demand aiosmtpd Controller (own thread and loop) for the complaint address."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.lmtp import LMTP
    from aiosmtpd.smtp import SMTP

    handler = ArfHandler(ingestor, lmtp)
    limit = ingestor.settings.max_report_bytes

    class _Controller(Controller):  # type: ignore[misc]
        def factory(self) -> Any:
            cls = LMTP if lmtp else SMTP
            return cls(self.handler, data_size_limit=limit, hostname="relayguard-arf", decode_data=False)

    return _Controller(handler, hostname=host, port=port)


async def serve(
    ingestor: Ingestor, host: str, port: int, lmtp: bool = False, auto: Any = None, poll: float = 60.0
) -> None:
    """Run the complaint listener in the current event loop until cancelled; with `auto` (an
    outgoing.AutoReporter) also report incidents automatically every `poll` seconds."""
    import asyncio

    from aiosmtpd.lmtp import LMTP
    from aiosmtpd.smtp import SMTP

    handler = ArfHandler(ingestor, lmtp)
    limit = ingestor.settings.max_report_bytes
    cls = LMTP if lmtp else SMTP
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: cls(handler, data_size_limit=limit, hostname="relayguard-arf", decode_data=False), host, port
    )
    log.warning("arf: receiving complaints by %s on %s:%d", "LMTP" if lmtp else "SMTP", host, port)

    async def reporter() -> None:
        while True:
            try:
                auto.poll(ingestor.clock.now())
            except Exception:
                log.exception("arf: automatic reports failed; retrying at the next poll")
            await asyncio.sleep(poll)

    task = asyncio.create_task(reporter()) if auto is not None else None
    try:
        async with server:
            await server.serve_forever()
    finally:
        if task is not None:
            task.cancel()
