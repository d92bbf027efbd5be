"""Parse one Received header into a Relay.

Steps, as in SpamAssassin's parse_received_line: normalise white space, cut the date, pick out the
fields every dialect shares (`id`, `helo=`, `by`), detect authentication, then try the dialect rules
in a fixed order until one claims the line. A line no rule claims is unparsed (counted by the chain,
never dropped); a line a rule recognises as "not a network hop" is skipped.

Hostile input: only the first MAX_LINE characters are looked at (the rest is reported as a defect),
every regex is compiled at import, and none has nested unbounded quantifiers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from relayguard.message.received import (
    dialect_communigate as communigate,
)
from relayguard.message.received import (
    dialect_courier as courier,
)
from relayguard.message.received import (
    dialect_exchange as exchange,
)
from relayguard.message.received import (
    dialect_exim as exim,
)
from relayguard.message.received import (
    dialect_generic as generic,
)
from relayguard.message.received import (
    dialect_google as google,
)
from relayguard.message.received import (
    dialect_misc as misc,
)
from relayguard.message.received import (
    dialect_postfix as postfix,
)
from relayguard.message.received import (
    dialect_qmail as qmail,
)
from relayguard.message.received import (
    dialect_sendmail as sendmail,
)
from relayguard.message.received import (
    dialect_webmail as webmail,
)
from relayguard.message.received import (
    dialect_yahoo as yahoo,
)
from relayguard.message.received.base import Fields, Outcome, Rule, run_rules, rx
from relayguard.message.relay import Relay

# Real Received lines are well under 1 KiB; 4 KiB leaves room for long TLS comments while keeping
# every regex's worst case small.
MAX_LINE = 4096


@dataclass(frozen=True, slots=True)
class ParsedReceived:
    """Result of parsing one header: a relay, a line to skip (not a hop), or unparsed.

    `fetch` marks a mail fetcher line (fetchmail, getmail): the hops above it happened on the
    receiving side after the download, and the trust walk restarts there, as SpamAssassin's does.
    `defects` names what was wrong with the input (`truncated`, `nul`).
    """

    relay: Relay | None
    skip: bool = False
    fetch: bool = False
    defects: tuple[str, ...] = ()
    envfrom_for_next: str | None = None

    @property
    def unparsed(self) -> bool:
        return self.relay is None and not self.skip


_FROM = re.compile(r"\(?from ", re.IGNORECASE)
_DATE = rx(
    r"[\s;]+(?:(?:Mon|T(?:ue|hu)|Wed|Fri|S(?:at|un)), )?\d+ (?:J(?:an|u[nl])|Feb|Ma[ry]|A(?:pr|ug)|Sep|Oct|Nov|Dec)"
    r" \d+ \d+:\d+(?::\d+)? \S+$"
)
_ID = rx(r" id <?([^\s<>;]{3,})")
_HELO_CHARS = r"[-A-Za-z0-9\.\^+_&:=?!@%*\$\\\/]"
_HELO_EQ = rx(rf"\bhelo=({_HELO_CHARS}+)(?:[^-A-Za-z0-9\.\^+_&:=?!@%*\$\\\/]|$)")
_HELO_CMD = rx(rf"\b(?:HELO|EHLO) ({_HELO_CHARS}+)(?:[^-A-Za-z0-9\.\^+_&:=?!@%*\$\\\/]|$)")
_BY = rx(r" by (\S+)(?:[^-A-Za-z0-9\;\.]|$)")
# The protocol is the `with` after `by` (a `with cipher` inside a TLS comment before it is not one).
_WITH = rx(r" with (Microsoft SMTP Server|Microsoft SMTPSVC|[^\s;]+)")
_ENVFROM = rx(r"(?:return-path:? |envelope-(?:sender|from)[ =])(\S+)\b", re.IGNORECASE)

# --- authentication tokens (SpamAssassin's order; the first that matches names the mechanism) ---
# RFC 3848 / RFC 6531 `with ESMTPA`, `ESMTPSA`, `LMTPA`, `UTF8SMTPA`; `ASMTP` (Earthlink, old Exim);
# `HTTP`, `HTTPS`, `HTTPU`: authenticated web mail sessions.
_WITH_AUTH = rx(r" with ((?:ES|L|UTF8S|UTF8L)MTPS?A|ASMTP|HTTP[SU]?)(?: |;|$)", re.IGNORECASE)
_GMX_AUTH = rx(
    r"from \S* \((?:HELO|EHLO) (\S*)\) \[({IP})\] by (mail\.gmx\.(?:net|com)) \([^\)]+\) with ((?:ESMTP|SMTP))"
)
_CRITICAL_PATH = rx(r"\) by .+ \(\d{1,2}\.\d\.\d{3}(?:\.\d{1,3})?\) \(authenticated as .+\) id ")
_VIA_HTTP = rx(r" \(via (HTTP.?)\)(?: |;|$)", re.IGNORECASE)


def _auth(s: str) -> str:
    if " by " in s and " with " in s.lower() and (m := _WITH_AUTH.search(s)):
        return m.group(1)
    found = google.gmail_auth(s) or courier.auth(s) or sendmail.auth(s)
    if found:
        return found
    if "mail.gmx." in s and (m := _GMX_AUTH.search(s)):
        return f"GMX ({m.group(4)} / {m.group(3)})"
    if " (authenticated as " in s and _CRITICAL_PATH.search(s):
        return "CriticalPath"
    found = postfix.auth(s) or communigate.auth(s)
    if found:
        return found
    if " with Microsoft Exchange Server HTTP-DAV" in s:
        return "HTTP-DAV"
    if " by " in s and (m := _VIA_HTTP.search(s)):
        return m.group(1)
    return ""


# --- the branch SpamAssassin enters by one marker each (if / elsif: only the first that applies) ---


def _branch(s: str, f: Fields) -> Outcome | None:
    if exchange.SMTPSVC_MARKER in s:
        return run_rules((exchange.SMTPSVC, exchange.SMTPSVC_PICKUP), s, f)
    if " with " in s and exchange.SMTP_SERVER_MARKER.search(s):
        return exchange.SMTP_SERVER.apply(s, f)
    if misc.XMAIL_MARKER in s:
        return misc.XMAIL.apply(s, f)
    if "ecelerity" in s and misc.ECELERITY_MARKER.search(s):
        return run_rules((misc.ECELERITY_HELO, misc.ECELERITY), s, f)
    if exim.MARKER in s:
        return run_rules(exim.RULES, s, f) or exim.odd(s, f)
    if postfix.MARKER in s:
        return run_rules(postfix.RULES, s, f)
    if misc.SCALIX_MARKER in s:
        return misc.SCALIX.apply(s, f)
    if misc.DOMINO_MARKER in s:
        return misc.DOMINO.apply(s, f)
    return None


def _sendmail_standard(s: str, f: Fields) -> Outcome | None:
    if " (qmail-" in s and sendmail.QMAIL_LDAP.search(s):
        return None
    return sendmail.STANDARD.apply(s, f)


Step = Rule | Callable[[str, Fields], "Outcome | None"]

# The order SpamAssassin tries formats in once the line starts with `from ` (the formats overlap;
# this order decides which reading wins).
_FROM_STEPS: tuple[Step, ...] = (
    webmail.SQUIRRELMAIL,
    webmail.AOL,
    _branch,
    webmail.IMP,
    _sendmail_standard,
    exchange.IMS,
    exim.HELO_EQ,
    misc.ATTBI_UNKNOWN,
    misc.ATTBI,
    sendmail.IDENT_AT_IP,
    webmail.HOTMAIL,
    qmail.QPSMTPD,
    qmail.LHLO,
    misc.GMX,
    misc.SMTPD_FOR,
    qmail.general,
    yahoo.VIA_HTTP,
    webmail.AS_USER,
    misc.PAREN_HELO,
    misc.BRACKET_BY,
    misc.PAREN_IP_BY,
    misc.MDAEMON,
    misc.MDAEMON2,
    sendmail.NO_RDNS,
    sendmail.LOOSE,
    sendmail.IP_PORT,
    sendmail.AUTH_BITS,
    generic.FETCHER,
    qmail.QMAILISH_HELO,
    qmail.QMAILISH_IDENT,
    webmail.OUTBLAZE,
    misc.SMAP,
    misc.SMAP_HELO,
    misc.POST_OFFICE,
    misc.ARGOSOFT,
    misc.INTERSCAN,
    generic.BSMTP,
    sendmail.WITH,
    yahoo.HELO_PLAIN,
    communigate.ACCOUNT,
    communigate.VERIFIED,
    misc.CIPHERTRUST,
    misc.IRONPORT,
    generic.CONTENT_TECHNOLOGIES,
    misc.DOUBLE_IP,
    misc.IP_BY_WITH,
    misc.RDNS_NOSPACE,
    misc.FSECURE,
    misc.IP_HELO,
    misc.HELO_BRACKET_IP,
    misc.CSMAP,
    misc.MAILGATE,
    misc.UNVERIFIED,
    misc.IP_COMMENT,
    exim.BRACKET_IP_ANY,
    qmail.IDENT_AT,
    misc.OBTUSE,
    yahoo.LOGIN,
    *generic.IGNORED,
    courier.AUTH_ONLY,
    *generic.IGNORED_AFTER_COURIER,
)
_FROM_LAST: tuple[Rule, ...] = generic.IGNORED_LAST
# Bound methods, so the loop makes one call per step.
_FROM_CALLS: tuple[Callable[[str, Fields], Outcome | None], ...] = tuple(
    step.apply if isinstance(step, Rule) else step for step in _FROM_STEPS
)


_MAPPED = re.compile(r"^0*:0*:(?:0*:)*ffff:(\d+\.\d+\.\d+\.\d+)$", re.IGNORECASE)
_SCOPE = re.compile(r"%[A-Z0-9._~-]*\Z", re.IGNORECASE)


# Which MTA wrote the line, from its signature; the rule that matched is only a fallback, since
# SpamAssassin's rules are shapes several MTAs share (a Postfix line with a TLS comment parses with
# the sendmail rule).
_SIGNATURES: tuple[tuple[str, str], ...] = (
    (" (Postfix)", "postfix"),
    ("(Exim ", "exim"),
    (" SMTPSVC", "exchange-smtpsvc"),
    (" with Microsoft SMTP", "exchange"),
    (" with mapi id ", "exchange"),
    ("(courier", "courier"),
    ("CommuniGate Pro", "communigate"),
    ("google.com with ", "google"),
    ("gmail.com with ", "google"),
    (" (qmail-", "qmail"),
)


def _dialect(s: str, fallback: str) -> str:
    for sig, name in _SIGNATURES:
        if sig in s:
            return name
    return fallback


def _finish(f: Fields, raw: str, date: str, protocol_src: str) -> Relay:
    rdns = f.rdns.rstrip(".")
    if rdns.lower() == "unknown" or rdns.startswith("["):
        rdns = ""
    ip = f.ip
    if ":" in ip:
        if ip[:5].lower() == "ipv6:":
            ip = ip[5:]
        ip = ip.removeprefix("[").removesuffix("]")
        if "%" in ip:
            ip = _SCOPE.sub("", ip)
        if m := _MAPPED.match(ip):
            ip = m.group(1)
    else:
        ip = ip.removeprefix("[").removesuffix("]")
    by = f.by.removesuffix(";")
    envfrom = f.envfrom
    if envfrom is not None:
        envfrom = envfrom.strip().lstrip("<").rstrip(">").strip()
    by_at = protocol_src.find(" by ")
    w = _WITH.search(protocol_src, max(by_at, 0))
    # The stamp after the last `;` (RFC 5321); failing that, a date SpamAssassin's pattern found at
    # the end (`... id BQB0hUH2 Thu, 20 Feb 2003 16:13:20 +0100`).
    semi = raw.rfind(";")
    time = raw[semi + 1 :].strip() if semi >= 0 else date
    return Relay(
        ip=ip or None,
        rdns=rdns or None,
        helo=f.helo or None,
        by=by or None,
        ident=f.ident or None,
        id=f.id or None,
        envfrom=envfrom or None,
        auth=f.auth or None,
        protocol=w.group(1) if w else None,
        time=time or None,
        dialect=_dialect(protocol_src, f.dialect),
        no_rdns=not rdns and f.looked_up_dns,
        raw=raw,
    )


def _cut_date(s: str) -> tuple[str, str]:
    r"""SpamAssassin's `s/[\s;]+DATE$//`, searched only where it can match.

    With white space collapsed, the date is the last five or six tokens (`[Day,] D Mon YYYY HH:MM[:SS]
    ZONE`), preceded by a run of blanks and `;`. Start the search there instead of at every blank.
    """
    pos = len(s)
    for _ in range(6):
        sp = s.rfind(" ", 0, pos)
        if sp < 0:
            pos = 0
            break
        pos = sp
    while pos > 0 and s[pos - 1] in " ;":
        pos -= 1
    m = _DATE.search(s, pos)
    return (s[: m.start()], m.group().lstrip(" ;")) if m else (s, "")


def parse_received(value: str) -> ParsedReceived:
    """Parse one unfolded Received header value (without the `Received:` name)."""
    defects: list[str] = []
    if len(value) > MAX_LINE:
        defects.append("truncated")
        value = value[:MAX_LINE]
    if "\x00" in value:
        defects.append("nul")
    raw = value.strip()
    # str.split() splits on the same (Unicode) white space as `\s+`, several times faster.
    s = " ".join(value.split())
    while s.endswith(";"):
        # SpamAssassin: `1 while s/\s?;$//` (a loop, not a regex: no backtracking on `;;;;...`).
        s = s[:-1]
        if s.endswith(" "):
            s = s[:-1]
    dfx = tuple(defects)

    if not _FROM.match(s):
        # (qmail 27981 invoked by uid 225); by host (Postfix, from userid 1002): not hops.
        return ParsedReceived(None, skip=True, defects=dfx)
    if " with local for" in s and generic.WITH_LOCAL_FOR.search(s):
        return ParsedReceived(None, skip=True, defects=dfx)
    m = generic.NAME_BY_NAME.match(s)
    if m and not generic.NAME_BY_NAME_IP.match(m.group(1)):
        return ParsedReceived(None, skip=True, defects=dfx)

    s, date = _cut_date(s)
    s = s.replace(")by ", ") by ", 1)

    f = Fields()
    if " id " in s and (m := _ID.search(s)):
        f.id = m.group(1)
    if ("helo=" in s and (m := _HELO_EQ.search(s))) or ("LO " in s and (m := _HELO_CMD.search(s))):
        f.helo = m.group(1)
    if m := _BY.search(s):
        f.by = m.group(1)
    f.auth = _auth(s)
    whole = s

    out: Outcome | None = None
    envfrom_for_next: str | None = None
    if s.startswith("from "):
        s = s[5:]
        low = s.lower()
        if ("envelope-" in low or "return-path" in low) and (m := _ENVFROM.search(s)):
            f.envfrom = m.group(1)
        for call in _FROM_CALLS:
            out = call(s, f)
            if out is not None:
                break
        if out is None and " with qmail-scanner" in s and generic.QMAIL_SCANNER.search(s):
            # qmail-scanner logs the previous hop again; SpamAssassin hands its envelope sender on
            # to the next (older) header.
            envfrom_for_next = f.envfrom.strip().lstrip("<").rstrip(">") if f.envfrom else None
            out = Outcome.SKIP
        if out is None:
            out = run_rules(_FROM_LAST, s, f)
        if out is None and not f.helo and (m := generic.GUESS_HELO.search(s)):
            f.helo = m.group(1)
    elif s.startswith("FROM "):
        s = s[5:]
        out = misc.SIMTA.apply(s, f)
    elif s.startswith("(from "):
        s = s[6:]
        out = run_rules((misc.NAVGW, misc.LOCAL_SUBMIT, misc.JQUEUEMAIL), s, f)

    if out is Outcome.SKIP:
        return ParsedReceived(None, skip=True, defects=dfx, envfrom_for_next=envfrom_for_next)
    if out is Outcome.FETCH:
        return ParsedReceived(None, skip=True, fetch=True, defects=dfx)
    if out is None:
        # Last resort: an address literal anywhere, and a `by`.
        if not f.ip and (m := generic.BRACKET_IP.search(s)):
            f.ip = m.group(1)
        if not (f.ip and f.by):
            return ParsedReceived(None, defects=dfx)
        f.dialect = "generic"
    return ParsedReceived(_finish(f, raw, date, whole), defects=dfx)
