"""The demo scenario: an ISP relay (smtp1.isp.example, 192.0.2.25) and two dynamic customers.

198.51.100.7 was leased to SUB-A until T_SWITCH, then to SUB-B. SUB-A's infected PC sent spam through
the relay at T_SPAM (before the switch); the complaint arrives days later, when SUB-B holds the address.
"""

from __future__ import annotations

import email.utils
import ipaddress

from relayguard.arf.build import Redaction, build_report
from relayguard.arf.model import FeedbackReport
from relayguard.outbound.identity import IdentityResolver, LeaseHistory, LeaseRecord

RELAY = "smtp1.isp.example"
RELAY_IP = "192.0.2.25"
DYN_IP = "198.51.100.7"
T_LEASE_A = 1_790_000_000.0
T_SPAM = 1_791_194_400.0  # Mon, 05 Oct 2026 10:00:00 +0000
T_SWITCH = T_SPAM + 3 * 3600
T_COMPLAINT = T_SPAM + 2 * 86400


def leases() -> LeaseHistory:
    h = LeaseHistory()
    net = ipaddress.ip_network(f"{DYN_IP}/32")
    h.add(LeaseRecord("start", net, "SUB-A", T_LEASE_A))
    h.add(LeaseRecord("start", net, "SUB-B", T_SWITCH))  # the address changed hands
    return h


def resolver() -> IdentityResolver:
    return IdentityResolver(leases=leases())


def spam(
    n: int = 1, client_ip: str = DYN_IP, t: float = T_SPAM, qid: str = "4Xy7Zk1Qm2", mid: str = "spam-1@pc7"
) -> bytes:
    return (
        f"Received: from pc7 (dyn.isp.example [{client_ip}])\n"
        f"\tby {RELAY} (Postfix) with ESMTP id {qid}\n"
        f"\tfor <victim{n}@yahoo.example>; {email.utils.formatdate(t)}\n"
        f'From: "Pharmacy" <sales@pills.example>\n'
        f"To: victim{n}@yahoo.example\n"
        f"Subject: Cheap meds {n}\n"
        f"Message-ID: <{mid}>\n"
        f"Date: {email.utils.formatdate(t - 2)}\n"
        f"\n"
        f"Buy now http://pills.example/buy\n"
    ).encode()


def complaint(
    original: bytes, *, source_ip: str = RELAY_IP, arrival: float = T_SPAM + 2, reporter: str = "yahoo"
) -> bytes:
    """A Yahoo-style report about `original`, as the receiving provider would send it to us."""
    r = FeedbackReport(
        user_agent="Yahoo!-Mail-Feedback/2.0",
        version="1",
        source_ip=source_ip,
        original_mail_from="<sales@pills.example>",
        arrival_date=email.utils.formatdate(arrival),
        arrival_time=arrival,
        reported_domain=("pills.example",),
    )
    return build_report(
        r,
        from_addr=f"feedback@arf.{reporter}.example",
        to_addrs=["fbl@isp.example"],
        original=original,
        redaction=Redaction(recipients=False),
        date=T_COMPLAINT,
    )
