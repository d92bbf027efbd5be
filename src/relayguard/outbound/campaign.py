"""Campaign correlation across customers (after AutoRE, Xie et al., SIGCOMM 2008).

Spamware pushes one campaign through many hijacked customers: the same text (with hash-busters) and the
same URLs arrive from many senders in a burst. Each message gets a fingerprint: a MinHash over word
shingles of subject and body (datasketch; near-duplicates collide in its LSH index) and a URL signature
(the sorted set of registrable domains it links to, less the domains honest mail from several customers
also carries, such as yahoo.com or a list's footer). Messages that match join a cluster; when a cluster
has been sent by `k` distinct customers within `window` seconds and looks like spam on average
(`min_spam`), it becomes a campaign: its members become suspect and every later message that matches it
is judged by it, whoever sends it.

The spam condition keeps legitimate shared content (a forwarded joke, a list digest quoted in replies)
from ever becoming a campaign however many customers send it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field

from datasketch import MinHash, MinHashLSH

from relayguard.message.facts import MessageFacts

log = logging.getLogger("relayguard.outbound")

_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)
MAX_WORDS = 2000  # shingle the first words only: campaigns show their hand early, and cost stays bounded
MIN_WORDS = 8  # fewer words than this: too little text for MinHash, use the URL signature only


@dataclass(frozen=True, slots=True)
class Fingerprint:
    body_key: bytes  # exact body hash (repeat detection per customer)
    minhash: MinHash | None
    domains: tuple[str, ...]  # registrable domains it links to, sorted


@dataclass
class Cluster:
    cid: int
    first_seen: float
    last_seen: float
    url_sig: str | None
    members: dict[str, float] = field(default_factory=dict)  # customer -> last time seen
    p_sum: float = 0.0
    p_n: int = 0
    campaign_at: float | None = None
    messages: int = 0

    @property
    def mean_p(self) -> float:
        return self.p_sum / self.p_n if self.p_n else 0.0

    def customers_within(self, now: float, window: float) -> int:
        return sum(1 for t in self.members.values() if t >= now - window)


@dataclass(frozen=True, slots=True)
class Match:
    cluster: Cluster
    kind: str  # "text" (near-identical text) or "url" (the same uncommon URL domains)


@dataclass(frozen=True, slots=True)
class CampaignEvent:
    """A cluster just became a campaign."""

    cluster: int
    members: tuple[str, ...]
    explanation: str


class Fingerprinter:
    def __init__(self, num_perm: int = 64, shingle: int = 4, cache_size: int = 20_000) -> None:
        self.num_perm = num_perm
        self.shingle = shingle
        # Fingerprints by body hash: the same text sent to many recipients is hashed once.
        self._cache: OrderedDict[bytes, MinHash | None] = OrderedDict()
        self._cache_size = cache_size
        self._template = MinHash(num_perm=num_perm, seed=1)  # permutations computed once, then copied

    def fingerprint(self, facts: MessageFacts) -> Fingerprint:
        body = facts.subject + "\n" + facts.body_text
        key = hashlib.blake2b(body.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        mh = self._cache.get(key)
        if mh is None and key not in self._cache:
            mh = self._minhash(body)
            self._cache[key] = mh
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        domains = tuple(sorted({u.domain.lower() for u in facts.urls if u.domain}))
        return Fingerprint(key, mh, domains)

    def _minhash(self, text: str) -> MinHash | None:
        words = _WORD.findall(text.lower())[:MAX_WORDS]
        if len(words) < MIN_WORDS:
            return None
        n = self.shingle
        shingles = {" ".join(words[i : i + n]).encode() for i in range(max(1, len(words) - n + 1))}
        mh = self._template.copy()
        mh.update_batch(sorted(shingles))
        return mh


class CampaignIndex:
    """Clusters of near-identical messages across customers; in memory (a shared backend: issue 8)."""

    def __init__(
        self,
        k: int = 3,
        window: float = 6 * 3600.0,
        ttl: float = 3 * 86400.0,
        threshold: float = 0.6,
        num_perm: int = 64,
        min_spam: float = 0.5,
        max_clusters: int = 100_000,
    ) -> None:
        self.k = k
        self.window = window
        self.ttl = ttl
        self.min_spam = min_spam
        self.max_clusters = max_clusters
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._clusters: OrderedDict[int, Cluster] = OrderedDict()  # oldest-seen first
        self._by_url: dict[str, int] = {}
        self._lsh_keys: dict[int, str] = {}
        self._next = 1
        # URL domains honest mail carries too (yahoo.com, a list's footer domain): domain -> customers
        # that sent it in mail judged ham. Such domains are no campaign signature.
        self._ham_domains: OrderedDict[str, dict[str, float]] = OrderedDict()
        self.ham_p = 0.3
        self.common_after = 2  # distinct customers
        self.max_domains = 200_000

    def __len__(self) -> int:
        return len(self._clusters)

    def campaign_count(self) -> int:
        return sum(1 for c in self._clusters.values() if c.campaign_at is not None)

    def url_sig(self, fp: Fingerprint, now: float) -> str | None:
        """The message's uncommon URL domains as one key; None when it links only to common ones."""
        horizon = now - self.ttl
        rare = [
            d
            for d in fp.domains
            if sum(1 for t in self._ham_domains.get(d, {}).values() if t >= horizon) < self.common_after
        ]
        return " ".join(rare[:20]) if rare else None

    def _note_ham(self, fp: Fingerprint, customer: str, now: float) -> None:
        for d in fp.domains:
            seen = self._ham_domains.pop(d, None) or {}
            seen[customer] = now
            if len(seen) > 2 * self.common_after:
                seen.pop(min(seen, key=seen.__getitem__))
            self._ham_domains[d] = seen
        while len(self._ham_domains) > self.max_domains:
            self._ham_domains.popitem(last=False)

    def _find(self, fp: Fingerprint, sig: str | None) -> Match | None:
        text: set[int] = set()
        if fp.minhash is not None:
            for key in self._lsh.query(fp.minhash):
                text.add(int(key.split(":", 1)[1]))
        url = {self._by_url[sig]} if sig is not None and sig in self._by_url else set()
        live = [
            Match(self._clusters[c], "text" if c in text else "url") for c in sorted(text | url) if c in self._clusters
        ]
        if not live:
            return None
        # A campaign wins over a mere cluster, a text match over a URL match; then the oldest.
        live.sort(key=lambda m: (m.cluster.campaign_at is None, m.kind != "text", m.cluster.cid))
        return live[0]

    def match(self, fp: Fingerprint, now: float) -> Match | None:
        """The live campaign this message belongs to, if any, and how it matched."""
        m = self._find(fp, self.url_sig(fp, now))
        if m is not None and m.cluster.campaign_at is not None and m.cluster.last_seen >= now - self.ttl:
            return m
        return None

    def observe(
        self, fp: Fingerprint, customer: str, now: float, spam_p: float | None
    ) -> tuple[Cluster | None, CampaignEvent | None]:
        """Record that `customer` sent this message; returns its cluster and a new campaign, if formed."""
        self.expire(now)
        sig = self.url_sig(fp, now)
        if spam_p is not None and spam_p <= self.ham_p:
            self._note_ham(fp, customer, now)
        m = self._find(fp, sig)
        c = m.cluster if m is not None else None
        if c is None:
            if fp.minhash is None and sig is None:
                return None, None
            c = Cluster(self._next, now, now, sig)
            self._next += 1
            self._clusters[c.cid] = c
            if fp.minhash is not None:
                key = f"c:{c.cid}"
                self._lsh.insert(key, fp.minhash)
                self._lsh_keys[c.cid] = key
            if sig is not None:
                self._by_url[sig] = c.cid
        else:
            self._clusters.move_to_end(c.cid)
        c.last_seen = now
        c.messages += 1
        c.members[customer] = now
        if spam_p is not None:
            c.p_sum += spam_p
            c.p_n += 1
        if c.campaign_at is None:
            senders = c.customers_within(now, self.window)
            if senders >= self.k and c.mean_p >= self.min_spam:
                c.campaign_at = now
                members = tuple(sorted(m for m, t in c.members.items() if t >= now - self.window))
                why = (
                    f"campaign #{c.cid}: {senders} distinct customers within {self.window / 3600:g}h "
                    f"(k={self.k}), mean spam p={c.mean_p:.2f} over {c.p_n} messages"
                    + (f", URLs {c.url_sig}" if c.url_sig else "")
                )
                log.info("%s", why)
                return c, CampaignEvent(c.cid, members, why)
        return c, None

    def expire(self, now: float) -> None:
        while self._clusters:
            cid, c = next(iter(self._clusters.items()))
            if c.last_seen >= now - self.ttl and len(self._clusters) <= self.max_clusters:
                break
            self._drop(cid)

    def _drop(self, cid: int) -> None:
        c = self._clusters.pop(cid)
        key = self._lsh_keys.pop(cid, None)
        if key is not None:
            self._lsh.remove(key)
        if c.url_sig is not None and self._by_url.get(c.url_sig) == cid:
            del self._by_url[c.url_sig]
