"""Lines that are known not to be network hops, and the last-resort guesses.

SpamAssassin returns "skip" for these (local pickups, list managers, virus scanners logging the hop
again, fetchmail); they are counted as skipped, never as unparsed.
"""

from __future__ import annotations

import re

from relayguard.message.received.base import Outcome, Rule, rx

S = Outcome.SKIP

# Before the dialect rules (whole line, after the date is cut):
WITH_LOCAL_FOR = rx(r"\bwith local for\b")
# from virtual-access.org by bolero.conactive.com ; (but not `from [86.122.158.69] by ...;`)
NAME_BY_NAME = rx(r"^from (\S+) by [^\s;]+ ?;", re.IGNORECASE)
NAME_BY_NAME_IP = rx(r"^\[[\d.]+\]$")

# Fetchmail / getmail: `from cabbage.jmason.org [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0)`
FETCHER = Rule("fetchmail", rx(r"with (?:POP3|IMAP)"), marker="with ", outcome=Outcome.FETCH)
BSMTP = Rule("bsmtp", rx(r"^\S+ by \S+ with BSMTP"), marker=" with BSMTP", outcome=S)
CONTENT_TECHNOLOGIES = Rule(
    "clearswift", rx(r"^\S+ \(\S+\) by \S+ \(Content Technologies "), marker="(Content Technologies", outcome=S
)

# After every dialect rule has failed:
QMAIL_SCANNER = rx(r"^\S+ by \S+ \(.{0,100}\) with qmail-scanner")
IGNORED = (
    # from raptor.research.att.com (bala@localhost) by raptor.research.att.com (SGI-8.9.3/8.8.7)
    Rule("local", rx(r"^\S+ \([^\s\@]+\@{LH}\) by \S+ \("), outcome=S),
    # from paul (helo=felix) by felix.peema.org with local-esmtp (Exim 4.43)
    Rule("exim", rx(r"^\S+ \S+ by \S+ with local-e?smtp "), outcome=S),
    Rule("avg", rx(r"^127\.0\.0\.1 \(AVG SMTP \S+ \[\S+\]\)"), outcome=S),
    Rule("qmail-scanner", rx(r"^\S+\@\S+ by \S+ by uid \S+ "), outcome=S),
    # from DSmith1204@aol.com by imo-m09.mx.aol.com (mail_out_v34.13.)
    Rule("local", rx(r"^\S+\@\S+ by \S+ "), outcome=S),
    Rule("mailcity", rx(r"^Unknown\/Local \("), outcome=S),
    # from localhost (mailnull@localhost) by x.org (8.12.6/8.9.3)
    Rule("local", rx(r"^{LH} \((?:\S+\@)?{LH}[\)\[]"), outcome=S),
    Rule("local", rx(r"^\S+ \((?:\S+\@)?{LH}\) "), outcome=S),
    Rule("local", rx(r"^\S+ \(\S+\@\S+ \[{LH}\]\) "), outcome=S),
)
IGNORED_AFTER_COURIER = (
    Rule("local", rx(r"^localhost \(localhost \[\[UNIX: localhost\]\]\) by "), outcome=S),
    Rule("amazon", rx(r"^\S+\.amazon\.com by \S+\.amazon\.com with ESMTP \(peer crosscheck: "), outcome=S),
    Rule("groupwise", rx(r"^[^\.]+ by \S+ with Novell_GroupWise"), outcome=S),
    Rule("raptor", rx(r"^no\.name\.available by \S+ via smtpd \(for "), outcome=S),
)
IGNORED_LAST = (
    Rule("local", rx(r"^\S+ by \S+ with local"), outcome=S),
    Rule("cyrus", rx(r"^\S+ \(\[unix socket\]\) by \S+ \(Cyrus v[0-9]*?\.[0-9]*?\.[0-9]*?\) with LMTPA"), outcome=S),
    # Handovers that record no address: nothing to use.
    Rule("no-address", rx(r"^\S+ by \S+ (?:with|via|for|\()"), outcome=S),
    Rule("no-address", rx(r"^\S+ (?:(?:with|via|for) \S+|\(unverified\)) by\b"), outcome=S),
    Rule("sendgrid", rx(r"^\S+ \(unknown\) by \S+ \(SG\) with \b"), outcome=S),
    Rule("opensmtpd", rx(r"^\S+ \(\S+ \[local\]\) by \S+ \(OpenSMTPD\) with \b"), outcome=S),
    Rule("lsmtp", rx(r"\(LSMTP for"), outcome=S),
    Rule("mailenable", rx(r"^\(\[{LH}\]\) with MailEnable "), outcome=S),
    Rule("facebook", rx(r"^facebook\.com \([^\)]+\) by facebook\.com with Thrift id \S+$"), outcome=S),
    Rule("google", rx(r"^\S+ named \S+ by gmailapi\.google\.com with HTTPREST$"), outcome=S),
    Rule("no-address", rx(r"^\S+ id \S+$"), outcome=S),
    Rule("jetsend", rx(r"^\[<.*? \(Jetsend"), outcome=S),
)
GUESS_HELO = rx(r"^(\S+)[^-A-Za-z0-9\.]")
BRACKET_IP = rx(r"\[({IP})\]")
