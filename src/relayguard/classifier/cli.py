"""`relayguard learn`: teach the classifier, unlearn, expire, export and import its model."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from relayguard.core.errors import ConfigError

T = TypeVar("T")
# Messages per transaction: bounded memory; a kill loses at most this many (learning them again is idempotent).
_COMMIT_EVERY = 2000


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML file over the defaults.")
@click.option(
    "--spam", "spam", multiple=True, type=click.Path(exists=True), help="Spam: files, directories, mbox, Maildir."
)
@click.option(
    "--ham", "ham", multiple=True, type=click.Path(exists=True), help="Ham: files, directories, mbox, Maildir."
)
@click.option("--forget", "forget", multiple=True, type=click.Path(exists=True), help="Unlearn these messages.")
@click.option("--expire", is_flag=True, help="Drop rare, old features ([classifier] expire_min_count/expire_days).")
@click.option("--export", "export_path", type=click.Path(dir_okay=False), help="Write the model to FILE.")
@click.option(
    "--import",
    "import_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Replace the model with FILE (made by --export).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar even on a terminal.")
def learn(
    config_path: str | None,
    spam: tuple[str, ...],
    ham: tuple[str, ...],
    forget: tuple[str, ...],
    expire: bool,
    export_path: str | None,
    import_path: str | None,
    no_progress: bool,
) -> None:
    """Learn messages as spam or ham into [classifier] database (idempotent per message; learning a
    message with the other label moves it), or --forget them.

    \b
    relayguard learn --spam ~/Maildir/.Junk --ham ~/Maildir/cur
    relayguard learn --forget misfiled.eml
    """
    from relayguard.app.sources import iter_messages
    from relayguard.classifier.api import Classifier, LearnResult
    from relayguard.classifier.exchange import FormatError, decode, encode
    from relayguard.config import load_config
    from relayguard.message.parse import parse_message

    try:
        settings = load_config(config_path)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    clf = Classifier.open(settings)
    try:
        if import_path:
            try:
                clf.store.load(decode(Path(import_path).read_bytes()))
            except FormatError as e:
                raise click.ClickException(f"{import_path}: {e}") from None
            click.echo(f"imported {import_path}", err=True)
        errors: list[str] = []
        counts: Counter[str] = Counter()
        show = not no_progress and sys.stderr.isatty()
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=not show,
        )
        with progress:
            task = progress.add_task("learning", total=None)
            stream = _interleave(
                [(it, True) for p in spam for it in iter_messages([p], errors) if it.data is not None],
                [(it, False) for p in ham for it in iter_messages([p], errors) if it.data is not None],
            ) + [(it, None) for p in forget for it in iter_messages([p], errors) if it.data is not None]
            progress.update(task, total=len(stream))
            for chunk in _chunks(stream, _COMMIT_EVERY):
                with clf.batch():
                    for item, label in chunk:
                        assert item.data is not None
                        facts = parse_message(item.data, settings)
                        res = clf.forget(facts) if label is None else clf.learn(facts, label)
                        counts[res.value] += 1
                        progress.advance(task)
        clf.flush()
        if expire:
            counts["features expired"] = clf.expire()
        if export_path:
            Path(export_path).write_bytes(encode(clf.store.dump()))
            click.echo(f"exported to {export_path}", err=True)
        info = clf.info()
        for problem in errors:
            click.echo(problem, err=True)
        summary = ", ".join(f"{v} {k}" for k, v in counts.items()) or "nothing to do"
        click.echo(f"{summary}; model now knows {info.n_spam} spam and {info.n_ham} ham")
        if errors and not counts.get(LearnResult.LEARNED.value):
            sys.exit(1)
    finally:
        clf.close()


def _chunks(it: Iterable[T], n: int) -> Iterator[list[T]]:
    i = iter(it)
    while chunk := list(islice(i, n)):
        yield chunk


def _interleave(a: list[T], b: list[T]) -> list[T]:
    """Merge two lists evenly (a spam, then two ham, ...). An online learner fed all spam and then all
    ham drifts towards the class it saw last; mixed order is what it learns best from."""
    out: list[T] = []
    i = j = 0
    while i < len(a) or j < len(b):
        # Take from whichever list is further behind its share.
        if j >= len(b) or (i < len(a) and i * len(b) <= j * len(a)):
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out
