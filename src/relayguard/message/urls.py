"""Find URLs in text and reduce their hosts to registrable domains (Public Suffix List, offline)."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from relayguard.core.netset import parse_ip
from relayguard.message.facts import Url

_URL_RE = re.compile(
    r"""(?:(?:https?|ftp)://|www\.)[^\s<>"'`{}|\\^\[\]]{1,2000}""",
    re.IGNORECASE,
)
_HOST_OK = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}\.)*[a-z0-9-]{1,63}$")
_TRAILING = ".,;:!?)>]}'\""


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


@lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str | None:
    """example.co.uk for www.example.co.uk; None for IP literals and bare public suffixes."""
    h = host.lower().rstrip(".")
    if not h or parse_ip(h) is not None:
        return None
    try:
        return _psl().privatesuffix(h)
    except Exception:
        return None


def _host_of(url: str) -> str | None:
    u = url if "://" in url[:10] else "http://" + url
    try:
        host = urlsplit(u).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".").lower()
    if parse_ip(host) is not None:
        return host
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    return host if _HOST_OK.match(host) else None


def make_url(raw: str, source: str) -> Url | None:
    u = raw.strip().rstrip(_TRAILING)
    host = _host_of(u)
    if host is None:
        return None
    return Url(u, host, registrable_domain(host), source)


def find_urls(text: str, source: str, limit: int) -> list[Url]:
    out: list[Url] = []
    # Most text has no URL at all: two substring scans are far cheaper than the regex.
    if "://" not in text and "www." not in text and "WWW." not in text:
        return out
    for m in _URL_RE.finditer(text):
        if len(out) >= limit:
            break
        url = make_url(m.group(0), source)
        if url is not None:
            out.append(url)
    return out
