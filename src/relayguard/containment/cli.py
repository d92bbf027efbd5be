"""`relayguard incidents list|show|release|close|whitelist|block|trace [--json]`: the abuse desk's view.

Reading commands open the store directly. Changing commands queue a command that every relay's
relayguard applies at its next poll (`[containment] poll_interval`): the state change once for the
fleet, and each relay releases the held mail in its own queue.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from relayguard.config import load_config
from relayguard.config.schema import Settings
from relayguard.containment.incidents import Incident
from relayguard.containment.service import Store
from relayguard.core.errors import ConfigError

MAX_CUSTOMER = 320  # a SASL login or subscriber id; anything longer is a mistake or an attack
MAX_REASON = 500


def _settings(config_path: str | None) -> Settings:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        click.echo(f"{exc.source}: invalid configuration:", err=True)
        for p in exc.problems:
            click.echo(f"  {p}", err=True)
        sys.exit(2)


@contextmanager
def _store(config_path: str | None) -> Iterator[tuple[Settings, Store]]:
    from relayguard.containment.factory import open_store

    settings = _settings(config_path)
    try:
        store = open_store(settings)
    except Exception as e:
        click.echo(f"relayguard incidents: cannot open the containment store: {e}", err=True)
        sys.exit(1)
    try:
        yield settings, store
    finally:
        store.close()


def check_customer(value: str) -> str:
    """A customer key from the command line: printable, no white space at the ends, bounded."""
    v = value.strip()
    if not v or len(v) > MAX_CUSTOMER or not v.isprintable():
        raise click.BadParameter(f"a customer is 1-{MAX_CUSTOMER} printable characters")
    return v


def _customer_cb(ctx: click.Context, param: click.Parameter, value: str) -> str:
    return check_customer(value)


def _reason_cb(ctx: click.Context, param: click.Parameter, value: str) -> str:
    v = " ".join(value.split())
    if len(v) > MAX_REASON or not v.isprintable():
        raise click.BadParameter(f"at most {MAX_REASON} printable characters")
    return v


def _ts(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + "Z"


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="TOML file over the defaults."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
actor_option = click.option("--by", "actor", default="", help="Who is acting (default: cli:$USER).")
reason_option = click.option("--reason", default="", callback=_reason_cb, help="Why (kept in the incident).")


def _actor(actor: str) -> str:
    import getpass

    if actor:
        return actor[:100]
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


@click.group()
def incidents() -> None:
    """Contained customers: incidents, their evidence, and the abuse desk's actions."""


@incidents.command("list")
@config_option
@json_option
@click.option("--status", type=click.Choice(["open", "closed", "all"]), default="open", show_default=True)
@click.option("--customer", default=None)
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
def list_cmd(config_path: str | None, as_json: bool, status: str, customer: str | None, limit: int) -> None:
    """List incidents, newest first."""
    with _store(config_path) as (_, store):
        rows = store.list_incidents(None if status == "all" else status, customer, limit)
        states = store.states()
    if as_json:
        _emit([dict(i.to_dict(events=False), current_state=states.get(i.customer, ("normal", 0))[0]) for i in rows])
        return
    if not rows:
        click.echo("no incidents")
        return
    click.echo(f"{'ID':>6}  {'STATUS':<7} {'STATE':<11} {'OPENED':<21} {'EVID':>4} {'CMPL':>4}  CUSTOMER / REASON")
    for i in rows:
        ev = i.counters.get("events", {})
        click.echo(
            f"{i.id:>6}  {i.status:<7} {states.get(i.customer, ('normal', 0))[0]:<11} {_ts(i.opened_at):<21} "
            f"{ev.get('evidence', 0):>4} {ev.get('complaint', 0):>4}  {i.customer}  {i.reason}"
        )


def _find(store: Store, ref: str) -> Incident | None:
    if ref.isdigit():
        return store.get_incident(int(ref))
    inc = store.current_incident(ref)
    if inc is None:
        rows = store.list_incidents(None, ref, 1)
        inc = store.get_incident(rows[0].id) if rows else None
    return inc


