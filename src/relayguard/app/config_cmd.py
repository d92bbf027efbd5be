"""`relayguard config show|check`."""

from __future__ import annotations

import sys

import click
import tomli_w

from relayguard.config import load_config
from relayguard.core.errors import ConfigError


@click.group()
def config() -> None:
    """Show the effective configuration or check a configuration file."""


@config.command()
@click.option("--config", "path", type=click.Path(dir_okay=False), help="TOML file over the defaults.")
def show(path: str | None) -> None:
    """Print the effective configuration (defaults merged with FILE) as TOML."""
    try:
        settings = load_config(path)
    except ConfigError as exc:
        _report(exc)
        sys.exit(2)
    data = settings.model_dump(mode="json", exclude_none=True)
    click.echo(tomli_w.dumps(data), nl=False)


@config.command()
@click.argument("file", type=click.Path(dir_okay=False))
def check(file: str) -> None:
    """Validate FILE: exit 0 when valid, else list each problem (section.key: what) and exit 2."""
    try:
        load_config(file)
    except ConfigError as exc:
        _report(exc)
        sys.exit(2)
    click.echo(f"{file}: OK")


def _report(exc: ConfigError) -> None:
    click.echo(f"{exc.source}: invalid configuration:", err=True)
    for p in exc.problems:
        click.echo(f"  {p}", err=True)
