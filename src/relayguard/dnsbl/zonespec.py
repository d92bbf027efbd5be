"""rbldnsd command lines: `zone:type:file[,file...]` specs and the options -b -w -t -n -a -A -c (and the
ones accepted for compatibility but meaningless here), and building a ZoneSet from them.

Datasets named by the same type and file list are loaded once and shared by every zone using them, as
rbldnsd does; a zone listed several times accumulates datasets in command-line order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from relayguard.dnsbl.acl import Acl
from relayguard.dnsbl.answer import Dataset, Limits, Zone, ZoneSet
from relayguard.dnsbl.combined import Combined
from relayguard.dnsbl.datafile import Source, mtime_serial, parse_time
from relayguard.dnsbl.dnset import DnSet
from relayguard.dnsbl.generic import Generic
from relayguard.dnsbl.ip4 import Ip4Set, Ip4Trie, Ip4TSet
from relayguard.dnsbl.ip6 import Ip6Trie, Ip6TSet

FILE_TYPES = ("ip4set", "ip4tset", "ip4trie", "ip6trie", "ip6tset", "dnset", "combined", "generic", "acl")


class SpecError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    zone: str
    dtype: str
    files: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> ZoneSpec:
        parts = text.split(":", 2)
        if len(parts) == 2 and parts[1].lower() == "live":
            return cls(parts[0].strip(".").lower(), "live", ())
        if len(parts) != 3:
            raise SpecError(f"zone spec {text!r}: expected zone:type:file[,file...] or zone:live")
        zone, dtype, files = parts
        dtype = dtype.lower()
        if dtype not in FILE_TYPES:
            raise SpecError(f"zone spec {text!r}: unknown dataset type {dtype!r}")
        flist = tuple(f for f in files.split(",") if f)
        if not flist:
            raise SpecError(f"zone spec {text!r}: no files")
        zone = zone.strip(".").lower()
        if not zone and dtype != "acl":
            raise SpecError(f"zone spec {text!r}: empty zone name is only allowed for acl")
        return cls(zone, dtype, flist)


@dataclass(slots=True)
class Options:
    """What rbldnsd's options mean to us (unknown-but-harmless ones are accepted and ignored)."""

    listen: list[tuple[str, int]] = field(default_factory=list)
    workdir: str | None = None
    limits: Limits = field(default_factory=Limits)
    lazy: bool = True
    check_interval: float = 60.0
    foreground: bool = True
    specs: list[ZoneSpec] = field(default_factory=list)


def parse_ttl_option(text: str) -> Limits:
    """-t defttl:minttl:maxttl with omissions allowed (`30`, `::2m`)."""
    parts = ([*text.split(":"), "", "", ""])[:3]
    lim = Limits()
    if parts[0]:
        lim.defttl = parse_time(parts[0])
    if parts[1]:
        lim.minttl = parse_time(parts[1])
    if parts[2]:
        lim.maxttl = parse_time(parts[2])
    return lim


def parse_bind(text: str) -> tuple[str, int]:
    """rbldnsd -b address/port (slash, so IPv6 works); also HOST:PORT and [V6]:PORT for --listen."""
    if "/" in text:
        host, _, port = text.rpartition("/")
    elif text.startswith("["):
        host, _, port = text[1:].partition("]:")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, "53"
    return host or "0.0.0.0", int(port or 53)


_FLAG_ONLY = {"-n", "-q", "-4", "-6", "-e", "-f", "-d", "-v", "-C"}
_WITH_ARG = {"-u", "-r", "-p", "-l", "-s", "-x", "-X"}


def parse_rbldnsd_args(argv: Sequence[str]) -> Options:
    """An rbldnsd command line (without the program name) -> Options."""
    o = Options()
    i = 0
    args = list(argv)
    while i < len(args):
        a = args[i]
        if a.startswith("-") and len(a) >= 2 and not a.startswith("--"):
            flag, inline = a[:2], a[2:]
            takes = flag in _WITH_ARG or flag in ("-b", "-w", "-t", "-c")
            val = ""
            if takes:
                if inline:
                    val = inline
                else:
                    i += 1
                    if i >= len(args):
                        raise SpecError(f"option {flag} needs a value")
                    val = args[i]

            if flag == "-b":
                o.listen.append(parse_bind(val))
            elif flag == "-w":
                o.workdir = val
            elif flag == "-t":
                o.limits = parse_ttl_option(val)
            elif flag == "-c":
                o.check_interval = float(parse_time(val))
            elif flag == "-a":
                o.lazy = True
            elif flag == "-A":
                o.lazy = False
            elif flag in _WITH_ARG:
                pass  # accepted so that an rbldnsd command line works unchanged (user, chroot, logs)
            elif flag in _FLAG_ONLY:
                if flag == "-n":
                    o.foreground = True
            else:
                raise SpecError(f"unknown option {a}")
        else:
            o.specs.append(ZoneSpec.parse(a))
        i += 1
    return o


