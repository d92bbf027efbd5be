"""Less common MTAs and gateways, each with one known shape.

XMail, ecelerity, Scalix, Lotus Domino, MDaemon, qmail-less smtpd firewalls (Raptor, smap, Obtuse),
Post.Office, ArGoSoft, InterScan, F-Secure, MailGate, simta, Norton AntiVirus Gateway, GMX.
"""

from __future__ import annotations

import re

from relayguard.message.received.base import Fields, Outcome, Rule, rx

# --- XMail (SpamAssassin bugs 3791, 4053) ---------------------------------------------------------
XMAIL_MARKER = "[XMail "
_XMAIL_ID = rx(r" id <(\S+)>")
_XMAIL_FROM = rx(r" from <(\S+)>")


def _xmail(m: re.Match[str], f: Fields) -> Outcome:
    s = m.string
    if im := _XMAIL_ID.search(s):
        f.id = im.group(1)
    if fm := _XMAIL_FROM.search(s):
        f.envfrom = fm.group(1)
    return Outcome.HOP


# from list.brainbuzz.com (63.146.189.86:23198) by mx1.yourtech.net with [XMail 1.20 ESMTP Server]
XMAIL = Rule(
    "xmail",
    rx(r"^(?P<helo>\S+) \((?P<ip>\[?{IP}\]?)(?::\d+)\) by (?P<by>\S+)(?: \(\S+\))? with \[XMail"),
    post=_xmail,
)

# --- ecelerity --------------------------------------------------------------------------------------
ECELERITY_MARKER = rx(r"\(ecelerity\b")
# from ([192.168.1.151:49601] helo=dev1.democracyinaction.org) by m12.prod.democracyinaction.com
ECELERITY_HELO = Rule("ecelerity", rx(r"^\(\[(?P<ip>{IP}):\d+\] helo=(?P<helo>\S+)\) by (?P<by>\S+) "))
# from ([10.225.209.19:33672]) by ecelerity-va-1 (ecelerity HEAD) with SMTP
ECELERITY = Rule("ecelerity", rx(r"^\S+ \(\[(?P<ip>{IP}):\d+\]\) by (?P<by>\S+) "))

# --- Scalix, Lotus Domino -----------------------------------------------------------------------------
SCALIX_MARKER = "(Scalix SMTP Relay"
# from DPLAPTOP ( 72.242.176.162) by mail.puryear-it.com (Scalix SMTP Relay 10.0.1.3) via ESMTP
SCALIX = Rule("scalix", rx(r"^(?P<helo>\S+) \( ?(?P<ip>{IP})\) by (?P<by>\S+)"))
DOMINO_MARKER = " (Lotus Domino "
# Domino never records the rDNS (SpamAssassin bug 5926).
DOMINO = Rule("domino", rx(r"^(?P<helo>\S+) \(\[(?P<ip>{IP})\]\) by (?P<by>\S+) \(Lotus"))

# --- Raptor / smap / Obtuse firewalls ------------------------------------------------------------------
# from imo-m01.mx.aol.com ([64.12.136.4]) by eagle.glenraven.com via smtpd (for [198.85.87.98]) with SMTP(
SMTPD_FOR = Rule(
    "raptor",
    rx(r"^(?P<helo>\S+) \(\[(?P<ip>{IP})\]\) by (?P<by>\S+) via smtpd \(for \S+\) with SMTP\("),
    marker=" via smtpd ",
)
# from snake.corp.yahoo.com(216.145.52.229) by x.x.org via smap (V1.3)
SMAP = Rule(
    "smap",
    rx(r"^(?P<rdns>\S+)\((?P<ip>{IP})\) by (?P<by>\S+) via smap "),
    marker=" via smap ",
    guard=rx(r" via smap "),
    looked_up_dns=True,
)
# from smtp.greyware.com(208.14.208.51, HELO smtp.sff.net) by x.x.org via smap (V1.3)
SMAP_HELO = Rule(
    "smap",
    rx(r"^(?P<rdns>\S+)\((?P<ip>{IP}), (?:HELO|EHLO) (?P<helo>\S*)\) by (?P<by>\S+) via smap "),
    marker=" via smap ",
    looked_up_dns=True,
)
# from nodnsquery(192.100.64.12) by herbivore.monmouth.edu via csmap (V4.1) id srcAAAyHaywy
CSMAP = Rule("smap", rx(r"^(?P<rdns>\S+)\((?P<ip>{IP})\) by (?P<by>\S+) "))


