"""The `relayguard simulate` command (logic in `relayguard.outbound.simulate`)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from relayguard.outbound.simulate import SimConfig, Simulation, default_corpus

REPO_ROOT = Path(__file__).resolve().parents[3]


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.1f}min"
    return f"{s / 3600:.1f}h"


def _table(rep: dict[str, Any]) -> Any:
    from rich.table import Table

    b = rep["baseline"]
    t = Table(
        title=f"relayguard simulate: {rep['customers']} customers, seed {rep['seed']}, {rep['simulated_days']} days"
    )
    t.add_column("")
    t.add_column("relayguard", justify="right")
    t.add_column("fixed limit", justify="right")
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("infected detected", lambda r: f"{r['infected_detected']} / {r['infected_total']}"),
        ("  slow ones detected", lambda r: f"{r['slow_detected']} / {r['slow_infected']}"),
        ("leaked: median", lambda r: f"{r['leaked']['median']:g}"),
        ("leaked: p95", lambda r: f"{r['leaked']['p95']:g}"),
        ("leaked: max", lambda r: f"{r['leaked']['max']:g}"),
        ("time to detect: median", lambda r: _fmt_time(r["time_to_detect"]["median"])),
        ("time to detect: max", lambda r: _fmt_time(r["time_to_detect"]["max"])),
        ("legit customers flagged", lambda r: str(r["legit_flagged"])),
        ("legit messages delayed", lambda r: str(r["legit_messages_delayed"])),
    ]
    for name, f in rows:
        t.add_row(name, f(rep), f(b))
    t.caption = (
        "fixed limit: 10/minute, 150/day per customer; leaked: spam sent before detection. "
        f"{rep['training_messages']} messages trained ({rep['verdict_source']}), {rep['replayed_messages']} "
        f"sendings replayed from {rep['distinct_replay_messages']} unseen messages; {rep['campaigns']} campaigns found"
    )
    return t


@click.command()
@click.option(
    "--ham",
    "ham_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory of ham messages, one per file. [default: the shared SpamAssassin corpus, else samples/]",
)
@click.option(
    "--spam",
    "spam_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory of spam messages, one per file.",
)
@click.option("--customers", default=1000, show_default=True, type=click.IntRange(10, 1_000_000))
@click.option("--infected", default=20, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--days", default=2.0, show_default=True, type=click.FloatRange(1.0, 30.0), help="Simulated time span.")
@click.option(
    "--train-fraction",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.1, 0.9),
    help="Share of the mail the classifier learns; only the rest is replayed.",
)
@click.option(
    "--templates",
    default=5,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Spam templates the campaign rotates through (more: less help from campaign matching).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file to simulate with (e.g. your [outbound] values).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def simulate(
    ham_dir: Path | None,
    spam_dir: Path | None,
    customers: int,
    infected: int,
    seed: int,
    days: float,
    train_fraction: float,
    templates: int,
    config_path: Path | None,
    as_json: bool,
    no_progress: bool,
) -> None:
    """An ISP in a box: replay real mail from N customers, K of them infected, through the real decision
    path on a simulated clock, and compare compromised-customer detection with a fixed-rate limit."""
    d_ham, d_spam = default_corpus(REPO_ROOT)
    cfg = SimConfig(
        ham_dir or d_ham, spam_dir or d_spam, customers, infected, seed, days, train_fraction, templates, 0, config_path
    )
    if not cfg.ham_dir.is_dir() or not cfg.spam_dir.is_dir():
        raise click.UsageError(f"no corpus at {cfg.ham_dir} / {cfg.spam_dir}: pass --ham and --spam")
    sim = Simulation(cfg)
    out_log = logging.getLogger("relayguard.outbound")
    if out_log.getEffectiveLevel() == logging.WARNING:
        # Each detection is a WARNING on a relay; in a simulation it is the expected outcome: keep the
        # table readable (--log-level INFO shows every decision with its explanation).
        out_log.setLevel(logging.ERROR)
    if no_progress or (not sys.stderr.isatty() and as_json):
        rep = sim.run()
    else:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description:>7}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as progress:
            rep = sim.run(progress=progress)
    if as_json:
        click.echo(json.dumps(rep, indent=2, sort_keys=True))
    else:
        from rich.console import Console

        Console().print(_table(rep))
        for note in rep.get("notes", []):
            click.echo(f"note: {note}", err=True)
