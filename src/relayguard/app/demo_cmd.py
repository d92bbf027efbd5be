"""`relayguard demo`: the main job on the embedded default.

For now: scan the real mail shipped in samples/ (a sample of the SpamAssassin public corpus) and print
what relayguard sees — actions per label, the symbols that fired most, and how the Received chains
parsed. Later features turn this into the full relay demo.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from relayguard.app.build import build_pipeline
from relayguard.app.sources import iter_messages
from relayguard.config import load_config
from relayguard.message.parse import parse_message


def default_samples() -> Path:
    # The repo's samples/ sits three levels above this package in the src layout.
    return Path(__file__).resolve().parents[3] / "samples" / "corpus"


async def _run(samples: Path, config: str | None, console: Console) -> None:
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
        )
    console.print(table)
    console.print("Received chains: " + ", ".join(f"{k} {v}" for k, v in chains.items()))
    console.print(f"{len(items)} messages in {elapsed:.2f} s ({len(items) / max(elapsed, 1e-9):.0f} messages/s)")
    for e in errors:
        console.print(f"[red]{e}[/red]")


@click.command()
@click.option("--samples", type=click.Path(file_okay=False, exists=True), help="Directory of label folders.")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML file over the defaults.")
def demo(samples: str | None, config: str | None) -> None:
    """Run the demo on the embedded default: scan the shipped real-mail sample and summarise."""
    path = Path(samples) if samples else default_samples()
    if not path.is_dir():
        raise click.UsageError(f"no samples at {path}; pass --samples DIR (folders per label, e.g. ham/ spam/)")
    asyncio.run(_run(path, config, Console()))
