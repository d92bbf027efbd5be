"""Who sent this message: the customer behind a SASL login or a (client address, time) pair.

Order of precedence (the most trustworthy first):

1. the SASL login (`login:<name>`): the relay authenticated it;
2. a dynamic lease that covered the client address *at that moment* (`sub:<subscriber>`), from RADIUS
   accounting start/stop records or DHCP lease records, kept with history so a late message still maps
   to whoever held the address when it was sent, and the next holder of an address never inherits the
   last one's history;
3. a static assignment from a CIDR file (`sub:<subscriber>`), longest prefix first;
4. otherwise the address itself (`ip:<v4>`) or, for IPv6, the delegated prefix (`net6:<prefix>`) since a
   customer's devices rotate through a whole /64 (or /56) and per-address keys would split one customer
   into thousands.

Lease records, one per line (the parsers refuse anything else with ParseError):

* RADIUS accounting as `Attribute=Value` pairs (FreeRADIUS `linelog`/detail attributes on one line):
  `Acct-Status-Type=Start User-Name=cust42 Framed-IP-Address=192.0.2.7 Event-Timestamp=1700000000`;
  `Framed-IPv6-Prefix` / `Delegated-IPv6-Prefix` carry IPv6 prefixes; `Stop` ends the lease,
  `Interim-Update` confirms it. Values may be double-quoted.
* Kea DHCP memfile rows (`lease4.csv`: address,hwaddr,client_id,valid_lifetime,expire,...;
  `lease6.csv`: address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,...).
  The subscriber is the hardware address (v4) or DUID (v6); the lease runs from expire - valid_lifetime
  to expire. Header rows are skipped.
"""

from __future__ import annotations

import bisect
import ipaddress
import logging
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from relayguard.core.errors import ParseError
from relayguard.core.netset import IPAddress, IPNetwork, parse_ip
from relayguard.message.facts import Envelope

log = logging.getLogger("relayguard.outbound")

MAX_LINE = 4096  # a lease or CIDR line longer than this is refused, not parsed
MEMO_SIZE = 200_000  # entries per IdentityResolver.customer() memo (cleared when full)


@dataclass(frozen=True, slots=True)
class Identity:
    customer: str  # "login:alice", "sub:SUB-1", "ip:192.0.2.7", "net6:2001:db8::/64"
    source: str  # "sasl", "lease", "static", "address", "unknown"
    network: str | None  # the client network (v4 /24 or the v6 prefix) for per-login network counting


# ---------------------------------------------------------------------------------------------------
# Static assignments
# ---------------------------------------------------------------------------------------------------


@lru_cache(maxsize=131_072)
def supernet(ip: IPAddress, plen: int) -> IPNetwork:
    """The /plen network holding `ip`. Cached: the policy path asks about the same clients again and
    again, and building a network from text was the largest cost of identifying a customer."""
    return ipaddress.ip_network((ip, plen), strict=False)


def parse_cidr_line(line: str) -> tuple[IPNetwork, str] | None:
    """`<network> <subscriber> [# comment]` -> (network, subscriber); None for blank/comment lines."""
    if len(line) > MAX_LINE:
        raise ParseError(f"line longer than {MAX_LINE} characters")
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    parts = text.split()
    if len(parts) != 2:
        raise ParseError(f"expected '<network> <subscriber>', got {len(parts)} fields")
    try:
        net = ipaddress.ip_network(parts[0], strict=False)
    except ValueError:
        raise ParseError(f"{parts[0]!r} is not a network") from None
    if not parts[1].isprintable():
        raise ParseError("subscriber id has unprintable characters")
    return net, parts[1]


