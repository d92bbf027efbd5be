"""Sets of networks with `!` exclusions, as SpamAssassin's trusted_networks understand them.

The most specific matching entry decides, so `10.0.0.0/8` with `!10.1.0.0/16` contains 10.2.3.4 but not
10.1.2.3, whatever the order the entries were written in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=65_536)
def parse_ip(text: str | None) -> IPAddress | None:
    """An address from text, tolerating brackets and IPv4-mapped IPv6; None if it is not one."""
    if not text:
        return None
    t = text.strip().strip("[]")
    if t[:5].lower() == "ipv6:":
        t = t[5:]
    # Cheap rejection before ipaddress (which raises, and exceptions are slow on the hot path):
    # an address starts with a digit (IPv4, most IPv6) or a hex letter / colon with a colon inside.
    if not t or (":" not in t and not t[0].isdigit()):
        return None
    try:
        addr = ipaddress.ip_address(t)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@dataclass(frozen=True, slots=True)
class NetEntry:
    network: IPNetwork
    exclude: bool


def parse_net_entry(text: str) -> NetEntry:
    """`192.0.2.0/24`, `!192.0.2.7`, `2001:db8::/32`; raises ValueError with a readable reason."""
    t = text.strip()
    exclude = t.startswith("!")
    if exclude:
        t = t[1:].strip()
    if not t:
        raise ValueError("empty network entry")
    try:
        net = ipaddress.ip_network(t, strict=False)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IP address or CIDR network ({exc})") from None
    return NetEntry(net, exclude)


class NetSet:
    """An immutable set of networks; membership by longest match, exclusions win at equal length."""

    __slots__ = ("_entries", "_texts")

    def __init__(self, entries: Iterable[str] = ()) -> None:
        texts = tuple(entries)
        parsed = [parse_net_entry(e) for e in texts]
        # Longest prefix first; at equal length exclusions first, so they win.
        parsed.sort(key=lambda e: (-e.network.prefixlen, not e.exclude))
        self._entries: tuple[NetEntry, ...] = tuple(parsed)
        self._texts = texts

    @property
    def texts(self) -> tuple[str, ...]:
        return self._texts

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def contains(self, addr: IPAddress | str | None) -> bool:
        ip = parse_ip(addr) if isinstance(addr, str) or addr is None else addr
        if ip is None:
            return False
        for entry in self._entries:
            if entry.network.version == ip.version and ip in entry.network:
                return not entry.exclude
        return False

    def __contains__(self, addr: object) -> bool:
        if isinstance(addr, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
            return self.contains(addr)
        return False

    def __repr__(self) -> str:
        return f"NetSet({list(self._texts)!r})"


# SpamAssassin's IP_PRIVATE: private, loopback, link-local and CGNAT space. Documentation prefixes are
# deliberately not here: tests and examples use them as stand-ins for public addresses.
_PRIVATE_V4 = NetSet(
    ["10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"]
)
_PRIVATE_V6 = NetSet(["::1/128", "fc00::/7", "fe80::/10"])


def is_private(addr: IPAddress | str | None) -> bool:
    """Private, loopback, link-local or CGNAT space (SpamAssassin's IP_PRIVATE)."""
    ip = parse_ip(addr) if isinstance(addr, str) or addr is None else addr
    if ip is None:
        return False
    return _PRIVATE_V4.contains(ip) if ip.version == 4 else _PRIVATE_V6.contains(ip)