def load_dataset(dtype: str, sources: list[Source], limits: Limits) -> Dataset:
    if dtype == "ip4set":
        return Ip4Set.load(sources, limits)
    if dtype == "ip4tset":
        return Ip4TSet.load(sources, limits)
    if dtype == "ip4trie":
        return Ip4Trie.load(sources, limits)
    if dtype == "ip6trie":
        return Ip6Trie.load(sources, limits)
    if dtype == "ip6tset":
        return Ip6TSet.load(sources, limits)
    if dtype == "dnset":
        return DnSet.load(sources, limits)
    if dtype == "generic":
        return Generic.load(sources, limits)
    if dtype == "combined":
        return Combined.load(sources, limits, load_dataset)
    raise SpecError(f"unknown dataset type {dtype}")


DatasetKey = tuple[str, tuple[str, ...]]  # (type, file paths): datasets are shared by every zone using them


def load_one(key: DatasetKey, limits: Limits) -> Dataset | Acl:
    dtype, paths = key
    if dtype == "acl":
        return Acl.load(list(paths), limits)
    return load_dataset(dtype, list(paths), limits)


def load_checked(key: DatasetKey, limits: Limits) -> tuple[Dataset | Acl, dict[str, float]]:
    """Load one dataset and the mtimes its files had; raises StaleFiles if one moved meanwhile (a file
    being rewritten in place must not be served half-written)."""
    before = file_mtimes(list(key[1]))
    ds = load_one(key, limits)
    if file_mtimes(list(key[1])) != before:
        raise StaleFiles("data files changed while loading")
    return ds, before


class StaleFiles(RuntimeError):
    pass


@dataclass(slots=True)
class Loaded:
    zoneset: ZoneSet
    files: dict[str, float]  # path -> mtime seen at load
    datasets: dict[DatasetKey, Dataset | Acl]
    load_seconds: float
    file_zones: list[Zone] = field(default_factory=list)


def file_mtimes(paths: Sequence[str]) -> dict[str, float]:
    return {p: os.stat(p).st_mtime for p in paths}


def build_zoneset(specs: Sequence[ZoneSpec], limits: Limits, *, lazy: bool = True, workdir: str | None = None,
                  extra_zones: Sequence[Zone] = (),
                  reuse: dict[DatasetKey, Dataset | Acl] | None = None,
                  reuse_mtimes: dict[str, float] | None = None,
                  load_only: DatasetKey | None = None,
                  fresh: dict[DatasetKey, tuple[Dataset | Acl, dict[str, float]]] | None = None) -> Loaded:
    """Load every dataset (once per type+files) and assemble zones. Raises on unreadable files.

    With reuse/reuse_mtimes, datasets whose files did not change are taken over from the previous load;
    with load_only too, every dataset but that one is taken over (changed or not: a later step loads it).
    fresh holds datasets already loaded elsewhere (a build process), with the mtimes they were read at.
    """
    t0 = time.monotonic()
    base = workdir or "."
    datasets: dict[tuple[str, tuple[str, ...]], Dataset | Acl] = {}
    serials: dict[int, int] = {}
    zones: dict[str, Zone] = {}
    order: list[Zone] = []
    global_acl: Acl | None = None
    mtimes: dict[str, float] = {}
    for spec in specs:
        if spec.dtype == "live":
            continue
        paths = tuple(os.path.join(base, f) for f in spec.files)
        key = (spec.dtype, paths)
        ds: Dataset | Acl | None = datasets.get(key)
        if fresh is not None and key in fresh:
            ds, seen = fresh[key]
            mtimes.update(seen)  # as read by the build, so that a later change is seen as one
            datasets[key] = ds
        else:
            cur = file_mtimes(paths)
            mtimes.update(cur)
        if ds is None:
            old = reuse.get(key) if reuse else None
            if old is not None and load_only is not None and key != load_only and reuse_mtimes is not None:
                ds = old
                mtimes.update({p: reuse_mtimes.get(p, 0.0) for p in paths})  # still "changed" next time
            elif old is not None and reuse_mtimes is not None and all(
                    reuse_mtimes.get(p) == m for p, m in cur.items()):
                ds = old
            else:
                ds = load_one(key, limits)
            datasets[key] = ds
        assert ds is not None
        serials[id(ds)] = mtime_serial(paths)
        if isinstance(ds, Acl) and not spec.zone:
            global_acl = ds
            continue
        z = zones.get(spec.zone)
        if z is None:
            z = Zone(spec.zone, ttl=limits.defttl)
            zones[spec.zone] = z
            order.append(z)
        if isinstance(ds, Acl):
            z.acl = ds
        else:
            z.datasets.append(ds)
    for z in order:
        z.finish_meta(serials)
    zs = ZoneSet(order + list(extra_zones), global_acl=global_acl, lazy=lazy)
    return Loaded(zs, mtimes, datasets, time.monotonic() - t0, order)
