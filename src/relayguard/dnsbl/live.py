"""Live listings: what relayguard itself decided to list (an exploited host, a spamvertised domain), with
reason, evidence and expiry, served as DNS zones within a second of the change, no files involved.

Storage sits behind the narrow ListingStore protocol: SQLite by default (nothing to install), PostgreSQL
when several servers share one set of listings. Every change is appended to a change log whose ids are
the zones' SOA serials: the serial moves on every change, and IXFR replays the log.

Other parts of relayguard use it like this:

    store = open_store(database="data/dnsbl.sqlite3")
    store.add("bl.example.net", "192.0.2.7", code="127.0.0.2", reason="proxy abuse", evidence="incident:42",
              expires_in=7 * 86400)
"""

from __future__ import annotations

import ipaddress
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from relayguard.dnsbl.answer import Answer, Limits, Query, Zone, fast_via_query
from relayguard.dnsbl.datafile import LineSource, Meta, Soa
from relayguard.dnsbl.dnset import DnSet
from relayguard.dnsbl.ip4 import Ip4Trie
from relayguard.dnsbl.ip6 import Ip6Trie

__all__ = ["Change", "Listing", "ListingStore", "LiveZones", "PostgresStore", "SqliteStore", "normalize_entry",
           "open_store", "parse_duration"]


class ListingError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Listing:
    zone: str
    entry: str  # canonical: "192.0.2.7", "192.0.2.0/24", "2001:db8::/48", "example.com", "*.example.com"
    code: str  # the A record, "127.0.0.2"
    reason: str
    evidence: str | None
    created: float
    expires: float | None  # unix time; None = until removed

    def active(self, now: float) -> bool:
        return self.expires is None or self.expires > now


@dataclass(frozen=True, slots=True)
class Change:
    serial: int
    zone: str
    entry: str
    op: str  # "add" or "del"
    code: str
    reason: str


class ListingStore(Protocol):
    """What the server, the CLI and the rest of relayguard need from listings storage."""

    def add(self, zone: str, entry: str, *, code: str = "127.0.0.2", reason: str = "",
            evidence: str | None = None, expires_in: float | None = None) -> Listing: ...

    def remove(self, zone: str, entry: str) -> bool: ...

    def get(self, zone: str, entry: str) -> Listing | None: ...

    def search(self, zone: str | None = None, text: str | None = None, *,
               include_expired: bool = False) -> list[Listing]: ...

    def expire(self, now: float | None = None) -> int:
        """Remove listings whose expiry passed (logging each as a change); how many."""
        ...

    def version(self) -> int:
        """The newest change id: it moves on every change."""
        ...

    def changes_since(self, zone: str, serial: int) -> list[Change] | None:
        """Changes of a zone after serial, oldest first; None if the log no longer reaches back that far."""
        ...

    def close(self) -> None: ...


_DUR = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.I)
_DUR_MULT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | None) -> float | None:
    """`7d`, `12h`, `30m`, `3600`; `never`/empty = no expiry."""
    if text is None or text.strip().lower() in ("", "never", "0", "none"):
        return None
    m = _DUR.match(text)
    if not m:
        raise ListingError(f"bad duration {text!r} (use e.g. 30m, 12h, 7d)")
    return float(int(m.group(1)) * _DUR_MULT[m.group(2).lower()])


def normalize_entry(entry: str) -> tuple[str, str]:
    """-> (kind, canonical entry); kind is ip4, ip6 or name. Raises ListingError."""
    e = entry.strip()
    if not e:
        raise ListingError("empty entry")
    try:
        net = ipaddress.ip_network(e, strict=True)
    except ValueError as err:
        if "/" in e or e.replace(".", "").isdigit() or ":" in e:
            raise ListingError(f"bad address or network {entry!r}: {err}") from None
    else:
        full = net.prefixlen == net.max_prefixlen
        text = str(net.network_address) if full else str(net)
        return ("ip4" if net.version == 4 else "ip6"), text
    name = e.lower().rstrip(".")
    wild = ""
    if name.startswith("*."):
        wild, name = "*.", name[2:]
    elif name.startswith("."):
        wild, name = ".", name[1:]
    if not re.fullmatch(r"[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*", name) or len(name) > 253:
        raise ListingError(f"bad domain {entry!r}")
    return "name", wild + name


