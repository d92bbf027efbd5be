"""The `relayguard` command. Subcommands live in their own modules and load lazily, so `relayguard
--help` stays fast and a feature's import cost is paid only when it is used."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys

import click

from relayguard import __version__

# name -> "module:attribute" of a click command or group. Each feature registers one line here.
COMMANDS: dict[str, str] = {
    "scan": "relayguard.app.scan_cmd:scan",
    "config": "relayguard.app.config_cmd:config",
    "demo": "relayguard.app.demo_cmd:demo",
    "learn": "relayguard.classifier.cli:learn",
    "dnsbl": "relayguard.dnsbl.cli:dnsbl",
    "serve": "relayguard.frontends.cli:serve",
    "simulate": "relayguard.outbound.simulate_cli:simulate",
    "incidents": "relayguard.containment.cli:incidents",
    "arf": "relayguard.arf.cli:arf",
}


def _available(spec: str) -> bool:
    module = spec.split(":", 1)[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, spec in COMMANDS.items() if _available(spec))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None or not _available(spec):
            return None
        module, attr = spec.split(":", 1)
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="relayguard")
@click.option(
    "--log-level",
    default=lambda: os.environ.get("RELAYGUARD_LOG_LEVEL", "WARNING"),
    show_default="WARNING, or $RELAYGUARD_LOG_LEVEL",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Log level for stderr.",
)
def cli(log_level: str) -> None:
    """relayguard: find and contain compromised customers at an ISP's mail relays, see through relays
    to the real origin of inbound mail, and publish findings as DNSBL zones and ARF reports."""
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s relayguard[%(process)d] %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    cli()
