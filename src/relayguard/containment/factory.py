"""Build `Containment` from the configuration: the store, the shared state, Postfix and listings."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from relayguard.config.schema import Settings
from relayguard.containment.commands import CommandQueue
from relayguard.containment.listing import Listings, open_dnsbl_listings
from relayguard.containment.release import Postsuper, PostsuperCli
from relayguard.containment.service import Containment, Store
from relayguard.containment.settings import ContainmentSettings
from relayguard.containment.shared_state import (
    Bounds,
    MemorySharedState,
    RedisSharedState,
    ResilientSharedState,
    SharedState,
)
from relayguard.core.clock import Clock, SystemClock


def containment_settings(settings: Settings) -> ContainmentSettings:
    c = settings.containment
    return c if isinstance(c, ContainmentSettings) else ContainmentSettings.model_validate(c)


def open_store(settings: Settings) -> Store:
    cs = containment_settings(settings)
    if cs.store == "postgres":
        from relayguard.containment.store_postgres import PostgresStore

        return PostgresStore(settings.storage.postgres_dsn)
    from relayguard.containment.store_sqlite import SqliteStore

    return SqliteStore(cs.sqlite_path or (settings.storage.data_path() / "containment.sqlite3"))


def open_shared(settings: Settings, clock: Clock | None = None, cache: bool = True) -> SharedState:
    """The configured shared state; `cache=False` for short-lived users (the CLI) that only queue commands."""
    cs = containment_settings(settings)
    bounds = Bounds(cs.state_ttl, cs.dedupe_ttl, cs.max_ids_per_customer, cs.max_customers)
    if cs.shared_state == "redis":
        if not settings.storage.redis_url:
            raise ValueError("[containment] shared_state = 'redis' needs [storage] redis_url")
        primary = RedisSharedState.from_url(settings.storage.redis_url, cs.redis_prefix, bounds, cs.redis_timeout)
        resilient = ResilientSharedState(primary, retry=cs.redis_retry, clock=clock)
        if cache and cs.state_cache > 0:
            from relayguard.containment.state_cache import CachedSharedState

            return CachedSharedState(resilient, ttl=cs.state_cache, retry=cs.redis_retry)
        return resilient
    return MemorySharedState(bounds, clock)


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    postsuper: Postsuper | None = None,
    listings: Listings | None = None,
    on_release: Sequence[Callable[[str], object]] = (),
) -> Containment:
    cs = containment_settings(settings)
    clk = clock or SystemClock()
    store = open_store(settings)
    shared = open_shared(settings, clk)
    # Commands go through Redis when the fleet shares it; otherwise through the store, which the CLI
    # (another process) and the daemon both open.
    commands: CommandQueue = shared if cs.shared_state == "redis" else store
    if postsuper is None:
        postsuper = PostsuperCli(cs.postfix_config_dir, cs.postsuper, cs.postqueue)
    if listings is None and cs.list_on_block:
        listings = open_dnsbl_listings(settings, clk)
    c = Containment(
        cs, store, shared, clock=clk, commands=commands, postsuper=postsuper, listings=listings, on_release=on_release
    )
    if cs.shared_state == "memory":
        c.warm()
    return c
