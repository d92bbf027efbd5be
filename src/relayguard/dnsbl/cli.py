"""`relayguard dnsbl ...`: serve zones (an rbldnsd command line works unchanged) and manage live listings."""

from __future__ import annotations

import logging
import sys

import click

from relayguard.dnsbl.server import Catalog, DnsblServer, run, tune_malloc
from relayguard.dnsbl.zonespec import SpecError, parse_bind, parse_rbldnsd_args


@click.group(name="dnsbl")
def dnsbl() -> None:
    """DNS blocklists: rbldnsd-compatible zones and live listings."""


@dnsbl.command(name="serve", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True})
@click.option("--listen", "listen", multiple=True, help="HOST:PORT or [V6]:PORT (repeatable); rbldnsd's -b works too.")
@click.option("--database", default=None, help="SQLite file of live listings (zone:live specs).")
@click.option("--postgres-dsn", default=None, help="PostgreSQL DSN of shared live listings (instead of --database).")
@click.option("--axfr-allow", multiple=True, help="Address or CIDR allowed to transfer live zones (repeatable).")
@click.option("--verbose", "-V", is_flag=True, help="Log reloads and errors to stderr.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def serve(listen: tuple[str, ...], database: str | None, postgres_dsn: str | None, axfr_allow: tuple[str, ...],
          verbose: bool, args: tuple[str, ...]) -> None:
    """Serve ZONESPEC... (`zone:type:file[,file...]` as rbldnsd, or `zone:live`).

    rbldnsd's options -b -w -t -c -a -A are honoured; -u -r -p -l -s -n -q -e -f -v -C -4 -6 are accepted
    and ignored, so an rbldnsd command line works unchanged.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        opts = parse_rbldnsd_args(args)
        binds = [parse_bind(x) for x in listen] + opts.listen
    except (SpecError, ValueError) as e:
        raise click.UsageError(str(e)) from e
    if not binds:
        raise click.UsageError("nothing to listen on: give --listen HOST:PORT or -b ADDR/PORT")
    if not opts.specs:
        raise click.UsageError("no zones: give at least one ZONESPEC")
    tune_malloc()
    live_specs = [s for s in opts.specs if s.dtype == "live"]
    live = None
    store = None
    if live_specs:
        from relayguard.dnsbl.live import LiveZones, open_store

        store = open_store(database=database, postgres_dsn=postgres_dsn)
        live = LiveZones(store, [s.zone for s in live_specs], opts.limits)
    catalog = Catalog(opts.specs, opts.limits, lazy=opts.lazy, workdir=opts.workdir, live=live)
    try:
        catalog.load()
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot load zones: {e}") from e

    def factory() -> DnsblServer:
        if live is not None and store is not None:
            from relayguard.dnsbl.feeds import FeedServer

            return FeedServer(catalog, binds, check_interval=opts.check_interval, live=live,
                              allow=list(axfr_allow))
        return DnsblServer(catalog, binds, check_interval=opts.check_interval)

    def ready(server: DnsblServer) -> None:
        click.echo("listening on " + ", ".join(f"{h}:{p}" for h, p in server.bound), err=True)

    run(factory, ready)