class StaticAssignments:
    """Longest-prefix match over a CIDR file's networks."""

    def __init__(self, entries: Iterable[tuple[IPNetwork, str]] = ()) -> None:
        self._by_len: dict[tuple[int, int], dict[IPNetwork, str]] = {}
        for net, sub in entries:
            self._by_len.setdefault((net.version, net.prefixlen), {})[net] = sub
        # Longest prefix first so the most specific assignment wins.
        self._lens = sorted(self._by_len, key=lambda vl: -vl[1])

    @classmethod
    def parse(cls, text: str, source: str = "<cidr>") -> StaticAssignments:
        entries = []
        for n, line in enumerate(text.splitlines(), 1):
            try:
                e = parse_cidr_line(line)
            except ParseError as exc:
                raise ParseError(f"{source}:{n}: {exc}") from None
            if e is not None:
                entries.append(e)
        return cls(entries)

    @classmethod
    def load(cls, path: str | Path) -> StaticAssignments:
        return cls.parse(Path(path).read_text(encoding="utf-8", errors="replace"), str(path))

    def __len__(self) -> int:
        return sum(len(d) for d in self._by_len.values())

    def lookup(self, ip: IPAddress) -> str | None:
        for version, plen in self._lens:
            if version != ip.version:
                continue
            net = supernet(ip, plen)
            sub = self._by_len[(version, plen)].get(net)
            if sub is not None:
                return sub
        return None


# ---------------------------------------------------------------------------------------------------
# Lease records
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    kind: str  # "start", "stop", "interval"
    network: IPNetwork  # a /32 (/128) for a single address, or a delegated prefix
    subscriber: str
    start: float
    end: float | None = None  # only for "interval"


def _parse_time(text: str) -> float:
    try:
        t = float(text)
    except ValueError:
        raise ParseError(f"{text!r} is not a Unix time") from None
    if not 0 <= t < 1e11:
        raise ParseError(f"time {text!r} out of range")
    return t