def _event_line(kind: str, data: dict[str, Any]) -> str:
    if kind == "transition":
        ev = data.get("evidence", {})
        sprt = ev.get("sprt", {}) if isinstance(ev, dict) else {}
        nums = f" llr={sprt.get('llr')} upper={sprt.get('upper')}" if sprt.get("llr") is not None else ""
        return f"{data.get('old')} -> {data.get('new')} by {data.get('actor')}: {data.get('reason')}{nums}"
    if kind == "evidence":
        return (
            f"message {data.get('message_id') or '-'} queue {data.get('queue_id') or '-'} {data.get('action')} "
            f"({data.get('verdict')}) from {data.get('mail_from')} to {data.get('rcpt_count')} rcpt: "
            f"{data.get('subject', '')[:60]!r}"
        )
    if kind == "action":
        rest = {k: v for k, v in data.items() if k != "action"}
        return f"{data.get('action')} {json.dumps(rest, sort_keys=True, default=str)}"
    if kind == "complaint":
        return _complaint_line(data)
    return json.dumps(data, sort_keys=True, default=str)[:200]


def _complaint_line(data: dict[str, Any]) -> str:
    """One line an abuse desk can read: what was reported, by whom, about which message, traced how.

    ARF complaints carry their own `summary`; any other complaint (a mapping from a plugin) falls back to
    its fields, so nothing is hidden."""
    summary = data.get("summary")
    if not isinstance(summary, str) or not summary:
        if "reporter" in data or "feedback_type" in data:
            summary = f"{data.get('feedback_type') or 'abuse'} report from {data.get('reporter') or '?'}"
        else:
            summary = json.dumps(data, sort_keys=True, default=str)
    extra = []
    if data.get("message_id"):
        extra.append(f"message {data['message_id']}")
    if data.get("source_ip"):
        extra.append(f"source {data['source_ip']}")
    if data.get("duplicates"):
        extra.append(f"{data['duplicates']} duplicates")
    line = summary + (f" [{', '.join(extra)}]" if extra else "")
    return line[:300]


