"""`relayguard dnsbl ...`: serve zones (an rbldnsd command line works unchanged) and manage live listings."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from relayguard.core.heap import settle_heap
from relayguard.dnsbl.server import Catalog, DnsblServer, run, tune_malloc
from relayguard.dnsbl.zonespec import SpecError, parse_bind, parse_rbldnsd_args

if TYPE_CHECKING:
    from relayguard.dnsbl.live import Listing, ListingStore


@click.group(name="dnsbl")
def dnsbl() -> None:
    """DNS blocklists: rbldnsd-compatible zones and live listings."""


def store_location(config: str | None, database: str | None, postgres_dsn: str | None) -> tuple[str | None, str | None]:
    """(sqlite path, postgres dsn): options first, then the configuration ([dnsbl] database, [storage]
    postgres_dsn when [dnsbl] shared = true, [storage] data_dir), then the defaults."""
    if database or postgres_dsn:
        return database, postgres_dsn
    try:
        from relayguard.config import load_config

        settings = load_config(config)
    except Exception as e:  # no configuration module or a broken file: say so, use the default
        if config:
            raise click.ClickException(f"cannot read configuration {config}: {e}") from e
        return None, None
    section = settings.dnsbl
    if section.get("shared") and settings.storage.postgres_dsn:
        return None, settings.storage.postgres_dsn
    db = section.get("database")
    if isinstance(db, str) and db:
        return db, None
    return str(settings.storage.data_path() / "dnsbl.sqlite3"), None


@contextlib.contextmanager
def _store(ctx: click.Context) -> Iterator[ListingStore]:
    """The listing store for one command: closed after it; an entry, zone or code it refuses is a usage
    error (said in one line), not a traceback."""
    from relayguard.dnsbl.live import ListingError, open_store

    db, dsn = store_location(ctx.obj.get("config"), ctx.obj.get("database"), ctx.obj.get("postgres_dsn"))
    store = open_store(database=db, postgres_dsn=dsn)
    try:
        yield store
    except ListingError as e:
        raise click.UsageError(str(e)) from e
    finally:
        store.close()


@dnsbl.group(name="list")
@click.option("--config", default=None, help="relayguard TOML configuration file.")
@click.option("--database", default=None, help="SQLite file of live listings.")
@click.option("--postgres-dsn", default=None, help="PostgreSQL DSN (shared listings).")
@click.pass_context
def list_group(ctx: click.Context, config: str | None, database: str | None, postgres_dsn: str | None) -> None:
    """Live listings: add, remove, show, search."""
    ctx.obj = {"config": config, "database": database, "postgres_dsn": postgres_dsn}


def _fmt(lst: Listing) -> str:
    exp = "never" if lst.expires is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(lst.expires))
    ev = f" evidence={lst.evidence}" if lst.evidence else ""
    return f"{lst.zone}\t{lst.entry}\t{lst.code}\texpires={exp}{ev}\t{lst.reason}"


@list_group.command(name="add")
@click.argument("zone")
@click.argument("entry")
@click.option("--code", default="127.0.0.2", show_default=True, help="The A record answered.")
@click.option("--reason", default="", help="Why: served as the TXT record.")
@click.option("--expires", default="7d", show_default=True, help="Duration (30m, 12h, 7d) or never.")
@click.option("--evidence", default=None, help="Reference to the evidence (incident id, message id).")
@click.pass_context
def list_add(ctx: click.Context, zone: str, entry: str, code: str, reason: str, expires: str,
             evidence: str | None) -> None:
    """List ENTRY (IP, CIDR or domain) in ZONE."""
    from relayguard.dnsbl.live import parse_duration

    with _store(ctx) as store:
        lst = store.add(zone, entry, code=code, reason=reason, evidence=evidence, expires_in=parse_duration(expires))
    click.echo(_fmt(lst))


@list_group.command(name="remove")
@click.argument("zone")
@click.argument("entry")
@click.pass_context
def list_remove(ctx: click.Context, zone: str, entry: str) -> None:
    """Remove ENTRY from ZONE."""
    with _store(ctx) as store:
        ok = store.remove(zone, entry)
    if not ok:
        raise click.ClickException(f"{entry} is not listed in {zone}")
    click.echo(f"removed {entry} from {zone}")


@list_group.command(name="show")
@click.argument("zone")
@click.argument("entry")
@click.pass_context
def list_show(ctx: click.Context, zone: str, entry: str) -> None:
    """Show the listing of ENTRY in ZONE."""
    with _store(ctx) as store:
        lst = store.get(zone, entry)
    if lst is None:
        raise click.ClickException(f"{entry} is not listed in {zone}")
    click.echo(_fmt(lst))


@list_group.command(name="search")
@click.argument("text", required=False)
@click.option("--zone", default=None)
@click.option("--all", "include_expired", is_flag=True, help="Include expired listings not yet purged.")
@click.pass_context
def list_search(ctx: click.Context, text: str | None, zone: str | None, include_expired: bool) -> None:
    """Listings whose entry, reason or evidence contains TEXT."""
    with _store(ctx) as store:
        for lst in store.search(zone, text, include_expired=include_expired):
            click.echo(_fmt(lst))


@list_group.command(name="export")
@click.argument("zone")
@click.argument("outdir")
@click.option("--combined", is_flag=True, help="One combined dataset file instead of one file per type.")
@click.pass_context
def list_export(ctx: click.Context, zone: str, outdir: str, combined: bool) -> None:
    """Write ZONE's listings as rbldnsd data files into OUTDIR (atomically), for rbldnsd mirrors."""
    from relayguard.dnsbl.feeds import export_rbldnsd

    with _store(ctx) as store:
        for path in export_rbldnsd(store, zone, outdir, combined=combined):
            click.echo(path)


