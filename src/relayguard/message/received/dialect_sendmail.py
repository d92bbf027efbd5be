"""Sendmail (and the many MTAs that copy its `from HELO (RDNS [IP]) by HOST (VERSION)` layout)."""

from __future__ import annotations

import re

from relayguard.message.received.base import Fields, Outcome, Rule, rx

_IDENT_PREFIX = rx(r"^IDENT:([^\@]*)\@")
_USER_PREFIX = rx(r"^([^\@]*)\@")


def _strip_ident(m: re.Match[str], f: Fields) -> Outcome:
    # `(IDENT:qmailr@one.develooper.com [64.81.84.115])`: the identd answer precedes the rDNS name.
    for pat in (_IDENT_PREFIX, _USER_PREFIX):
        im = pat.search(f.rdns)
        if im:
            f.ident = im.group(1)
            f.rdns = f.rdns[im.end() :]
    return Outcome.HOP


# Not tried on qmail-ldap lines, which look like sendmail's but mean something else.
QMAIL_LDAP = rx(r" by \S+ \(qmail-\S+\) with ")

# from mail1.insuranceiq.com (host66.insuranceiq.com [65.217.159.66] (may be forged))
#   by dogma.slashnull.org (8.11.6/8.11.6) with ESMTP id h2F0c2x31856
STANDARD = Rule(
    "sendmail",
    rx(r"^(?P<helo>\S+) \((?P<rdns>\S+) \[(?P<ip>{IP})\].*\) by (?P<by>\S+) \("),
    post=_strip_ident,
    looked_up_dns=True,
)
# from 4wtgRl (kgbxn@[211.244.147.115]) by dogma.slashnull.org (8.11.6/8.11.6) with SMTP
IDENT_AT_IP = Rule(
    "sendmail",
    rx(r"^(?P<helo>\S+) \((?P<ident>\S*)\@\[(?P<ip>{IP})\].*\) by (?P<by>\S+) \("),
    marker="@[",
    looked_up_dns=True,
)
# from mail.sxptt.zj.cn ([218.0.185.24]) by dogma.slashnull.org (8.11.6/8.11.6) with ESMTP
NO_RDNS = Rule("sendmail", rx(r"^(?P<helo>\S+) \(\[(?P<ip>{IP})\]\) by (?P<by>\S+) \("), looked_up_dns=True)


def _softdnserr(m: re.Match[str], f: Fields) -> Outcome:
    # couriertcpd writes `softdnserr` where a name would be (SpamAssassin bug 2326).
    if f.rdns == "softdnserr":
        f.rdns = ""
        f.looked_up_dns = False
    return Outcome.HOP


# from Agni (localhost [::ffff:127.0.0.1]) (TLS: TLSv1/SSLv3, 168bits,DES-CBC3-SHA) by agni.forevermore.net
LOOSE = Rule(
    "sendmail",
    rx(r"^(?P<helo>\S+) \((?P<rdns>\S+) \[(?P<ip>{IP})\]\).*? by (?P<by>\S+)\b"),
    post=_softdnserr,
    looked_up_dns=True,
)
# from jsoliday.acs.internap.com ([63.251.66.24.63559]) by mailhost.acs.internap.com with esmtp
IP_PORT = Rule(
    "sendmail", rx(r"^(?P<helo>\S+) \(\[(?P<ip>{IP})(?:[.:]\d+)?\]\).*? by (?P<by>\S+) "), looked_up_dns=True
)
# from roissy (p573.as1.exs.dublin.eircom.net [159.134.226.61]) (authenticated bits=0)
#   by slate.dublin.wbtsystems.com (8.12.6/8.12.6)
AUTH_BITS = Rule(
    "sendmail",
    rx(
        r"^(?P<helo>\S+) \((?P<rdns>\S+) \[(?P<ip>{IP})\]\)(?: \(authenticated bits=\d+\))?"
        r" by (?P<by>\S+) \("
    ),
    looked_up_dns=True,
)
# from spike (spike.ig.co.uk [193.32.60.32]) by mail.ig.co.uk with SMTP id h27CrCD03362
WITH = Rule(
    "sendmail", rx(r"^(?P<helo>\S+) \((?P<rdns>\S+) \[(?P<ip>{IP})\]\) by (?P<by>\S+) with "), looked_up_dns=True
)

# Sendmail, MDaemon and others: `(authenticated bits=0)`, `(authenticated as user)` between the
# client and `by`. SpamAssassin's test is
#   ^from .*?(?:\](?: \([^)]*\))?\)|\)\]) .*?\(.*?authenticated.*?\).*? by
# whose four lazy gaps backtrack polynomially (seconds on a 4 KiB hostile line). It only asks whether
# the pieces occur in that order, so taking the earliest position of each piece in turn answers the
# same question in linear time.
_CLIENT_END = rx(r"(?:\](?: \([^)]*\))?\)|\)\]) ")


def auth(s: str) -> str | None:
    if "authenticated" not in s or not s.startswith("from "):
        return None
    m = _CLIENT_END.search(s, 5)
    if m is None:
        return None
    b = s.find("(", m.end())
    if b < 0:
        return None
    c = s.find("authenticated", b + 1)
    if c < 0:
        return None
    d = s.find(")", c + len("authenticated"))
    if d < 0:
        return None
    return "Sendmail" if s.find(" by", d + 1) >= 0 else None
