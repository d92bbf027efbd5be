"""`relayguard demo`: the main job. A short scan of the shipped sample, then the end-to-end relay demo.

The relay demo (`relayguard.demo`, docs/demo.md): simulated customers submit mail from the sample to the
ISP's relay — relayguard in front of a private Postfix on loopback when Postfix is installed (and we are
root), the same decision path in process otherwise — infected ones are detected, held and blocked and
listed in relayguard's own DNSBL, the abuse desk releases the legitimate mail that was held, and a
neighbour's relayguard refuses what spam left before containment. Every message is accounted for; the
exit status is 1 when one is not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from relayguard.app.build import build_pipeline
from relayguard.app.sources import iter_messages
from relayguard.config import load_config
from relayguard.message.parse import parse_message


def default_samples() -> Path:
    # The repo's samples/ sits three levels above this package in the src layout.
    return Path(__file__).resolve().parents[3] / "samples" / "corpus"


async def _scan(samples: Path, config: str | None, console: Console) -> None:
    settings = load_config(config)
    pipeline = build_pipeline(settings)
    stats: dict[str, Counter[str]] = {}
    symbols: dict[str, Counter[str]] = {}
    chains: Counter[str] = Counter()
    errors: list[str] = []
    labels = [d.name for d in sorted(samples.iterdir()) if d.is_dir()]
    items = [(label, item) for label in labels for item in iter_messages([str(samples / label)], errors)]
    t0 = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("scanning the sample", total=len(items))
        for label, item in items:
            assert item.data is not None
            facts = parse_message(item.data, settings)
            verdict = await pipeline.check(facts)
            stats.setdefault(label, Counter())[str(verdict.action)] += 1
            symbols.setdefault(label, Counter()).update(verdict.symbols.keys())
            chains["messages"] += 1
            chains["relays"] += len(facts.chain.relays)
            chains["unparsed Received"] += facts.chain.unparsed
            chains["with an origin (last external)"] += facts.chain.last_external is not None
            chains["submitted authenticated"] += facts.chain.authenticated
            progress.advance(task)
    elapsed = time.perf_counter() - t0

    table = Table(title=f"relayguard on {len(items)} real messages from {samples}")
    table.add_column("label")
    table.add_column("messages", justify="right")
    table.add_column("actions")
    table.add_column("most frequent symbols")
    for label in labels:
        acts = stats.get(label, Counter())
        top = symbols.get(label, Counter()).most_common(6)
        table.add_row(
            label, str(sum(acts.values())), ", ".join(f"{a}: {n}" for a, n in acts.most_common()),
            ", ".join(f"{s} ({n})" for s, n in top),
        )  # fmt: skip
    console.print(table)
    console.print("Received chains: " + ", ".join(f"{k} {v}" for k, v in chains.items()))
    console.print(f"{len(items)} messages in {elapsed:.2f} s ({len(items) / max(elapsed, 1e-9):.0f} messages/s)")
    for e in errors:
        console.print(f"[red]{e}[/red]")


def _dash(v: object) -> str:
    return "-" if v in (None, 0, False) else str(v)


def print_report(r: dict[str, Any], console: Console) -> None:
    t = Table(
        title=f"customer by customer (mode {r['mode']}, seed {r['seed']})",
        caption=(
            "sent: submitted (of them spam); dlv: delivered; rel: held, then released and delivered; "
            "MX: refused by the neighbour's MX; legit*: held by the abuse desk on a mistaken complaint; "
            "contained after: spam messages submitted, seconds from the first; customer cNN submits from 127.0.1.NN"
        ),
    )
    for col in ("customer", "role", "sent", "dlv", "held", "rel", "refused", "MX", "state", "listed",
                "contained after"):  # fmt: skip
        width = {"role": 8, "sent": 7, "state": 12, "contained after": 10}.get(col)
        t.add_column(col, justify="left" if col in ("customer", "role", "state") else "right", min_width=width)
    for p in r["per_customer"]:
        after = "-"
        if p["contained_after_spam"] is not None:
            after = f"{p['contained_after_spam']}, {p['seconds_to_containment']} s"
        state = p["state_after_run"] if p["state_after_run"] == p["state"] else f"{p['state_after_run']}→{p['state']}"
        role = {"legit, mistaken complaint": "legit*"}.get(p["role"], p["role"])
        style = "red" if p["role"] == "infected" else ("yellow" if p["released"] or p["held"] else None)
        sent = f"{p['submitted']} ({p['spam']})" if p["spam"] else str(p["submitted"])
        refused = p["refused"] + p["deferred"]
        t.add_row(
            p["customer"].split("@")[0], role, sent, _dash(p["delivered"]), _dash(p["held"]),
            _dash(p["released"]), _dash(refused), _dash(p["receiver_refused"]), state,
            "yes" if p["listed"] else "-", after, style=style,
        )  # fmt: skip
    console.print(t)
    m, lg, sp, rc = r["messages"], r["legit"], r["spam"], r["receiver"]
    console.print(
        f"[bold]{m['submitted']} messages submitted[/bold]: {m['delivered']} delivered, "
        f"{m['released_then_delivered']} held then released and delivered, {m['held']} still held, "
        f"{m['refused']} refused, {m['deferred']} deferred, {m['unaccounted']} unaccounted for"
    )
    for reason, n in r["relay_refusal_reasons"].items():
        console.print(f"  refused at the relay ({n}): {reason}")
    console.print(
        f"infected customers: {r['infected_contained']}/{r['infected']} contained, {r['infected_listed']} listed in "
        f"the exploited-hosts zone; spam that left before containment: median "
        f"{r['spam_left_before_containment']['median']}, max {r['spam_left_before_containment']['max']} per customer; "
        f"time to containment from the first spam: median {r['time_to_containment_s']['median']} s, "
        f"max {r['time_to_containment_s']['max']} s"
    )
    console.print(
        f"legitimate mail: {lg['submitted']} submitted, {lg['refused_or_deferred_at_relay']} refused or deferred at "
        f"the relay, {lg['held_then_released']} held then released ({lg['released_intact']} intact), "
        f"{lg['still_held']} still held"
    )
    console.print(
        f"spam: {sp['submitted']} submitted, {sp['left_the_isp']} left the ISP before containment, "
        f"{sp['held']} held, {sp['refused_at_relay']} refused at the relay"
    )
    reasons = ", ".join(f"{k} {v}" for k, v in rc["reasons"].items()) or "none"
    console.print(
        f"the neighbour's MX (trusting the ISP's relays) got {rc['replayed']} messages: {rc['accepted']} accepted, "
        f"{rc['refused']} refused ({reasons}): {sp['refused_by_receiver']} of the {sp['left_the_isp']} spam that "
        f"left, {rc['refused'] - sp['refused_by_receiver'] - lg['refused_by_receiver']} of the infected customers' "
        f"own mail, {lg['refused_by_receiver']} of the legitimate customers' mail"
    )
    if rc.get("example"):
        console.print(f"  for example {rc['example']}")
    for n in r["notes"]:
        console.print(f"[dim]{n}[/dim]")
    if r["problems"]:
        for p in r["problems"]:
            console.print(f"[red]PROBLEM: {p}[/red]")
    else:
        console.print(f"[green]every message accounted for[/green] ({r['elapsed_s']} s)")


@click.command()
@click.option("--samples", type=click.Path(file_okay=False, exists=True), help="Directory of label folders.")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML file over the defaults.")
@click.option("--scan-only", is_flag=True, help="Only scan the sample (the first section).")
@click.option(
    "--mode",
    type=click.Choice(["auto", "postfix", "embedded"]),
    default="auto",
    show_default=True,
    help="postfix: a private Postfix on loopback (needs Postfix and root); embedded: in process.",
)
@click.option("--customers", type=click.IntRange(1, 250), default=30, show_default=True)
@click.option("--infected", type=click.IntRange(0, 250), default=4, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--false-alarm/--no-false-alarm",
    default=True,
    show_default=True,
    help="The abuse desk holds one legitimate customer on a mistaken complaint, then releases it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of tables.")
@click.option("--no-progress", is_flag=True)
@click.option("--verbose", is_flag=True, help="Show detection and containment log lines.")
def demo(samples: str | None, config: str | None, scan_only: bool, mode: str, customers: int, infected: int,
         seed: int, false_alarm: bool, as_json: bool, no_progress: bool, verbose: bool) -> None:  # fmt: skip
    """Scan the shipped sample, then run the end-to-end relay demo; exit 1 if a message is unaccounted for."""
    from relayguard.demo.run import DemoConfig, run_demo

    path = Path(samples) if samples else default_samples()
    if not path.is_dir():
        raise click.UsageError(f"no samples at {path}; pass --samples DIR (folders per label, e.g. ham/ spam/)")
    console = Console(stderr=as_json)
    if not console.is_terminal:
        console.width = max(console.width, 112)  # piped: keep the customer table on one line per customer
    if not as_json:
        asyncio.run(_scan(path, config, console))
    if scan_only:
        return
    if infected > customers:
        raise click.UsageError("--infected must not exceed --customers")
    if not verbose:
        # every detection and transition logs a line; the report tells the same story customer by customer
        for name in ("relayguard.outbound", "relayguard.containment", "relayguard.classifier"):
            logging.getLogger(name).setLevel(logging.ERROR)
    cfg = DemoConfig(path, customers, infected, seed, mode, false_alarm, Path(config) if config else None)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=no_progress) as progress:  # fmt: skip
        tasks: dict[str, Any] = {}

        def tick(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=max(total, 1))
            progress.update(tasks[phase], completed=done, total=max(total, 1))

        try:
            report = run_demo(cfg, tick)
        except (RuntimeError, ValueError) as e:
            raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(report, indent=1))
    else:
        print_report(report, console)
    if not report["ok"]:
        raise SystemExit(1)