def _obtuse(m: re.Match[str], f: Fields) -> Outcome:
    # Obtuse smtpd writes UNKNOWN when it found no name; SpamAssassin then does not count a lookup.
    if f.rdns == "UNKNOWN":
        f.looked_up_dns = False
    return Outcome.HOP


# from pl027.nas934.d-osaka.nttpc.ne.jp(61.197.82.27), claiming to be "foo.woas.net" via SMTP
#   by st.tahina.priv.at, id smtpd1PBsZT
OBTUSE = Rule(
    "obtuse",
    rx(r'^(?P<rdns>\S+)\((?P<ip>{IP})\)(?:, claiming to be "(?P<helo>\S+)")? via \S+ by (?P<by>\S+),'),
    marker=" via ",
    post=_obtuse,
    looked_up_dns=True,
)
# `UNKNOWN` as the rDNS is cleared with every other `unknown` when the fields are finished.


# --- MDaemon ----------------------------------------------------------------------------------------------
# from acecomms [202.83.84.95] by mailscan.acenet.net.au [202.83.84.27] with SMTP (MDaemon.PRO.v5.0.6.R)
MDAEMON = Rule("mdaemon", rx(r"^(?P<helo>\S+) \[(?P<ip>{IP})\] by (?P<by>\S+) \[{IP}\] with "), looked_up_dns=True)
# from smtp510.aspkunden.de [(134.97.4.21)] by mail.aspemail.de (134.97.4.24) (MDaemon PRO v19.0.2)
MDAEMON2 = Rule("mdaemon", rx(r"^(?P<helo>\S+) \[\((?P<ip>{IP})\)\] by (?P<by>\S+) \({IP}\) "), marker="[(")

# --- Small gateways -----------------------------------------------------------------------------------------
# from (64.52.135.194 [64.52.135.194]) by mail.unearthed.com with ESMTP id BQB0hUH2
PAREN_HELO = Rule("generic", rx(r"^\((?P<helo>\S+) \[(?P<ip>{IP})\]\) by (?P<by>\S+) "))
# from [65.167.180.251] by relent.cedata.com (MessageWall 1.1.0) with SMTP
BRACKET_BY = Rule("generic", rx(r"^\[(?P<ip>{IP})\] by (?P<by>\S+) "))
# from ([172.21.2.10]) by out-relay4.mtahq.org with ESMTP id 4420961.8281
PAREN_IP_BY = Rule("generic", rx(r"^\(\[?(?P<ip>{IP})\]?\) by (?P<by>\S+) "))
POST_OFFICE = Rule("post.office", rx(r"^\[(?P<ip>{IP})\] by (?P<by>\S+) \(Post"), marker=" (Post")
ARGOSOFT = Rule("argosoft", rx(r"^\[(?P<ip>{IP})\] by (?P<by>\S+) \(ArGoSoft"), marker=" (ArGoSoft")
# from 157.54.8.23 by inet-vrs-05.redmond.corp.microsoft.com (InterScan E-Mail VirusWall NT)
INTERSCAN = Rule("interscan", rx(r"^(?P<ip>{IP}) by (?P<by>\S+) \((?:SMTPL|InterScan)\b"))
# from ([10.0.0.6]) by mail0.ciphertrust.com with ESMTP
CIPHERTRUST = Rule("generic", rx(r"^\(\[(?P<ip>{IP})\]\) by (?P<by>\S+) with "))
# from ironport.com (10.1.1.5) by a50.ironport.com with ESMTP
IRONPORT = Rule("ironport", rx(r"^(?P<helo>[^\d]\S+) \((?P<ip>{IP})\) by (?P<by>\S+) "))
# from 01al10015010057.ad.bls.com ([90.152.5.141] [90.152.5.141]) by aismtp3g.bls.com with ESMTP
DOUBLE_IP = Rule("generic", rx(r"^(?P<helo>\S+) \(\[(?P<ip>{IP})\] \[(\S+)\]\) by (?P<by>\S+) with "))
# from 206.47.0.153 by dm3cn8.bell.ca with ESMTP (Tumbleweed MMS SMTP Relay (MMS v5.0))
IP_BY_WITH = Rule("tumbleweed", rx(r"^(?P<ip>{IP}) by (?P<by>\S+) with "))
# from [10.128.128.81]:50999 (HELO dfintra.f-secure.com) by fsav4im2 ([10.128.128.74]:25)
FSECURE = Rule("f-secure", rx(r"^\[(?P<ip>{IP})\]\S+ \((?:HELO|EHLO) (?P<helo>\S*)\) by (?P<by>\S+) "))
# from 62.180.7.250 (HELO daisy) by smtp.altavista.de (209.228.22.152) with SMTP
IP_HELO = Rule("generic", rx(r"^(?P<ip>{IP}) \((?:HELO|EHLO) (?P<helo>\S*)\) by (?P<by>\S+) "))
# from oemcomputer [63.232.189.195] by highstream.net (SMTPD32-7.07) id A4CE7F2A0028
HELO_BRACKET_IP = Rule("generic", rx(r"^(?P<helo>\S+) \[(?P<ip>{IP})\] by (?P<by>\S+) "))
MAILGATE = Rule("mailgate", rx(r"^\[(?P<ip>{IP})\] by (?P<by>\S+) \(MailGate "))
# from jmason.org (unverified [195.218.107.131]) by ni-mail1.dna.utvinternet.net
UNVERIFIED = Rule("generic", rx(r"^(?P<helo>\S+) \(unverified \[(?P<ip>{IP})\]\) by (?P<by>\S+) "))
# from 165.228.131.11 (proxying for 139.130.20.189) (SquirrelMail authenticated user jmmail) by jmason.org
IP_COMMENT = Rule("generic", rx(r"^(?P<ip>{IP}) \([A-Za-z][^\)]+\) by (?P<by>\S+) with "))
# from dslb-082-083-045-064.pools.arcor-ip.net (EHLO homepc) [82.83.45.64] by mail.gmx.net (mp010) with SMTP
GMX = Rule(
    "gmx",
    rx(
        r"^(?P<rdns>\S+) \((?:HELO|EHLO) (?P<helo>\S*)\) \[(?P<ip>{IP})\] by (?P<by>\S+) \([^\)]+\)"
        r" with (?:ESMTP|SMTP)"
    ),
    marker="LO ",
)
# from 12-211-5-69.client.attbi.com (<unknown.domain>[12.211.5.69]) by rwcrmhc53.attbi.com (rwcrmhc53)
ATTBI_UNKNOWN = Rule(
    "attbi", rx(r"^(?P<helo>\S+) \(<unknown\S*>\[(?P<ip>{IP})\]\) by (?P<by>\S+) "), marker="(<unknown"
)
# from attbi.com (h000502e08144.ne.client2.attbi.com[24.128.27.103]) by rwcrmhc53.attbi.com (rwcrmhc53)
ATTBI = Rule("attbi", rx(r"^(?P<helo>\S+) \((?P<rdns>\S+\.\S+)\[(?P<ip>{IP})\]\) by (?P<by>\S+) "), looked_up_dns=True)
# from pobox.com (h005018086b3b.ne.client2.attbi.com[66.31.45.164]) by rwcrmhc53.attbi.com
RDNS_NOSPACE = Rule(
    "generic", rx(r"^(?P<helo>\S+) \((?P<rdns>\S+)\[(?P<ip>{IP})\]\) by (?P<by>\S+) "), looked_up_dns=True
)