def _as_network(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ParseError(f"{text!r} is not an address or prefix") from None


def _parse_radius(line: str) -> LeaseRecord | None:
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError as exc:
        raise ParseError(f"RADIUS record: {exc}") from None
    attrs: dict[str, str] = {}
    for tok in tokens:
        name, sep, value = tok.partition("=")
        if not sep or not name:
            raise ParseError(f"RADIUS record: {tok[:40]!r} is not Attribute=Value")
        attrs[name.strip().lower()] = value.strip()
    status = attrs.get("acct-status-type", "").lower()
    user = attrs.get("user-name") or attrs.get("class")
    if not user or not user.isprintable() or any(c.isspace() for c in user):
        raise ParseError("RADIUS record: missing or unusable User-Name")
    addr = (
        attrs.get("framed-ip-address")
        or attrs.get("delegated-ipv6-prefix")
        or attrs.get("framed-ipv6-prefix")
        or attrs.get("framed-ipv6-address")
    )
    if not addr:
        raise ParseError("RADIUS record: no Framed-IP-Address or IPv6 prefix")
    net = _as_network(addr)
    if "event-timestamp" not in attrs:
        raise ParseError("RADIUS record: no Event-Timestamp")
    t = _parse_time(attrs["event-timestamp"])
    if status in ("start", "interim-update", "alive"):
        return LeaseRecord("start", net, user, t)
    if status == "stop":
        return LeaseRecord("stop", net, user, t)
    if status in ("accounting-on", "accounting-off"):
        return None  # NAS reboots say nothing about one subscriber
    raise ParseError(f"RADIUS record: unknown Acct-Status-Type {status!r}")


def _parse_kea(line: str) -> LeaseRecord | None:
    f = [x.strip() for x in line.split(",")]
    if f[0] == "address":
        return None  # header row
    ip = parse_ip(f[0])
    if ip is None:
        raise ParseError(f"Kea lease: {f[0][:40]!r} is not an address")
    if ip.version == 4:
        if len(f) < 5:
            raise ParseError("Kea lease4 row: expected address,hwaddr,client_id,valid_lifetime,expire,...")
        sub, lifetime, expire = f[1] or f[2], f[3], f[4]
        net: IPNetwork = ipaddress.ip_network(ip)
    else:
        if len(f) < 9:
            raise ParseError("Kea lease6 row: expected address,duid,valid_lifetime,expire,...,prefix_len,...")
        sub, lifetime, expire = f[1], f[2], f[3]
        try:
            plen = int(f[8])
        except ValueError:
            raise ParseError(f"Kea lease6 row: prefix_len {f[8][:20]!r}") from None
        if not 0 <= plen <= 128:
            raise ParseError("Kea lease6 row: prefix_len out of range")
        net = supernet(ip, plen)
    if not sub or not sub.isprintable() or any(c.isspace() for c in sub):
        raise ParseError("Kea lease: no usable hwaddr/client_id/duid")
    end = _parse_time(expire)
    life = _parse_time(lifetime)
    if life == 0 or end == 0:
        # Kea writes expire=0 / lifetime 0 for released leases: the address is free from now on.
        return LeaseRecord("stop", net, sub, end)
    return LeaseRecord("interval", net, sub, max(0.0, end - life), end)


def parse_lease_line(line: str) -> LeaseRecord | None:
    """One RADIUS accounting or Kea lease line; None for blank/comment/header lines."""
    if len(line) > MAX_LINE:
        raise ParseError(f"line longer than {MAX_LINE} characters")
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if "=" in text and "acct-status-type" in text.lower():
        return _parse_radius(text)
    if "," in text:
        return _parse_kea(text)
    raise ParseError("neither a RADIUS Attribute=Value record nor a Kea lease CSV row")


@dataclass(slots=True)
class _Interval:
    start: float
    end: float | None  # None while the lease is open
    subscriber: str


class LeaseHistory:
    """Who held an address (or delegated prefix) when: intervals per network, kept for `history` s."""

    def __init__(self, history: float = 30 * 86400.0, max_networks: int = 2_000_000) -> None:
        self.history = history
        self.max_networks = max_networks
        self._leases: dict[IPNetwork, list[_Interval]] = {}
        self._v6_lens: set[int] = set()
        self._v4_lens: set[int] = set()
        self.errors = 0

    def __len__(self) -> int:
        return len(self._leases)

    def add(self, rec: LeaseRecord) -> None:
        ivs = self._leases.get(rec.network)
        if ivs is None:
            if len(self._leases) >= self.max_networks:
                log.warning("lease history full (%d networks); record dropped", self.max_networks)
                return
            ivs = self._leases[rec.network] = []
            (self._v4_lens if rec.network.version == 4 else self._v6_lens).add(rec.network.prefixlen)
        if rec.kind == "start":
            last = ivs[-1] if ivs else None
            if last is not None and last.end is None:
                if last.subscriber == rec.subscriber:
                    return  # interim update of the same session
                last.end = rec.start  # the address moved on: the old holder's lease ended here
            ivs.append(_Interval(rec.start, None, rec.subscriber))
        elif rec.kind == "stop":
            for iv in reversed(ivs):
                if iv.subscriber == rec.subscriber and (iv.end is None or iv.end > rec.start):
                    iv.end = max(iv.start, rec.start)
                    break
        else:
            # A complete interval (DHCP): renewals arrive as overlapping intervals of one holder; a new
            # holder cuts the previous one short.
            for iv in reversed(ivs):
                overlaps = iv.end is None or iv.end > rec.start
                if iv.subscriber != rec.subscriber and overlaps and iv.start < rec.start:
                    iv.end = rec.start
                if iv.start <= rec.start:
                    break
            ivs.append(_Interval(rec.start, rec.end, rec.subscriber))
        ivs.sort(key=lambda iv: iv.start)

    def load_lines(self, lines: Iterable[str], source: str = "<leases>") -> int:
        """Add every parseable line; malformed ones are counted and logged, never fatal."""
        n = 0
        for i, line in enumerate(lines, 1):
            try:
                rec = parse_lease_line(line)
            except ParseError as exc:
                self.errors += 1
                log.warning("%s:%d: %s", source, i, exc)
                continue
            if rec is not None:
                self.add(rec)
                n += 1
        return n

    def _holder(self, net: IPNetwork, t: float) -> str | None:
        ivs = self._leases.get(net)
        if not ivs:
            return None
        i = bisect.bisect_right([iv.start for iv in ivs], t)
        for iv in reversed(ivs[:i]):
            if iv.end is None or t < iv.end:
                return iv.subscriber
        return None

    def lookup(self, ip: IPAddress, t: float) -> tuple[str, IPNetwork] | None:
        """The subscriber that held `ip` at time `t`, and the leased network; None if nobody did."""
        lens = self._v4_lens if ip.version == 4 else self._v6_lens
        for plen in sorted(lens, reverse=True):
            net = supernet(ip, plen)
            sub = self._holder(net, t)
            if sub is not None:
                return sub, net
        return None

    def prune(self, now: float) -> None:
        """Forget leases that ended more than `history` seconds ago."""
        horizon = now - self.history
        for net in list(self._leases):
            ivs = [iv for iv in self._leases[net] if iv.end is None or iv.end >= horizon]
            if ivs:
                self._leases[net] = ivs
            else:
                del self._leases[net]


# ---------------------------------------------------------------------------------------------------
# The resolver
# ---------------------------------------------------------------------------------------------------


def client_network(ip: IPAddress, ipv6_prefix: int) -> IPNetwork:
    """The network a client address stands for: its /24 (v4), or its delegated prefix (v6)."""
    plen = 24 if ip.version == 4 else ipv6_prefix
    return supernet(ip, plen)


class IdentityResolver:
    def __init__(
        self,
        static: StaticAssignments | None = None,
        leases: LeaseHistory | None = None,
        ipv6_prefix: int = 64,
    ) -> None:
        # `is None`, not `or`: an empty history handed in is filled later (a lease feed) and must be the one used
        self.static = static if static is not None else StaticAssignments()
        self.leases = leases if leases is not None else LeaseHistory()
        self.ipv6_prefix = ipv6_prefix
        # customer() memos: a login's key never changes; an address's does only with the static
        # assignments (compared by identity) or a lease, which is looked up first, every time.
        self._login_keys: dict[str, str] = {}
        self._address_keys: dict[str, str] = {}
        self._keys_static = self.static

    def resolve(self, env: Envelope, t: float) -> Identity:
        ip = parse_ip(env.client_ip)
        network = str(client_network(ip, self.ipv6_prefix)) if ip is not None else None
        if env.sasl_username:
            return Identity(f"login:{env.sasl_username.strip().lower()}", "sasl", network)
        if ip is None:
            return Identity("unknown", "unknown", None)
        held = self.leases.lookup(ip, t)
        if held is not None:
            return Identity(f"sub:{held[0]}", "lease", network)
        sub = self.static.lookup(ip)
        if sub is not None:
            return Identity(f"sub:{sub}", "static", network)
        if ip.version == 6:
            return Identity(f"net6:{network}", "address", network)
        return Identity(f"ip:{ip}", "address", network)

    def customer(self, sasl_username: str, client_ip: str, t: float) -> str:
        """`resolve(Envelope(sasl_username=..., client_ip=...), t).customer` for the policy hot path: no
        Identity, no network text, and the answers that cannot change between calls come from memos."""
        if sasl_username:
            key = self._login_keys.get(sasl_username)
            if key is None:
                if len(self._login_keys) >= MEMO_SIZE:
                    self._login_keys.clear()
                key = self.resolve(Envelope(sasl_username=sasl_username), t).customer
                self._login_keys[sasl_username] = key
            return key
        if self.leases:
            ip = parse_ip(client_ip)
            if ip is None:
                return "unknown"
            held = self.leases.lookup(ip, t)
            if held is not None:
                return f"sub:{held[0]}"
        if self._keys_static is not self.static:
            self._address_keys.clear()
            self._keys_static = self.static
        key = self._address_keys.get(client_ip)
        if key is None:
            # no lease holds it now (looked up above), so resolve() answers from the static table or the
            # address itself: what the memo may keep
            key = self.resolve(Envelope(client_ip=client_ip), t).customer
            if key == "unknown":
                return key
            if len(self._address_keys) >= MEMO_SIZE:
                self._address_keys.clear()
            self._address_keys[client_ip] = key
        return key


class LoginNetworks:
    """Per SASL login, the distinct client networks it was used from within a window.

    One login used from many networks at once is the mark of stolen credentials being used through
    residential proxies; a travelling customer shows two or three.
    """

    def __init__(self, window: float = 86400.0, max_logins: int = 1_000_000) -> None:
        self.window = window
        self.max_logins = max_logins
        self._seen: dict[str, dict[str, float]] = {}

    def observe(self, login: str, network: str | None, t: float) -> int:
        nets = self._seen.get(login)
        if nets is None:
            if len(self._seen) >= self.max_logins:
                self._seen.pop(next(iter(self._seen)))  # oldest login first (insertion order)
            nets = self._seen[login] = {}
        if network is not None:
            nets[network] = t
        horizon = t - self.window
        for n in [n for n, seen in nets.items() if seen < horizon]:
            del nets[n]
        return len(nets)

    def count(self, login: str, t: float) -> int:
        nets = self._seen.get(login, {})
        return sum(1 for seen in nets.values() if seen >= t - self.window)
