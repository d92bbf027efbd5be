"""The compiled hot path (_fastdns.c), fed from the Python datasets' own arrays.

The engine answers plain A/TXT questions to zones whose datasets are all ip4set, ip4tset, ip4trie, dnset
or live listings (their IPv6 questions aside), and receives and sends UDP in batches; everything else it hands
back to wire.answer_fast. It reads the datasets' arrays in place (no copy: the memory figure does not
move) and keeps them alive while it lives; a reload builds a new engine with the new FastPath.

Without a C compiler at install time the extension is missing and the server runs the Python path
alone (same answers, under half the throughput); RELAYGUARD_DNSBL_NATIVE=0 chooses that path on
purpose, e.g. to compare the two.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import TYPE_CHECKING, Any

from relayguard.dnsbl.answer import T_A, emit_a_txt, expand_txt_whole
from relayguard.dnsbl.datafile import Meta, Rec
from relayguard.dnsbl.dnset import DnSet
from relayguard.dnsbl.ip4 import CompactPrefixTable, Ip4Set, Ip4Trie, Ip4TSet
from relayguard.dnsbl.ip6 import Ip6Trie
from relayguard.dnsbl.live import LiveDataset
from relayguard.dnsbl.wire import NOT_FAST, OPT_DEFAULT, FastPath, fast_path

if TYPE_CHECKING:
    from relayguard.dnsbl.answer import ZoneSet

try:
    from relayguard.dnsbl import _fastdns
except ImportError:  # built without a compiler: the Python path answers everything
    _fastdns = None  # type: ignore[assignment]

# not a latin-1 character, so never in a template read from a data file: it marks where the value goes
_VALUE = "\uffff"


SCRATCH = _fastdns.SCRATCH if _fastdns is not None else 0  # per-thread buffer size for receive/reply


# receive(fd, scratch) -> (count, errno): wait for a batch of datagrams on fd into scratch
receive = _fastdns.receive if _fastdns is not None else None


def available() -> bool:
    return _fastdns is not None


def enabled() -> bool:
    return _fastdns is not None and os.environ.get("RELAYGUARD_DNSBL_NATIVE", "1") != "0"


class NotCompilable(Exception):
    """A dataset the engine does not cover; its zone goes the Python way."""


def _txt_parts(rec: Rec, meta: Meta) -> tuple[bytes, ...] | None:
    if not (rec.txt or meta.base_template is not None):
        return None
    texts = [rec.txt, meta.base_template or "", *meta.subst.values()]
    if any(_VALUE in t for t in texts):
        raise NotCompilable("a template holds the value marker")
    whole = expand_txt_whole(rec.txt, _VALUE, meta.subst, meta.base_template)
    # latin-1 with "replace" is what answer.txt_rdata does: one byte per character, so cutting the bytes
    # at 255 after putting the value in equals cutting the characters
    return tuple(p.encode("latin-1", "replace") for p in whole.split(_VALUE))


def _recs(recs: list[Rec | None], meta: Meta, ttl: int) -> list[tuple[bytes, tuple[bytes, ...] | None] | None]:
    out: list[tuple[bytes, tuple[bytes, ...] | None] | None] = []
    for r in recs:
        if r is None:
            out.append(None)
            continue
        a: list[bytes] = []
        emit_a_txt(a, T_A, r, "", meta, ttl)  # the A record as the Python path writes it
        if len(a[0]) != 14:
            raise NotCompilable("an A value that is not 4 bytes")
        out.append((a[0], _txt_parts(r, meta)))
    return out


def _datasets(ds: object) -> list[tuple[Any, ...]]:
    """The engine's view of a dataset (a live zone's dataset is several), made once per dataset: a
    live-listing change rebuilds the engine, not the descriptions of the file datasets it reuses."""
    try:
        return _DESCRIPTIONS[ds]
    except (KeyError, TypeError):
        pass
    desc = [_describe(p) for p in ds.parts] if type(ds) is LiveDataset else [_describe(ds)]
    with contextlib.suppress(TypeError):  # not weak-referenceable: described again next time
        _DESCRIPTIONS[ds] = desc
    return desc


_DESCRIPTIONS: weakref.WeakKeyDictionary[object, list[tuple[Any, ...]]] = weakref.WeakKeyDictionary()


def _describe(ds: object) -> tuple[Any, ...]:
    if type(ds) is Ip6Trie:
        return (4,)  # the engine hands its questions (32 nibble labels) to Python
    ttl = getattr(ds, "ttl", -1)
    if not (isinstance(ttl, int) and 0 <= ttl < 2**32):
        raise NotCompilable("TTL")
    if type(ds) is Ip4Set:
        return (1, ttl, list(ds.flat), _recs(ds.recs, ds.meta, ttl))
    if type(ds) is Ip4TSet:
        return (5, ttl, ds.keys, _recs([ds.rec], ds.meta, ttl))
    if type(ds) is Ip4Trie and isinstance(ds.table, CompactPrefixTable):
        levels = [(sk.keys, sk.vals, sk.buckets, mask) for _bits, mask, sk in ds.table.tables]
        return (3, ttl, levels, _recs(ds.recs, ds.meta, ttl))
    if type(ds) is DnSet:
        # names with several values are marked in the arrays (0xFFFFFFFF): the engine hands those to Python
        return (2, ttl, ds.exact.columns(), ds.wild.columns() if len(ds.wild) else None, ds.max_wild_labels,
                _recs(ds.recs, ds.meta, ttl))
    raise NotCompilable(getattr(ds, "kind", type(ds).__name__))


def build(fp: FastPath) -> Any:
    """An engine for fp's zones (None without the extension)."""
    if _fastdns is None:
        return None
    zones: list[tuple[bytes, bool, bool, bytes | None, list[tuple[Any, ...]]]] = []
    for wire, fz in sorted(fp.by_wire.items(), key=lambda kv: -len(kv[0])):
        sets: list[tuple[Any, ...]] = []
        capable = fz is not NOT_FAST and bool(fz.handlers)
        if capable:
            try:
                sets = [d for _k, ds in fz.handlers for d in _datasets(ds)]
            except NotCompilable:
                capable, sets = False, []
        reads = any(d[0] in (1, 3, 5) for d in sets)  # an IPv4 dataset: read 4 labels as an address
        zones.append((wire, capable, reads, fz.soa_tail if capable else None, sets))
    return _fastdns.Engine(zones, OPT_DEFAULT)


def engine_for(zs: ZoneSet) -> Any:
    """The engine of zs's fast path, built on first use (None without the extension)."""
    fp = zs.fast or fast_path(zs)
    if fp.engine is None:
        fp.engine = build(fp)
    return fp.engine


def prepare(zs: ZoneSet) -> ZoneSet:
    """Build zs's fast path and engine before zs is served, so the UDP thread never builds them."""
    if enabled():
        engine_for(zs)
    else:
        fast_path(zs)
    return zs
