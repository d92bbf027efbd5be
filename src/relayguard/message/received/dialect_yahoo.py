"""Yahoo: web mail (`via HTTP`), authenticated SMTP (`with login`), qmail-style SMTP with `with plain`."""

from __future__ import annotations

from relayguard.message.received.base import Rule, rx

# from [193.220.176.134] by web40310.mail.yahoo.com via HTTP
VIA_HTTP = Rule(
    "yahoo-http", rx(r"^\[(?P<ip>{IP})\] by (?P<by>\S+) via HTTP$"), marker=" via HTTP", guard=rx(r" via HTTP$")
)
# from customer254-217.iplannetworks.net (HELO AGAMENON) (baldusi@200.69.254.217 with plain)
#   by smtp.mail.vip.sc5.yahoo.com with SMTP
HELO_PLAIN = Rule(
    "yahoo-smtp",
    rx(
        r"^(?P<rdns>\S+) \((?:HELO|EHLO) (?P<helo>\S*)\) \((?:(?P<ident>\S+)\@)?(?P<ip>{IP}).*?\)"
        r" by (?P<by>\S+) with "
    ),
    marker="LO ",
    looked_up_dns=True,
)
# from itrqtnlnq (lucilleskinner@93.124.107.183 with login) by smtp111.mail.ne1.yahoo.com with SMTP
LOGIN = Rule(
    "yahoo-smtp",
    rx(r"^(?P<helo>\S+) \((\S+)@(?P<ip>{IP}) with login\) by (?P<by>\S+\.yahoo\.com) with SMTP"),
    marker=" with login) ",
)
