"""`relayguard arf report|ingest|serve|stats|rematch`: abuse reports out, feedback-loop complaints in.

Exit status: 0 done, 1 some input or delivery failed, 2 usage or configuration error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from relayguard.config import load_config
from relayguard.config.schema import Settings
from relayguard.core.errors import ConfigError


def _settings(config_path: str | None) -> Settings:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        click.echo(f"{exc.source}: invalid configuration:", err=True)
        for p in exc.problems:
            click.echo(f"  {p}", err=True)
        sys.exit(2)


def _ts(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + "Z"


_CONFIG = click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML file over the defaults.")
_JSON = click.option("--json", "as_json", is_flag=True, help="JSON output (a stable contract).")


@click.group()
def arf() -> None:
    """Abuse reports (RFC 5965 ARF): send them to peers, take in feedback-loop complaints."""


@arf.command()
@_CONFIG
@_JSON
@click.option(
    "--to", "to_addrs", multiple=True, help="Abuse address to send to (repeatable); default [arf] abuse_addresses."
)
@click.option(
    "--folder", type=click.Path(file_okay=False), help="Write the reports as .eml files here instead of sending."
)
@click.option(
    "--message",
    "message_files",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="A reported message (RFC 822 file) to attach whole; repeatable. Without it the incident's evidence is used.",
)
@click.option("--client-ip", default="", help="Source-IP for --message reports (default: from the decision log).")
@click.argument("incident")
def report(
    config_path: str | None,
    as_json: bool,
    to_addrs: tuple[str, ...],
    folder: str | None,
    message_files: tuple[str, ...],
    client_ip: str,
    incident: str,
) -> None:
    """Write RFC 5965 reports about INCIDENT (an incident id) and send or store them."""
    from relayguard.arf.outgoing import ReportedMessage, deliver, messages_from_incident, reports_for
    from relayguard.arf.parse import header_str, parse_headers, split_head
    from relayguard.arf.wiring import wire

    settings = _settings(config_path)
    w = wire(settings, detection=False)
    a = w.settings
    msgs: list[ReportedMessage] = []
    if message_files:
        from relayguard.message.parse import parse_message

        for f in message_files:
            raw = Path(f).read_bytes()
            head = parse_headers(split_head(raw.replace(b"\r\n", b"\n"))[0])
            mid = (header_str(head, "Message-ID") or "").strip("<> ")
            ip = client_ip
            relay = ""
            if not ip and w.decisions is not None and mid:
                traces = list(w.decisions.by_message_id(mid))
                if traces:
                    ip, relay = traces[0].client_ip, traces[0].relay
            urls = tuple(u.url for u in parse_message(raw, settings).urls)
            msgs.append(ReportedMessage(raw=raw, client_ip=ip, relay=relay, message_id=mid, urls=urls))
    else:
        if w.containment is None or not incident.isdigit():
            click.echo("relayguard arf report: no incident store or no such incident id; use --message FILE", err=True)
            sys.exit(2)
        inc = w.containment.store.get_incident(int(incident))
        if inc is None:
            click.echo(f"relayguard arf report: no incident {incident}", err=True)
            sys.exit(1)
        msgs = messages_from_incident(inc, w.decisions)
    if not msgs:
        click.echo(f"relayguard arf report: incident {incident} has no messages to report", err=True)
        sys.exit(1)
    targets = list(to_addrs) or list(a.abuse_addresses)
    reports = reports_for(msgs, a, targets or ["abuse@invalid"])
    try:
        done = deliver(reports, a, targets, folder)
    except (OSError, ValueError) as exc:
        click.echo(f"relayguard arf report: {exc}", err=True)
        sys.exit(1)
    if as_json:
        rows = [{"target": d.target, "recipients": list(d.recipients), "ok": d.ok, "detail": d.detail} for d in done]
        click.echo(json.dumps({"incident": incident, "reports": rows}))
    else:
        for d in done:
            state = "sent" if d.ok else "FAILED"
            click.echo(f"{state} {d.target} {','.join(d.recipients)} {d.detail}".rstrip())
    sys.exit(0 if all(d.ok for d in done) else 1)


@arf.command()
@_CONFIG
@_JSON
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def ingest(config_path: str | None, as_json: bool, paths: tuple[str, ...]) -> None:
    """Take in complaint reports from PATHS (files, directories, mbox files)."""
    from relayguard.arf.ingest import iter_reports
    from relayguard.arf.wiring import wire

    settings = _settings(config_path)
    w = wire(settings)
    ing = w.ingestor()
    errors: list[str] = []
    counts: dict[str, int] = {}
    for source, data in iter_reports(list(paths), errors):
        res = ing.ingest(data, source)
        counts[res.status] = counts.get(res.status, 0) + 1
        c = res.complaint
        if as_json:
            click.echo(json.dumps({**c.to_dict(), "source": source, "status": res.status, "first_source": c.source}))
        else:
            who = c.customer or "-"
            how = c.method or c.detail
            click.echo(
                f"{source}: #{c.id} {res.status} {c.feedback_type or '-'} from {c.reporter or '?'} -> {who} ({how})"
            )
    if not as_json:
        click.echo(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no reports")
    for e in errors:
        click.echo(f"relayguard arf ingest: {e}", err=True)
    sys.exit(1 if errors else 0)


@arf.command()
@_CONFIG
@click.option("--listen", default=None, help="host:port to receive complaints on (default [arf] listen).")
@click.option("--lmtp", is_flag=True, default=None, help="Speak LMTP instead of SMTP.")
def serve(config_path: str | None, listen: str | None, lmtp: bool | None) -> None:
    """Receive complaints by SMTP or LMTP (point the feedback-loop address's delivery here)."""
    from relayguard.arf.ingest import serve as run
    from relayguard.arf.settings import split_hostport
    from relayguard.arf.wiring import wire

    settings = _settings(config_path)
    w = wire(settings)
    where = listen or w.settings.listen
    if not where:
        click.echo("relayguard arf serve: no address: pass --listen HOST:PORT or set [arf] listen", err=True)
        sys.exit(2)
    try:
        host, port = split_hostport(where, 25)
    except ValueError as exc:
        click.echo(f"relayguard arf serve: {exc}", err=True)
        sys.exit(2)
    auto = None
    if w.settings.auto != "off" and w.containment is not None:
        from relayguard.arf.outgoing import AutoReporter

        auto = AutoReporter(w.settings, w.containment.store, w.store, w.decisions)
    lease_file = settings.outbound.lease_file
    leases = getattr(getattr(w.identity, "resolver", None), "leases", None)

    async def main() -> None:
        follow: asyncio.Task[None] | None = None
        if lease_file and leases is not None:
            # Complaints arrive days after the mail: the lease history must keep growing while we run,
            # or every address leased since start-up would stay untraceable. The relay's `serve` owns
            # the lease socket; a file can be followed by any number of readers.
            from relayguard.outbound.leasefeed import LeaseFeed

            follow = asyncio.create_task(LeaseFeed(leases).follow_file(lease_file))
        try:
            await run(w.ingestor(), host, port, w.settings.lmtp if lmtp is None else lmtp, auto)
        finally:
            if follow is not None:
                follow.cancel()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def stats_data(w: Any, since: float) -> dict[str, Any]:
    """Complaint counts and rates (complaints per message sent, where the decision log can count)."""
    counts = w.store.counts(since)
    per_customer = getattr(w.decisions, "messages", None)
    per_relay = getattr(w.decisions, "relay_messages", None)
    customers = []
    for customer, n in w.store.by_customer(since):
        sent = per_customer(customer, since) if per_customer is not None else None
        customers.append({"customer": customer, "complaints": n, "messages": sent, "rate": n / sent if sent else None})
    total_matched = counts["matched"] or 1
    relays = []
    for r, n in w.store.by_relay(since):
        sent = per_relay(r, since) if per_relay is not None else None
        relays.append(
            {
                "relay": r,
                "complaints": n,
                "share": n / total_matched,
                "messages": sent,
                "rate": n / sent if sent else None,
            }
        )
    return {"since": since, "counts": counts, "customers": customers, "relays": relays}


@arf.command()
@_CONFIG
@_JSON
@click.option("--days", default=30.0, show_default=True, help="Window: complaints received in the last DAYS.")
def stats(config_path: str | None, as_json: bool, days: float) -> None:
    """Complaints kept, matched and not, and the complaint rate per customer and per relay."""
    from relayguard.arf.wiring import wire

    settings = _settings(config_path)
    w = wire(settings, detection=False)
    data = stats_data(w, time.time() - days * 86400)
    if as_json:
        click.echo(json.dumps(data))
        return
    c = data["counts"]
    click.echo(
        f"complaints since {_ts(data['since'])}: {c['total']} ({c['matched']} matched, {c['unmatched']} unmatched, "
        f"{c['unparseable']} unparseable; {c['duplicates']} duplicate copies counted once)"
    )
    if data["customers"]:
        click.echo("per customer:")
        for row in data["customers"]:
            rate = "n/a" if row["rate"] is None else f"{1000 * row['rate']:.2f} per 1000 messages"
            click.echo(f"  {row['customer']:<30} {row['complaints']:>6}  {rate}")
    if data["relays"]:
        click.echo("per relay:")
        for row in data["relays"]:
            rate = "" if row["rate"] is None else f", {1000 * row['rate']:.2f} per 1000 messages"
            click.echo(f"  {row['relay']:<30} {row['complaints']:>6}  {100 * row['share']:.1f}% of matched{rate}")


@arf.command()
@_CONFIG
def rematch(config_path: str | None) -> None:
    """Trace unmatched complaints again (after lease records or the decision log caught up)."""
    from relayguard.arf.wiring import wire

    settings = _settings(config_path)
    n = wire(settings).ingestor().rematch()
    click.echo(f"{n} complaint(s) traced")


@arf.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False),
    help="Keep the demo's files here (default: a temporary directory).",
)
def demo(workdir: str | None) -> None:
    """Complaints about leaked spam traced to the right customer's incident, incl. a dynamic address
    that changed hands between the spam and the complaint (a self-contained run)."""
    import tempfile

    from relayguard.arf import demo as d

    with tempfile.TemporaryDirectory(prefix="relayguard-arf-demo-") as tmp:
        out = d.run(Path(workdir) if workdir else Path(tmp))
    click.echo(f"{d.DYN_IP} was SUB-A's when the spam left {d.RELAY}; it is {out['holder_now']}'s now.\n")
    click.echo(f"{'complaint':<20} {'reporter':<27} {'status':<10} {'traced to':<12} how")
    for r in out["rows"]:
        click.echo(f"{r.name:<20} {r.reporter:<27} {r.status:<10} {r.customer:<12} {r.method}")
    click.echo("\ncomplaints on incidents: " + ", ".join(f"{k} {v}" for k, v in out["incidents"].items()))
    c = out["counts"]
    kept = f"kept: {c['total']} ({c['matched']} matched, {c['unmatched']} unmatched)"
    click.echo(f"{kept}, {c['duplicates']} duplicate counted once")
