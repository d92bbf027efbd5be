"""Which domains a message names, for domain lists (DBL, SURBL, URIBL style).

Every domain is reduced to its registrable domain with the Public Suffix List (offline), because that
is what these lists publish: `a.b.example.co.uk` is asked as `example.co.uk`. IP hosts never go to a
domain list (DBL answers 127.0.1.255 for that); they go to IP lists through the `urlhost` selector.

Sources, in the order they are kept when the per-message cap bites: envelope and header senders
(few, and chosen by the sender), the last external HELO and reverse DNS, URLs (as the message parser
found them, plus obfuscated forms such as `hxxp://` and `example[.]com`), then e-mail addresses in the
body. Shortened URLs are asked about by their shortener's domain (DBL lists abused redirectors); they
are not expanded, which would mean fetching a URL a spammer chose.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import getaddresses

from relayguard.core.netset import parse_ip
from relayguard.message.facts import MessageFacts
from relayguard.message.urls import find_urls, registrable_domain

# Defanged forms seen in spam and in security mail alike; spammers use them to slip past URL finders.
_OBFUSCATION = re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\bhxxps?://|\bh\*\*ps?://", re.IGNORECASE)
_DEFANG = (
    (re.compile(r"\[\.\]|\(\.\)|\{\.\}|\s?\[dot\]\s?|\s?\(dot\)\s?", re.IGNORECASE), "."),
    (re.compile(r"\bh(?:xx|\*\*)p(s?)://", re.IGNORECASE), r"http\1://"),
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+)")
_MAX_SCAN = 200_000  # characters of body text searched for defanged URLs and addresses

SHORTENERS = frozenset(
    {
        "bit.ly",
        "tinyurl.com",
        "t.co",
        "goo.gl",
        "ow.ly",
        "is.gd",
        "buff.ly",
        "rebrand.ly",
        "cutt.ly",
        "shorturl.at",
        "tiny.cc",
        "rb.gy",
        "t.ly",
        "s.id",
        "v.gd",
        "bl.ink",
    }
)


def _addr_domains(values: Iterable[str]) -> list[str]:
    out = []
    for _name, addr in getaddresses(list(values)):
        if "@" in addr:
            d = registrable_domain(addr.rpartition("@")[2].strip(" <>"))
            if d:
                out.append(d)
    return out


def _host_domain(host: str | None) -> str | None:
    if not host or parse_ip(host) is not None:
        return None
    return registrable_domain(host)


def deobfuscated_urls(text: str, limit: int) -> list[str]:
    """Registrable domains of URLs that appear only in defanged form."""
    chunk = text[:_MAX_SCAN]
    if not _OBFUSCATION.search(chunk):
        return []
    for rx, repl in _DEFANG:
        chunk = rx.sub(repl, chunk)
    return [u.domain for u in find_urls(chunk, "text:deobfuscated", limit) if u.domain]


def select_domains(facts: MessageFacts, selectors: Iterable[str], cap: int) -> dict[str, set[str]]:
    """Registrable domain -> the selectors that named it, at most `cap` domains."""
    want = set(selectors)
    out: dict[str, set[str]] = {}

    def add(domain: str | None, sel: str) -> None:
        if not domain:
            return
        if domain in out:
            out[domain].add(sel)
        elif len(out) < cap:
            out[domain] = {sel}

    env = facts.envelope
    if "mailfrom" in want and env.mail_from:
        for d in _addr_domains([env.mail_from]):
            add(d, "mailfrom")
    for sel, header in (("from", "From"), ("replyto", "Reply-To"), ("returnpath", "Return-Path")):
        if sel in want:
            for d in _addr_domains(facts.header_values(header)):
                add(d, sel)
    le = facts.chain.last_external
    if le is not None:
        helo, rdns = le.helo, le.rdns
    elif not facts.chain.relays and not env.sasl_username:
        helo, rdns = env.helo, env.client_rdns  # a session without headers: the client is the origin
    else:
        helo = rdns = None
    if "helo" in want:
        add(_host_domain(helo), "helo")
    if "rdns" in want:
        add(_host_domain(rdns), "rdns")
    if "url" in want:
        for u in facts.urls:
            if u.domain and parse_ip(u.host) is None:
                add(u.domain, "url")
        for d in deobfuscated_urls(facts.body_text, cap):
            add(d, "url")
    if "email" in want:
        for m in _EMAIL.finditer(facts.body_text[:_MAX_SCAN]):
            if len(out) >= cap:
                break
            add(registrable_domain(m.group(1)), "email")
    return out


# The last few results: every domain list of one message asks for the same domains, so compute them
# once. Keyed by the facts object itself (identity), not by id(), so a recycled id cannot match.
_recent: list[tuple[MessageFacts, tuple[str, ...], int, dict[str, set[str]]]] = []


def select_domains_cached(facts: MessageFacts, selectors: Iterable[str], cap: int) -> dict[str, set[str]]:
    sels = tuple(sorted(selectors))
    for f, s, c, result in _recent:
        if f is facts and s == sels and c == cap:
            return result
    result = select_domains(facts, sels, cap)
    _recent.append((facts, sels, cap, result))
    if len(_recent) > 16:
        del _recent[0]
    return result


def url_ip_hosts(facts: MessageFacts) -> list[str]:
    """URL hosts written as IP addresses (for `urlhost` IP lists)."""
    seen: dict[str, None] = {}
    for u in facts.urls:
        if parse_ip(u.host) is not None:
            seen[str(parse_ip(u.host))] = None
    return list(seen)


def url_hostnames(facts: MessageFacts, cap: int) -> list[str]:
    """Distinct URL host names (not IPs), first `cap`, for optional resolution to addresses."""
    seen: dict[str, None] = {}
    for u in facts.urls:
        if len(seen) >= cap:
            break
        if parse_ip(u.host) is None and u.domain:
            seen[u.host] = None
    return list(seen)
