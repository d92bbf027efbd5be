"""Microsoft: IIS SMTPSVC, Exchange 2007+ (`with Microsoft SMTP Server`, `with mapi id`), old IMS."""

from __future__ import annotations

import re

from relayguard.message.received.base import Fields, Outcome, Rule, rx

# from inet-vrs-05.redmond.corp.microsoft.com ([157.54.6.157]) by INET-IMC-05.redmond.corp.microsoft.com
#   with Microsoft SMTPSVC(5.0.2195.6624)   (SMTPSVC never records the rDNS)
SMTPSVC = Rule(
    "exchange-smtpsvc",
    rx(r"^(?P<helo>\S*) \(\[(?P<ip>{IP})\][^\)]{0,40}\) by (?P<by>\S+) with Microsoft SMTPSVC"),
)
# from mail pickup service by mail1.insuranceiq.com with Microsoft SMTPSVC
SMTPSVC_PICKUP = Rule(
    "exchange-smtpsvc", rx(r"^mail pickup service by (\S+) with Microsoft SMTPSVC$"), outcome=Outcome.SKIP
)
SMTPSVC_MARKER = " SMTPSVC"


def _no_id(m: re.Match[str], f: Fields) -> Outcome:
    # The `id 15.1.1261.35` of these lines is the server version, not a queue id.
    f.id = ""
    return Outcome.HOP


# from EXC-DAG-02.global.net (10.45.252.152) by EXC-DAG-02.global.net (10.45.252.152)
#   with Microsoft SMTP Server (version=TLS1_2, cipher=...) id 15.1.1261.35
SMTP_SERVER = Rule(
    "exchange",
    rx(r"^(?P<helo>\S+) \(\[?(?P<ip>{IP})(?:%[A-Z0-9._~-]*)?\]?\) by (?P<by>\S+) "),
    post=_no_id,
)
# SpamAssassin's test wants the version right after the TLS comment, but Exchange 2013+ writes
# `(version=..., cipher=...) id 15.20.7362.31`: SpamAssassin then reads the line as qmail's and copies the
# HELO name into the rDNS. Accepting the `id ` gives Exchange's own reading (docs/received.md).
SMTP_SERVER_MARKER = rx(r" with (?:Microsoft SMTP Server|mapi id) (?:\([^\)]+\) )?(?:id )?\d+\.\d+\.\d+\.\d+(?:$| )")

# from ns.elcanto.co.kr (66.161.246.58 [66.161.246.58]) by mail.ssccbelen.edu.pe with SMTP
#   (Microsoft Exchange Internet Mail Service Version 5.5.1960.3) id G69TW478
IMS = Rule(
    "exchange-ims",
    rx(r"^(?P<helo>\S+) \((?P<rdns>\S+) \[(?P<ip>{IP})\]\) by (?P<by>\S+) with \S+ \("),
    looked_up_dns=True,
)