def normalize_code(code: str) -> str:
    try:
        a = ipaddress.IPv4Address(code.strip())
    except ValueError:
        raise ListingError(f"bad return code {code!r} (an IPv4 address such as 127.0.0.2)") from None
    if int(a) == 0:
        raise ListingError("return code 0.0.0.0 is not allowed")
    return str(a)


def normalize_zone(zone: str) -> str:
    z = zone.strip().lower().rstrip(".")
    if not z or not re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*", z):
        raise ListingError(f"bad zone {zone!r}")
    return z


def _clean_text(text: str) -> str:
    # one line, printable: it ends up in TXT records and rbldnsd data files
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()[:200]


# ---------------------------------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------------------------------

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS dnsbl_listings (
    zone TEXT NOT NULL, entry TEXT NOT NULL, kind TEXT NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL,
    evidence TEXT, created REAL NOT NULL, expires REAL, PRIMARY KEY (zone, entry));
CREATE INDEX IF NOT EXISTS dnsbl_listings_expires ON dnsbl_listings (expires);
CREATE TABLE IF NOT EXISTS dnsbl_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, zone TEXT NOT NULL, entry TEXT NOT NULL, op TEXT NOT NULL,
    code TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS dnsbl_changes_zone ON dnsbl_changes (zone, id);
"""

CHANGE_LOG_KEEP = 100_000  # rows of change log kept for IXFR; older secondaries get a full AXFR


_LISTING_COLS = "zone, entry, code, reason, evidence, created, expires"


def _search_sql(table: str, ph: str, zone: str | None, text: str | None,
                include_expired: bool) -> tuple[str, list[Any]]:
    """The search query for both stores: `ph` is the driver's placeholder (SQLite `?`, psycopg `%s`)."""
    sql = f"SELECT {_LISTING_COLS} FROM {table} WHERE 1=1"
    args: list[Any] = []
    if zone:
        sql += f" AND zone={ph}"
        args.append(normalize_zone(zone))
    if text:
        sql += f" AND (entry LIKE {ph} OR reason LIKE {ph} OR evidence LIKE {ph})"
        like = f"%{text}%"
        args += [like, like, like]
    if not include_expired:
        sql += f" AND (expires IS NULL OR expires > {ph})"
        args.append(time.time())
    return sql + " ORDER BY zone, entry", args


def _row_listing(r: Sequence[Any]) -> Listing:
    return Listing(r[0], r[1], r[2], r[3], r[4], float(r[5]), None if r[6] is None else float(r[6]))