@dnsbl.command(name="serve", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True})
@click.option("--listen", "listen", multiple=True, help="HOST:PORT or [V6]:PORT (repeatable); rbldnsd's -b works too.")
@click.option("--config", default=None, help="relayguard TOML configuration file.")
@click.option("--database", default=None, help="SQLite file of live listings (zone:live specs).")
@click.option("--postgres-dsn", default=None, help="PostgreSQL DSN of shared live listings (instead of --database).")
@click.option("--axfr-allow", multiple=True, help="Address or CIDR allowed to transfer live zones (repeatable).")
@click.option("--metrics", default=None, metavar="HOST:PORT",
              help="Serve Prometheus metrics at http://HOST:PORT/metrics (or unix:PATH); off by default.")
@click.option("--verbose", "-V", is_flag=True, help="Log reloads and errors to stderr.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def serve(listen: tuple[str, ...], config: str | None, database: str | None, postgres_dsn: str | None,
          axfr_allow: tuple[str, ...], metrics: str | None, verbose: bool, args: tuple[str, ...]) -> None:
    """Serve ZONESPEC... (`zone:type:file[,file...]` as rbldnsd, or `zone:live`).

    rbldnsd's options -b -w -t -c -a -A are honoured; -u -r -p -l -s -n -q -e -f -v -C -4 -6 are accepted
    and ignored, so an rbldnsd command line works unchanged.

    Plain A/TXT questions are answered by a compiled engine when it was built at install time (-V says
    which path runs); RELAYGUARD_DNSBL_NATIVE=0 in the environment answers everything in Python.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if verbose:  # the top-level command has configured logging already (--log-level): -V still counts
        logging.getLogger("relayguard.dnsbl").setLevel(logging.INFO)
    try:
        opts = parse_rbldnsd_args(args)
        binds = [parse_bind(x) for x in listen] + opts.listen
    except (SpecError, ValueError) as e:
        raise click.UsageError(str(e)) from e
    if not binds:
        raise click.UsageError("nothing to listen on: give --listen HOST:PORT or -b ADDR/PORT")
    if not opts.specs:
        raise click.UsageError("no zones: give at least one ZONESPEC")
    metrics_at = None
    if metrics:
        from relayguard.frontends.settings import parse_listen

        try:
            metrics_at = parse_listen(metrics)
        except ValueError as e:
            raise click.UsageError(f"--metrics: {e}") from e
    tune_malloc()
    live_specs = [s for s in opts.specs if s.dtype == "live"]
    live = None
    store = None
    if live_specs:
        from relayguard.dnsbl.live import LiveZones, open_store

        db, dsn = store_location(config, database, postgres_dsn)
        store = open_store(database=db, postgres_dsn=dsn)
        live = LiveZones(store, [s.zone for s in live_specs], opts.limits)
    catalog = Catalog(opts.specs, opts.limits, lazy=opts.lazy, workdir=opts.workdir, live=live)
    try:
        catalog.load()
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot load zones: {e}") from e
    # what is loaded now lives as long as the server: keep the cyclic GC from walking it again and again
    settle_heap()

    def factory() -> DnsblServer:
        if live is not None and store is not None:
            from relayguard.dnsbl.feeds import FeedServer

            return FeedServer(catalog, binds, check_interval=opts.check_interval, live=live,
                              allow=list(axfr_allow))
        return DnsblServer(catalog, binds, check_interval=opts.check_interval)

    def ready(server: DnsblServer) -> None:
        click.echo("listening on " + ", ".join(f"{h}:{p}" for h, p in server.bound), err=True)
        if metrics_at is not None:
            click.echo(f"metrics at {metrics_at}/metrics", err=True)

    run(factory, ready, metrics_at)