# --- simta (upper-case FROM/BY/ID) and Norton AntiVirus Gateway (`(from ...`) ----------------------------


def _simta(m: re.Match[str], f: Fields) -> Outcome:
    if f.rdns == "unverified":
        f.rdns = ""
    return Outcome.HOP


# FROM hackers.mr.itd.umich.edu (smtp.mail.umich.edu [141.211.14.81]) BY madman.mr.itd.umich.edu ID 434B508E.174A6.13932
SIMTA = Rule(
    "simta",
    rx(
        r"^(?P<helo>\S+) \((?P<rdns>\S+) \[(?P<ip>{IP})\]\) BY (?P<by>\S+)"
        r" (?:\([^\)]+\) WITH SMTP )?ID <?(?P<id>\S+?)>?(?: FOR <[^>]+>)?$",
    ),
    post=_simta,
    looked_up_dns=True,
)
# (from localhost [24.180.47.240]) by host.name (NAVGW 2.5.2.12) with SMTP id M2006060503484615455
NAVGW = Rule("navgw", rx(r"^(?P<helo>\S*) \[(?P<ip>{IP})\]\) by (?P<by>\S+) \(NAVGW .*?\) with "))
# (from username@localhost) by home.example.com (8.12.11/8.12.11/Submit): a local sendmail -t
LOCAL_SUBMIT = Rule("sendmail", rx(r"^\S+\@localhost\) by \S+ "), outcome=Outcome.SKIP)
JQUEUEMAIL = Rule("jqueuemail", rx(r"^[^\s\@]+\@[^)]+\) by \S+\(jqueuemail\) id [^\s;]+"), outcome=Outcome.SKIP)
