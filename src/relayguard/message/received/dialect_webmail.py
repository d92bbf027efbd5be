"""Webmail front ends that hand mail over with HTTP: SquirrelMail, AOL, IMP, Hotmail, Outblaze."""

from __future__ import annotations

import re

from relayguard.message.received.base import Fields, Outcome, Rule, rx

_LEADING_IP = rx(r"^({IP}) ")


def _hotmail(m: re.Match[str], f: Fields) -> Outcome:
    # from 213.123.174.21 by lw11fd.law11.hotmail.msn.com with HTTP
    ip = _LEADING_IP.search(m.string)
    if ip:
        f.ip = ip.group(1)
    return Outcome.HOP


# from 142.169.110.122 (SquirrelMail authenticated user synapse) by mail.nomis80.org with HTTP
SQUIRRELMAIL = Rule(
    "squirrelmail",
    rx(r"(?P<ip>{IP})\b(?![.-]).{10,80}by (?P<by>\S+) with HTTP"),
    marker=" authenticated user ",
    guard=rx(r" \((?:SquirrelMail|NaSMail) authenticated user "),
)
# from 82.135.198.129 by FWM-M18.sysops.aol.com (64.12.168.82) with HTTP (WebMailUI)
AOL = Rule(
    "aol-webmail",
    rx(r"(?P<ip>{IP}) by (?P<by>\S+) \({IP}\) with HTTP \(WebMailUI\)"),
    marker="with HTTP (WebMailUI)",
    guard=rx(r"aol\.com"),
)
# from 217.137.58.28 ([217.137.58.28]) by webmail.ukonline.net (IMP) with HTTP
IMP = Rule(
    "webmail-http",
    rx(r"^(?P<ip>{IP}) \(\[{IP}\]\) by (?P<by>\S+)"),
    marker="with HTTP",
    guard=rx(r"\bwith HTTP\b"),
)
HOTMAIL = Rule("hotmail", rx(r"by (?P<by>\S+\.hotmail\.msn\.com) "), marker="hotmail.msn.com", post=_hotmail)
# from 192.168.5.158 ( [192.168.5.158]) as user jason@localhost by mail.reusch.net with HTTP
AS_USER = Rule("webmail-http", rx(r"^\S+ \( \[(?P<ip>{IP})\]\).*? by (?P<by>\S+) "), marker="( [")
# from [129.24.215.125] by ws1-7.us4.outblaze.com with http for _bushisevil_@mail.com
OUTBLAZE = Rule("outblaze", rx(r"^\[(?P<ip>{IP})\] by (?P<by>\S+) with http for "), marker=" with http for ")
