"""`relayguard serve`: run every configured front end until SIGTERM/SIGINT; SIGHUP reloads."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from relayguard.config.schema import Settings
from relayguard.core.errors import ConfigError
from relayguard.core.heap import settle_heap

log = logging.getLogger("relayguard.frontends")


def _load(path: str | None, overrides: dict[str, list[str]]) -> Settings:
    from relayguard.config import load_config
    from relayguard.frontends.runtime import frontend_settings

    settings = load_config(path)
    if not any(overrides.values()):
        return settings
    fs = frontend_settings(settings)
    update = {}
    for name, listen in overrides.items():
        if listen:
            update[name] = getattr(fs, name).model_copy(update={"listen": list(listen)})
    merged = fs.model_copy(update=update)
    return settings.model_copy(update={"frontends": merged})


async def _serve(config: str | None, overrides: dict[str, list[str]]) -> None:
    from relayguard.frontends.runtime import Frontends, build_containment

    settings = _load(config, overrides)
    # Containment keeps state across reloads (its settings need a restart), like listen addresses.
    fe = Frontends(settings, containment=build_containment(settings))
    await fe.start()
    settle_heap()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def reload() -> None:
        try:
            new = _load(config, overrides)
        except (ConfigError, OSError) as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            return
        try:
            fe.reload(new)
        except Exception:
            log.exception("reload failed, keeping the running configuration")
        settle_heap()

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    log.info("relayguard serve ready")
    await stop.wait()
    log.info("stopping: finishing transactions in flight")
    await fe.stop()
    log.info("stopped")


@click.command()
@click.option(
    "-c",
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML configuration file (defaults when omitted).",
)
@click.option("--policy", "policy", multiple=True, help="Override [frontends.policy] listen (repeatable).")
@click.option("--milter", "milter", multiple=True, help="Override [frontends.milter] listen.")
@click.option("--spamd", "spamd", multiple=True, help="Override [frontends.spamd] listen.")
@click.option("--http", "http", multiple=True, help="Override [frontends.http] listen.")
@click.option("--uvloop/--no-uvloop", default=True, show_default=True, help="Use uvloop when installed.")
def serve(
    config: Path | None,
    policy: tuple[str, ...],
    milter: tuple[str, ...],
    spamd: tuple[str, ...],
    http: tuple[str, ...],
    uvloop: bool,
) -> None:
    """Run the MTA front ends (policy, milter, spamd, HTTP) configured in [frontends].

    Listen addresses are host:port or unix:/path. SIGTERM finishes transactions in flight, then exits;
    SIGHUP reloads the configuration (an invalid file is refused and the running one kept).
    """
    overrides = {"policy": list(policy), "milter": list(milter), "spamd": list(spamd), "http": list(http)}
    try:
        _load(str(config) if config else None, overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    coro = _serve(str(config) if config else None, overrides)
    if uvloop:
        try:
            import uvloop as _uv

            _uv.run(coro)
            return
        except ImportError:
            pass
    asyncio.run(coro)