class SqliteStore:
    """Listings in one SQLite file (WAL mode: the server reads while the CLI writes)."""

    def __init__(self, path: str) -> None:
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SQLITE_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, zone: str, entry: str, *, code: str = "127.0.0.2", reason: str = "",
            evidence: str | None = None, expires_in: float | None = None) -> Listing:
        z = normalize_zone(zone)
        kind, e = normalize_entry(entry)
        c = normalize_code(code)
        now = time.time()
        lst = Listing(z, e, c, _clean_text(reason), _clean_text(evidence) if evidence else None, now,
                      None if expires_in is None else now + expires_in)
        with self._tx() as db:
            old = db.execute("SELECT code, reason FROM dnsbl_listings WHERE zone=? AND entry=?", (z, e)).fetchone()
            if old is not None:  # a replacement is a removal then an addition: IXFR needs both
                db.execute("INSERT INTO dnsbl_changes (zone, entry, op, code, reason, at) VALUES (?,?,?,?,?,?)",
                           (z, e, "del", old[0], old[1], now))
            db.execute("INSERT OR REPLACE INTO dnsbl_listings VALUES (?,?,?,?,?,?,?,?)",
                       (z, e, kind, c, lst.reason, lst.evidence, now, lst.expires))
            db.execute("INSERT INTO dnsbl_changes (zone, entry, op, code, reason, at) VALUES (?,?,?,?,?,?)",
                       (z, e, "add", c, lst.reason, now))
        return lst

    def remove(self, zone: str, entry: str) -> bool:
        z = normalize_zone(zone)
        _, e = normalize_entry(entry)
        with self._tx() as db:
            cur = db.execute("DELETE FROM dnsbl_listings WHERE zone=? AND entry=? RETURNING code, reason", (z, e))
            row = cur.fetchone()
            if row is None:
                return False
            db.execute("INSERT INTO dnsbl_changes (zone, entry, op, code, reason, at) VALUES (?,?,?,?,?,?)",
                       (z, e, "del", row[0], row[1], time.time()))
        return True

    def get(self, zone: str, entry: str) -> Listing | None:
        z = normalize_zone(zone)
        _, e = normalize_entry(entry)
        with self._lock:
            r = self._db.execute(f"SELECT {_LISTING_COLS} FROM dnsbl_listings WHERE zone=? AND entry=?",
                                 (z, e)).fetchone()
        return None if r is None else _row_listing(r)

    def search(self, zone: str | None = None, text: str | None = None, *,
               include_expired: bool = False) -> list[Listing]:
        sql, args = _search_sql("dnsbl_listings", "?", zone, text, include_expired)
        with self._lock:
            return [_row_listing(r) for r in self._db.execute(sql, args).fetchall()]

    def expire(self, now: float | None = None) -> int:
        t = time.time() if now is None else now
        with self._tx() as db:
            rows = db.execute("DELETE FROM dnsbl_listings WHERE expires IS NOT NULL AND expires <= ? "
                              "RETURNING zone, entry, code, reason", (t,)).fetchall()
            for z, e, c, r in rows:
                db.execute("INSERT INTO dnsbl_changes (zone, entry, op, code, reason, at) VALUES (?,?,?,?,?,?)",
                           (z, e, "del", c, r, t))
            if rows:
                db.execute("DELETE FROM dnsbl_changes WHERE id <= (SELECT MAX(id) FROM dnsbl_changes) - ?",
                           (CHANGE_LOG_KEEP,))
        return len(rows)

    def version(self) -> int:
        with self._lock:
            r = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM dnsbl_changes").fetchone()
        return int(r[0])

    def changes_since(self, zone: str, serial: int) -> list[Change] | None:
        z = normalize_zone(zone)
        with self._lock:
            first = self._db.execute("SELECT MIN(id) FROM dnsbl_changes WHERE zone=?", (z,)).fetchone()[0]
            if first is not None and serial < first - 1 and serial != 0:
                return None
            rows = self._db.execute("SELECT id, zone, entry, op, code, reason FROM dnsbl_changes "
                                    "WHERE zone=? AND id>? ORDER BY id", (z, serial)).fetchall()
        return [Change(*r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


# ---------------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------------


class PostgresStore:
    """Listings shared by several servers. Tables live in `schema` (default public)."""

    def __init__(self, dsn: str, schema: str = "public") -> None:
        import psycopg

        if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
            raise ListingError(f"bad schema name {schema!r}")
        self.schema = schema
        self._lock = threading.Lock()
        self._db = psycopg.connect(dsn, autocommit=True)
        s = schema
        with self._db.transaction():
            self._db.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.dnsbl_listings (zone TEXT NOT NULL, entry TEXT NOT NULL, "
                "kind TEXT NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL, evidence TEXT, "
                "created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION, PRIMARY KEY (zone, entry))")
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.dnsbl_changes (id BIGSERIAL PRIMARY KEY, zone TEXT NOT NULL, "
                "entry TEXT NOT NULL, op TEXT NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL, "
                "at DOUBLE PRECISION NOT NULL)")
            self._db.execute(f"CREATE INDEX IF NOT EXISTS dnsbl_changes_zone ON {s}.dnsbl_changes (zone, id)")

    def _log(self, z: str, e: str, op: str, code: str, reason: str, at: float) -> None:
        self._db.execute(f"INSERT INTO {self.schema}.dnsbl_changes (zone, entry, op, code, reason, at) "
                         "VALUES (%s,%s,%s,%s,%s,%s)", (z, e, op, code, reason, at))

    def add(self, zone: str, entry: str, *, code: str = "127.0.0.2", reason: str = "",
            evidence: str | None = None, expires_in: float | None = None) -> Listing:
        z = normalize_zone(zone)
        kind, e = normalize_entry(entry)
        c = normalize_code(code)
        now = time.time()
        lst = Listing(z, e, c, _clean_text(reason), _clean_text(evidence) if evidence else None, now,
                      None if expires_in is None else now + expires_in)
        with self._lock, self._db.transaction():
            old = self._db.execute(f"SELECT code, reason FROM {self.schema}.dnsbl_listings WHERE zone=%s AND "
                                   "entry=%s FOR UPDATE", (z, e)).fetchone()
            if old is not None:  # a replacement is a removal then an addition: IXFR needs both
                self._log(z, e, "del", old[0], old[1], now)
            self._db.execute(
                f"INSERT INTO {self.schema}.dnsbl_listings VALUES (%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (zone, entry) DO UPDATE SET kind=EXCLUDED.kind, code=EXCLUDED.code, "
                "reason=EXCLUDED.reason, evidence=EXCLUDED.evidence, created=EXCLUDED.created, "
                "expires=EXCLUDED.expires", (z, e, kind, c, lst.reason, lst.evidence, now, lst.expires))
            self._log(z, e, "add", c, lst.reason, now)
        return lst

    def remove(self, zone: str, entry: str) -> bool:
        z = normalize_zone(zone)
        _, e = normalize_entry(entry)
        with self._lock, self._db.transaction():
            row = self._db.execute(f"DELETE FROM {self.schema}.dnsbl_listings WHERE zone=%s AND entry=%s "
                                   "RETURNING code, reason", (z, e)).fetchone()
            if row is None:
                return False
            self._log(z, e, "del", row[0], row[1], time.time())
        return True

    def get(self, zone: str, entry: str) -> Listing | None:
        z = normalize_zone(zone)
        _, e = normalize_entry(entry)
        with self._lock:
            r = self._db.execute(f"SELECT {_LISTING_COLS} FROM {self.schema}.dnsbl_listings WHERE zone=%s AND entry=%s",
                                 (z, e)).fetchone()
        return None if r is None else _row_listing(r)

    def search(self, zone: str | None = None, text: str | None = None, *,
               include_expired: bool = False) -> list[Listing]:
        sql, args = _search_sql(f"{self.schema}.dnsbl_listings", "%s", zone, text, include_expired)
        with self._lock:
            return [_row_listing(r) for r in self._db.execute(sql, args).fetchall()]

    def expire(self, now: float | None = None) -> int:
        t = time.time() if now is None else now
        with self._lock, self._db.transaction():
            rows = self._db.execute(f"DELETE FROM {self.schema}.dnsbl_listings WHERE expires IS NOT NULL AND "
                                    "expires <= %s RETURNING zone, entry, code, reason", (t,)).fetchall()
            for z, e, c, r in rows:
                self._log(z, e, "del", c, r, t)
        return len(rows)

    def version(self) -> int:
        with self._lock:
            r = self._db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self.schema}.dnsbl_changes").fetchone()
        return int(r[0]) if r else 0

    def changes_since(self, zone: str, serial: int) -> list[Change] | None:
        z = normalize_zone(zone)
        with self._lock:
            first = self._db.execute(f"SELECT MIN(id) FROM {self.schema}.dnsbl_changes WHERE zone=%s",
                                     (z,)).fetchone()
            if first and first[0] is not None and serial < first[0] - 1 and serial != 0:
                return None
            rows = self._db.execute(f"SELECT id, zone, entry, op, code, reason FROM {self.schema}.dnsbl_changes "
                                    "WHERE zone=%s AND id>%s ORDER BY id", (z, serial)).fetchall()
        return [Change(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(*, database: str | None = None, postgres_dsn: str | None = None,
               schema: str = "public") -> ListingStore:
    """PostgreSQL when a DSN is given, else SQLite at database (default data/dnsbl.sqlite3)."""
    if postgres_dsn:
        return PostgresStore(postgres_dsn, schema)
    return SqliteStore(database or os.path.join("data", "dnsbl.sqlite3"))


# ---------------------------------------------------------------------------------------------------
# Serving: listings -> zones
# ---------------------------------------------------------------------------------------------------


def _txt(lst: Listing) -> str:
    # "$" would be a substitution in rbldnsd syntax
    return (lst.reason or "listed").replace("$", "$$")


def listing_lines(listings: Sequence[Listing]) -> tuple[list[str], list[str], list[str]]:
    """rbldnsd ip4trie, ip6trie and dnset lines for listings (also what feeds export)."""
    v4: list[str] = []
    v6: list[str] = []
    names: list[str] = []
    for lst in listings:
        line = f"{lst.entry} :{lst.code}:{_txt(lst)}"
        kind, _ = normalize_entry(lst.entry)
        (v4 if kind == "ip4" else v6 if kind == "ip6" else names).append(line)
    return v4, v6, names


class LiveDataset:
    """One live zone's listings, built into the same structures as file datasets."""

    kind = "live"

    def __init__(self, listings: Sequence[Listing], limits: Limits, ttl: int) -> None:
        lim = Limits(ttl, limits.minttl, limits.maxttl)
        v4, v6, names = listing_lines(listings)
        self.meta = Meta()
        self.parts: list[Any] = []
        if v4:
            self.parts.append(Ip4Trie.load([LineSource("live4", tuple(v4))], lim))
        if v6:
            self.parts.append(Ip6Trie.load([LineSource("live6", tuple(v6))], lim))
        if names:
            self.parts.append(DnSet.load([LineSource("names", tuple(names))], lim))
        self.n = len(listings)

    def count(self) -> int:
        return self.n

    def query(self, q: Query, ans: Answer) -> bool:
        found = False
        for p in self.parts:
            if p.query(q, ans):
                found = True
        return found

    def fast(self, name: str, labels: tuple[str, ...], qtype: int, out: list[bytes]) -> bool:
        found = False
        for p in self.parts:
            if fast_via_query(p, labels, qtype, out, None):
                found = True
        return found


@dataclass
class LiveConfig:
    ttl: int = 60  # short: a change should reach resolvers quickly
    refresh: int = 600
    retry: int = 300
    expire: int = 86400
    minimum: int = 60
    ns: tuple[str, ...] = ()
    hostmaster: str | None = None


class LiveZones:
    """Callable that the server polls: () -> (version, zones). Expired listings are purged on the way."""

    def __init__(self, store: ListingStore, zones: Sequence[str], limits: Limits | None = None,
                 config: LiveConfig | None = None) -> None:
        self.store = store
        self.names = [normalize_zone(z) for z in zones]
        self.limits = limits or Limits()
        self.config = config or LiveConfig()
        self._next_expiry_check = 0.0

    def version(self) -> int:
        now = time.time()
        if now >= self._next_expiry_check:
            # expiry is a change too (the serial must move), so purge before reading the version
            self.store.expire(now)
            self._next_expiry_check = now + 0.5
        return self.store.version()

    def __call__(self) -> tuple[int, list[Zone]]:
        v = self.version()
        listings = self.store.search()
        by_zone: dict[str, list[Listing]] = {z: [] for z in self.names}
        for lst in listings:
            if lst.zone in by_zone:
                by_zone[lst.zone].append(lst)
        return v, [self.zone(z, by_zone[z], v) for z in self.names]

    def zone(self, name: str, listings: Sequence[Listing], serial: int) -> Zone:
        c = self.config
        ds = LiveDataset(listings, self.limits, c.ttl)
        ns = list(c.ns) or [f"ns.{name}"]
        soa = Soa(c.ttl, ns[0], c.hostmaster or f"hostmaster.{name}", max(serial, 1), c.refresh, c.retry,
                  c.expire, c.minimum)
        z = Zone(name, [ds], soa=soa, serial=max(serial, 1), ns=ns, ns_ttl=c.ttl, soa_ttl=c.ttl, ttl=c.ttl,
                 live=True)
        return z
