"""Listing a blocked customer's client addresses in an exploited-hosts zone, with expiry and reason.

The DNSBL server (src/relayguard/dnsbl) owns the zone; containment only needs to add and remove entries.
`Listings` is that narrow interface: `DnsblListings` puts entries in the DNSBL's live-listings store
(`relayguard.dnsbl.live`, SQLite or PostgreSQL), which `relayguard dnsbl serve ZONE:live` answers within a
second; `MemoryListings` serves tests.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from relayguard.core.clock import Clock, SystemClock

if TYPE_CHECKING:
    from relayguard.config.schema import Settings

log = logging.getLogger("relayguard.containment")


class Listings(Protocol):
    def add(
        self, zone: str, address: str, reason: str, expires_at: float, value: str = "127.0.0.4", evidence: str = ""
    ) -> None:
        """List `address` (an IPv4/IPv6 address or network) in `zone` until `expires_at`."""
        ...

    def remove(self, zone: str, address: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Listing:
    zone: str
    address: str
    reason: str
    expires_at: float
    value: str


class MemoryListings:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: dict[tuple[str, str], Listing] = {}

    def add(
        self, zone: str, address: str, reason: str, expires_at: float, value: str = "127.0.0.4", evidence: str = ""
    ) -> None:
        with self._lock:
            self.entries[(zone, address)] = Listing(zone, address, reason, expires_at, value)

    def remove(self, zone: str, address: str) -> None:
        with self._lock:
            self.entries.pop((zone, address), None)

    def listed(self, zone: str, address: str, t: float) -> Listing | None:
        e = self.entries.get((zone, address))
        return e if e is not None and e.expires_at > t else None


def listable(address: str) -> str | None:
    """A client address as a listing entry: IPv4 as is, IPv6 as its /64 (one host changes its interface id);
    None for anything that is not a global-looking address we should publish (empty, unparseable)."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class DnsblListings:
    """The DNSBL's live-listings store (`relayguard.dnsbl.live.ListingStore`) as containment's Listings."""

    def __init__(self, store: Any, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()

    def add(
        self, zone: str, address: str, reason: str, expires_at: float, value: str = "127.0.0.4", evidence: str = ""
    ) -> None:
        # the live store counts expiry from its own clock: hand it the time left, not our timestamp
        left = max(1.0, expires_at - self.clock.now())
        self.store.add(zone, address, code=value, reason=reason, evidence=evidence or None, expires_in=left)

    def remove(self, zone: str, address: str) -> None:
        self.store.remove(zone, address)

    def close(self) -> None:
        self.store.close()


def open_dnsbl_listings(settings: Settings, clock: Clock | None = None) -> DnsblListings | None:
    """The configured live-listings store, or None (with a log line) when it cannot be opened."""
    from relayguard.containment.settings import ContainmentSettings

    cs = settings.containment
    assert isinstance(cs, ContainmentSettings)
    try:
        from relayguard.dnsbl.live import open_store
    except ImportError as e:  # the DNSBL part is optional for containment
        log.warning("containment: no DNSBL live listings (%s); blocked customers are not listed", e)
        return None
    if cs.listing_store == "postgres":
        store = open_store(postgres_dsn=settings.storage.postgres_dsn)
    else:
        path = cs.listing_database or str(settings.storage.data_path() / "dnsbl.sqlite3")
        store = open_store(database=path)
    return DnsblListings(store, clock)
