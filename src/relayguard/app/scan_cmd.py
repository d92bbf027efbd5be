"""`relayguard scan`: run the pipeline over files, directories, mbox files and Maildirs."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from relayguard.app.build import build_pipeline
from relayguard.app.sources import Item, iter_messages
from relayguard.config import load_config
from relayguard.config.schema import Settings
from relayguard.core.errors import ConfigError
from relayguard.message.facts import MessageFacts
from relayguard.message.parse import parse_message
from relayguard.pipeline import Pipeline
from relayguard.scoring.verdict import Verdict


def result_json(item: Item, facts: MessageFacts, verdict: Verdict) -> dict[str, Any]:
    """The scan JSON contract: every key always present (null when unknown)."""
    chain = facts.chain
    return {
        "path": item.path,
        "index": item.index,
        "action": str(verdict.action),
        "score": round(verdict.score, 3),
        "required_score": verdict.required_score,
        "symbols": {
            n: {"score": round(s.score, 3), "options": list(s.options)} for n, s in verdict.symbols.items()
        },
        "relays": [r.as_json() for r in chain.relays],
        "origin_ip": chain.origin_ip,
        "authenticated": chain.authenticated,
        "unparsed_received": chain.unparsed,
        "message_id": facts.message_id,
        "subject": facts.subject or None,
    }


def _error_json(item: Item, error: str) -> dict[str, Any]:
    return {
        "path": item.path,
        "index": item.index,
        "action": None,
        "score": None,
        "required_score": None,
        "symbols": {},
        "relays": [],
        "origin_ip": None,
        "authenticated": None,
        "unparsed_received": None,
        "message_id": None,
        "subject": None,
        "error": error,
    }


async def scan_one(pipeline: Pipeline, settings: Settings, item: Item) -> dict[str, Any]:
    assert item.data is not None
    facts = parse_message(item.data, settings)
    verdict = await pipeline.check(facts)
    return result_json(item, facts, verdict)


async def _scan(
    paths: list[str], settings: Settings, as_json: bool, show_progress: bool, errors: list[str]
) -> tuple[Counter[str], list[dict[str, Any]]]:
    pipeline = build_pipeline(settings)
    actions: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    progress = Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task("scan", total=None)
        for item in iter_messages(paths, errors):
            try:
                res = await scan_one(pipeline, settings, item)
            except Exception as exc:  # a bad message never stops the scan
                res = _error_json(item, f"{type(exc).__name__}: {exc}")
                click.echo(f"{item.path}: internal error while scanning: {exc}", err=True)
            actions[res["action"] or "error"] += 1
            if as_json:
                sys.stdout.write(json.dumps(res, ensure_ascii=False) + "\n")
            else:
                rows.append(res)
            progress.advance(task)
    return actions, rows


def _table(rows: list[dict[str, Any]], actions: Counter[str]) -> None:
    console = Console()
    table = Table(show_lines=False)
    table.add_column("message", overflow="fold", max_width=48)
    table.add_column("action")
    table.add_column("score", justify="right")
    table.add_column("origin")
    table.add_column("symbols", overflow="fold")
    for r in rows:
        name = r["path"] + (f"#{r['index']}" if r["index"] is not None else "")
        syms = sorted(r["symbols"].items(), key=lambda kv: -abs(kv[1]["score"]))
        table.add_row(
            name,
            r["action"] or "error",
            f"{r['score']:.2f}" if r["score"] is not None else "-",
            r["origin_ip"] or "-",
            " ".join(f"{n}({v['score']:.1f})" for n, v in syms[:6]),
        )
    console.print(table)
    total = sum(actions.values())
    console.print(
        f"[bold]{total} messages[/bold]: " + ", ".join(f"{a} {n}" for a, n in actions.most_common())
    )


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML file over the defaults.")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per message per line (a stable contract)."
)
@click.option("--no-progress", is_flag=True, help="No progress bar even on a terminal.")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def scan(config_path: str | None, as_json: bool, no_progress: bool, paths: tuple[str, ...]) -> None:
    """Scan messages in PATHS (files, directories, mbox files, Maildirs) and print verdicts.

    Exit status: 0 when every path was read, 1 when some path was unreadable, 2 on a usage or
    configuration error.
    """
    try:
        settings = load_config(config_path)
    except ConfigError as exc:
        click.echo(f"{exc.source}: invalid configuration:", err=True)
        for p in exc.problems:
            click.echo(f"  {p}", err=True)
        sys.exit(2)
    errors: list[str] = []
    show_progress = sys.stderr.isatty() and not no_progress
    actions, rows = asyncio.run(_scan(list(paths), settings, as_json, show_progress, errors))
    if not as_json:
        _table(rows, actions)
    for e in errors:
        click.echo(f"relayguard scan: {e}", err=True)
    sys.exit(1 if errors else 0)