@incidents.command("show")
@config_option
@json_option
@click.argument("ref")
def show_cmd(config_path: str | None, as_json: bool, ref: str) -> None:
    """Show one incident (REF: its id, or a customer) with its timeline."""
    ref = check_customer(ref)
    with _store(config_path) as (_, store):
        inc = _find(store, ref)
        if inc is None:
            click.echo(f"relayguard incidents: no incident {ref!r}", err=True)
            sys.exit(1)
        state = store.state_of(inc.customer)
        decisions = store.decisions_for(inc.customer, since=inc.opened_at - 86400, limit=20)
    if as_json:
        d = inc.to_dict()
        d["current_state"] = state[0] if state else "normal"
        d["recent_decisions"] = [x.to_dict() for x in decisions]
        _emit(d)
        return
    click.echo(f"incident {inc.id}  customer {inc.customer}  {inc.status}")
    click.echo(f"  opened {_ts(inc.opened_at)}  closed {_ts(inc.closed_at)}  reason: {inc.reason}")
    click.echo(f"  state now: {state[0] if state else 'normal'}")
    if inc.sprt:
        click.echo("  sequential test: " + ", ".join(f"{k}={v}" for k, v in sorted(inc.sprt.items()) if k != "reason"))
        if inc.sprt.get("reason"):
            click.echo(f"    {inc.sprt['reason']}")
    if inc.counters:
        shown = {k: v for k, v in inc.counters.items() if k != "events"}
        click.echo("  counters: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    click.echo("  timeline:")
    for e in inc.timeline:
        click.echo(f"    {_ts(e.t)}  {e.kind:<10} {e.relay or '-':<12} {_event_line(e.kind, e.data)}")
    if decisions:
        click.echo("  recent decisions:")
        for x in decisions:
            click.echo(
                f"    {_ts(x.t)}  {x.action:<15} {x.relay:<12} queue {x.queue_id or '-':<12} "
                f"client {x.client_ip or '-'}  {x.message_id or ''}"
            )


def _queue(
    config_path: str | None,
    kind: str,
    customer: str,
    actor: str,
    reason: str,
    as_json: bool,
    args: dict[str, Any] | None = None,
) -> None:
    from relayguard.containment.commands import Command
    from relayguard.containment.factory import containment_settings, open_shared

    settings = _settings(config_path)
    cs = containment_settings(settings)
    cmd = Command(kind, customer, time.time(), _actor(actor), reason, args or {})
    if cs.shared_state == "redis":
        shared = open_shared(settings, cache=False)
        try:
            cid = shared.push_command(cmd)
        except Exception as e:
            click.echo(f"relayguard incidents: cannot reach the shared state: {e}", err=True)
            sys.exit(1)
    else:
        with _store(config_path) as (_, store):
            cid = store.push_command(cmd)
    if as_json:
        _emit({"queued": True, "command": cid, "kind": kind, "customer": customer, "poll_interval": cs.poll_interval})
    else:
        click.echo(f"queued {kind} of {customer} as command {cid}; every relay applies it within {cs.poll_interval:g}s")


@incidents.command("release")
@config_option
@json_option
@actor_option
@reason_option
@click.argument("customer", callback=_customer_cb)
def release_cmd(config_path: str | None, as_json: bool, actor: str, reason: str, customer: str) -> None:
    """Return CUSTOMER to normal and release its held mail (postsuper -H) on every relay."""
    _queue(config_path, "release", customer, actor, reason, as_json)


@incidents.command("whitelist")
@config_option
@json_option
@actor_option
@reason_option
@click.option("--remove", is_flag=True, help="Take the customer off the whitelist.")
@click.argument("customer", callback=_customer_cb)
def whitelist_cmd(config_path: str | None, as_json: bool, actor: str, reason: str, remove: bool, customer: str) -> None:
    """Never contain CUSTOMER automatically (its mail gets DUNNO: Postfix's other rules still apply)."""
    _queue(config_path, "unwhitelist" if remove else "whitelist", customer, actor, reason, as_json)


@incidents.command("block")
@config_option
@json_option
@actor_option
@reason_option
@click.argument("customer", callback=_customer_cb)
def block_cmd(config_path: str | None, as_json: bool, actor: str, reason: str, customer: str) -> None:
    """Reject CUSTOMER's mail and list its client addresses in the exploited-hosts zone."""
    _queue(config_path, "block", customer, actor, reason, as_json)


@incidents.command("close")
@config_option
@json_option
@actor_option
@reason_option
@click.argument("ref")
def close_cmd(config_path: str | None, as_json: bool, actor: str, reason: str, ref: str) -> None:
    """Close an incident (REF: its id, or a customer). The customer's state is not changed."""
    ref = check_customer(ref)
    with _store(config_path) as (_, store):
        inc = _find(store, ref)
    if inc is None or inc.status != "open":
        click.echo(f"relayguard incidents: no open incident {ref!r}", err=True)
        sys.exit(1)
    _queue(config_path, "close", inc.customer, actor, reason, as_json, {"incident": inc.id})


@incidents.command("trace")
@config_option
@json_option
@click.option("--message-id", default=None, help="A Message-ID from a complaint.")
@click.option("--queue-id", default=None, help="A Postfix queue id (with --relay when several relays).")
@click.option("--relay", default=None)
@click.option("--client", default=None, help="A client address (with --at).")
@click.option("--at", "at", type=float, default=None, help="Unix time for --client (default: now).")
@click.option("--slack", type=click.FloatRange(0, 30 * 86400), default=600.0, show_default=True)
def trace_cmd(
    config_path: str | None,
    as_json: bool,
    message_id: str | None,
    queue_id: str | None,
    relay: str | None,
    client: str | None,
    at: float | None,
    slack: float,
) -> None:
    """Find the decisions (customer, relay, queue id, action) behind a message or a client address."""
    with _store(config_path) as (_, store):
        if message_id:
            rows = store.by_message_id(message_id)
        elif queue_id:
            rows = store.by_queue_id(queue_id, relay)
        elif client:
            rows = store.by_client(client, at if at is not None else time.time(), slack)
        else:
            raise click.UsageError("give --message-id, --queue-id or --client")
    if as_json:
        _emit([r.to_dict() for r in rows])
        return
    if not rows:
        click.echo("no decision found")
        sys.exit(1)
    for r in rows:
        click.echo(
            f"{_ts(r.t)}  {r.customer}  {r.action}  relay {r.relay or '-'}  queue {r.queue_id or '-'}  "
            f"client {r.client_ip or '-'}  login {r.sasl_username or '-'}  {r.message_id}"
        )
