"""Listing a blocked customer's client addresses in an exploited-hosts zone, with expiry and reason.

The DNSBL server (src/relayguard/dnsbl) owns the zone; containment only needs to add and remove entries.
`Listings` is that narrow interface: the DNSBL's live-listings store satisfies it when wired
(see docs/containment.md), `MemoryListings` serves tests and the embedded demo.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from typing import Protocol


class Listings(Protocol):
    def add(self, zone: str, address: str, reason: str, expires_at: float, value: str = "127.0.0.4") -> None:
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

    def add(self, zone: str, address: str, reason: str, expires_at: float, value: str = "127.0.0.4") -> None:
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
