"""Exim, in the many shapes its `received_header_text` takes (and Exim-like `helo=` comments)."""

from __future__ import annotations

import re
from collections.abc import Callable

from relayguard.message.received.base import Fields, Outcome, Rule, rx, sub_helo_ident


def _sub(group: str) -> Callable[[re.Match[str], Fields], Outcome]:
    def post(m: re.Match[str], f: Fields) -> Outcome:
        sub_helo_ident(m.group(group), f)
        return Outcome.HOP

    return post


def _rdns_is_helo_then_sub(m: re.Match[str], f: Fields) -> Outcome:
    # Exim writes `helo=` only when it differs from the rDNS name (SpamAssassin bug 5112).
    f.helo = f.rdns
    sub_helo_ident(m.group("sub"), f)
    return Outcome.HOP


def _rdns_is_helo(m: re.Match[str], f: Fields) -> Outcome:
    f.helo = f.rdns
    return Outcome.HOP


MARKER = "Exim"
# from andrew by trinity.supernews.net with local (Exim 4.12) id 18xeL6-000Dn1-00
LOCAL = Rule("exim", rx(r"\bwith local(?:-\S+)? "), outcome=Outcome.SKIP)
# from [61.174.163.26] (helo=host) by sc8-sf-list1.sourceforge.net with smtp (Exim 3.31-VA-mm2 #1 (Debian))
BRACKET_IP = Rule("exim", rx(r"^\[(?P<ip>{IP})\] \((?P<sub>.*?)\) by (?P<by>\S+) "), post=_sub("sub"))
# from dsl092-072-213.bos1.dsl.speakeasy.net ([66.92.72.213] helo=blazing.arsecandle.org) by ...
RDNS_IP = Rule(
    "exim",
    rx(r"^(?P<rdns>\S+) \(\[(?P<ip>{IP})\](?P<sub>.*?)\) by (?P<by>\S+) "),
    post=_rdns_is_helo_then_sub,
)
# from boggle.ihug.co.nz [203.109.252.209] by grunt6.ihug.co.nz with esmtp (Exim 3.35 #1 (Debian))
RDNS_BARE_IP = Rule("exim", rx(r"^(?P<rdns>\S+) \[(?P<ip>{IP})\](:\d+)? by (?P<by>\S+) "), post=_rdns_is_helo)

_ODD_RDNS = rx(r"^(\S+) ")
_ODD_HELO = rx(r" \((\S+)\) ")
_ODD_IP = rx(r" \[({IP})(?:\.\d+)?\] ")
_ODD_BY = rx(r"by (\S+) ")


def odd(s: str, f: Fields) -> Outcome | None:
    """Other Exim shapes: pick out the bits; enough when both an address and a `by` were found.

    from helene8.i.pinwand.net (helene.cats.ms) [10.0.8.6.13219] (mail) by lisbeth.i.pinwand.net ...
    Like SpamAssassin, the bits found stay in the fields even when this is not enough.
    """
    m = _ODD_RDNS.search(s)
    if m:
        f.rdns = m.group(1)
    m = _ODD_HELO.search(s)
    if m:
        f.helo = m.group(1)
    m = _ODD_IP.search(s)
    if m:
        f.ip = m.group(1)
    m = _ODD_BY.search(s)
    if m:
        f.by = m.group(1)
        if f.ip:
            f.dialect = "exim"
            return Outcome.HOP
    return None


RULES = (LOCAL, BRACKET_IP, RDNS_IP, RDNS_BARE_IP)

# Outside the Exim branch (the same comment syntax without the word Exim in the line):
# from mail2.detr.gsi.gov.uk ([51.64.35.18] helo=ahvfw.dtlr.gsi.gov.uk) by mail4.gsi.gov.uk with smtp
HELO_EQ = Rule(
    "exim",
    rx(r"^(?P<rdns>\S+) \(\[(?P<ip>{IP})\] helo=(?P<helo>\S+)\) by (?P<by>\S+) with "),
    marker=" helo=",
)
# from [206.51.230.145] (helo=t-online.de) by mxeu2.kundenserver.de with ESMTP (Nemesis)
BRACKET_IP_ANY = Rule("generic", rx(r"^\[(?P<ip>{IP})\] \((?P<sub>[^\)]+)\) by (?P<by>\S+) "), post=_sub("sub"))
