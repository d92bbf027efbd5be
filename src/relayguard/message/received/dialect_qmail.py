"""qmail and its patches (qmail-ldap, qpsmtpd, netqmail): `from RDNS (HELO x) (ident@IP) by HOST with SMTP`.

qmail writes `(HELO x)` only when the HELO differs from the rDNS name, and `unknown` for no rDNS.
"""

from __future__ import annotations

import re

from relayguard.message.received.base import Fields, Outcome, Rule, rx

# from x71-x56-x24-5.webspeed.dk (HELO niels) (69.96.3.15) by la.mx.develooper.com (qpsmtpd/0.27-dev) with SMTP
QPSMTPD = Rule(
    "qpsmtpd",
    rx(
        r"^(?P<rdns>\S+) \((?:HELO|EHLO) (?P<helo>\S*)\) \((?P<ip>{IP})\) by (?P<by>\S+)"
        r" \(qpsmtpd/\S+\) with (?:ESMTP|SMTP)"
    ),
    marker="(qpsmtpd/",
)
# from mail-backend.DDDD.com (LHLO mail-backend.DDDD.com) (10.2.2.20) by mail-backend.DDDD.com with LMTP
LHLO = Rule(
    "lmtp",
    rx(r"^(?P<rdns>\S+) \(LHLO (?P<helo>\S*)\) \((?P<ip>{IP})\) by (?P<by>\S+) with LMTP"),
    marker="(LHLO ",
)

# The general qmail shape. `(?: \(.+\))?` stands for SpamAssassin's `( \(.+\))*`: the same language,
# without the nested quantifier that backtracks exponentially on hostile input. ` id ` right after
# the protocol means sendmail, not qmail (SpamAssassin bug 4813).
SHAPE = rx(
    r"^\S+(?: \((?:HELO|EHLO) \S*\))? \((?:\S+\@)?\[?{IP}\]?\)(?: \(envelope-sender <\S+>\))?"
    r" by \S+(?: \(.+\))? with (?:.* )?(?:SMTP|QMQP)(?! id )"
)
_HELO_IDENT = rx(r"^(\S+) \((?:HELO|EHLO) ([^ \(\)]*)\) \((\S*)\@\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)")
_HELO = rx(r"^(\S+) \((?:HELO|EHLO) ([^ \(\)]*)\) \(\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)")
_IDENT = rx(r"^(\S+) \((\S*)\@\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)")
_PLAIN = rx(r"^(\S+) \(\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)")


def general(s: str, f: Fields) -> Outcome | None:
    if SHAPE.search(s) is None:
        return None
    f.dialect = "qmail"
    m = _HELO_IDENT.search(s)
    if m:
        f.set(rdns=m.group(1), helo=m.group(2), ident=m.group(3), ip=m.group(4), by=m.group(6))
    elif m := _HELO.search(s):
        f.set(rdns=m.group(1), helo=m.group(2), ip=m.group(3), by=m.group(5))
    elif m := _IDENT.search(s):
        # No HELO comment: the HELO was the rDNS name.
        f.set(rdns=m.group(1), helo=m.group(1), ident=m.group(2), ip=m.group(3), by=m.group(5))
    elif m := _PLAIN.search(s):
        f.set(rdns=m.group(1), helo=m.group(1), ip=m.group(2), by=m.group(4))
    # qmail-smtpd writes the name tcpserver looked up, or `unknown`: a name means the lookup ran.
    if f.rdns == "unknown":
        f.rdns = ""
    else:
        f.looked_up_dns = True
    return Outcome.HOP


def _strip_at(m: re.Match[str], f: Fields) -> Outcome:
    f.ident = f.ident.removesuffix("@")
    return Outcome.HOP


def _helo_is_rdns(m: re.Match[str], f: Fields) -> Outcome:
    f.helo = f.rdns
    f.ident = f.ident.removesuffix("@")
    return Outcome.HOP


# from unknown (HELO feux01a-isp) (213.199.4.210) by totor.bouissou.net with SMTP
QMAILISH_HELO = Rule(
    "qmail",
    rx(r"^(?P<rdns>\S+) \((?:HELO|EHLO) (?P<helo>[^\)]*)\) \((?P<ident>\S*@)?\[?(?P<ip>{IP})\]?\).* by (?P<by>\S+) "),
    marker="LO ",
    post=_strip_at,
    looked_up_dns=True,
)
# from x1-6-00-04-bd-d2-e0-a3.k317.webspeed.dk (benelli@80.167.158.170) by totor.bouissou.net with SMTP
QMAILISH_IDENT = Rule(
    "qmail",
    rx(r"^(?P<rdns>\S+) \((?P<ident>\S*@)?\[?(?P<ip>{IP})\]?\).* by (?P<by>\S+) "),
    post=_helo_is_rdns,
    looked_up_dns=True,
)
# from mtsbp606.email-info.net (?dXqpg3b0hiH9faI2OxLT94P/YKDD3rQ1?@64.253.199.166) by kde.informatik.uni-kl.de
IDENT_AT = Rule("qmail", rx(r"^(?P<rdns>\S+) \((?:\S+\@)?(?P<ip>{IP})\) by (?P<by>\S+) with "))

# (qmail 27981 invoked by uid 225); (qmail 84907 invoked from network): not hops; these lines do not
# start with `from`, so the common prefix test in parse.py already skips them.
