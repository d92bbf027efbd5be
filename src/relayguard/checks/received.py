"""Checks on the relay chain: what the hop that handed us the message says about itself."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from relayguard.checks.api import Hit, SymbolDef, SyncCheck
from relayguard.core.netset import is_private, parse_ip
from relayguard.message.facts import MessageFacts

_FQDN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$", re.I)


class ReceivedCheck(SyncCheck):
    name = "RECEIVED"
    symbols = (
        SymbolDef("RCVD_NONE", "received", "No Received header at all"),
        SymbolDef("RCVD_UNPARSEABLE", "received", "Received headers no dialect parser understood"),
        SymbolDef("HELO_IP_LITERAL", "received", "Last external hop greeted with an IP address, not a name"),
        SymbolDef("HELO_NOT_FQDN", "received", "Last external hop's HELO is not a fully qualified name"),
        SymbolDef("HELO_MISMATCH_IP", "received", "Last external hop's HELO is an IP literal not its own"),
        SymbolDef("RDNS_NONE", "received", "Last external hop has no reverse DNS"),
        SymbolDef(
            "RCVD_FORGED", "received", "An untrusted hop claims to be received by one of our trusted hosts"
        ),
        SymbolDef("RCVD_PRIVATE_EXTERNAL", "received", "Last external hop has a private address"),
    )

    def evaluate(self, facts: MessageFacts) -> Sequence[Hit]:
        hits: list[Hit] = []
        chain = facts.chain
        if not chain.relays and not chain.unparsed:
            hits.append(Hit("RCVD_NONE"))
            return hits
        if chain.unparsed:
            hits.append(Hit("RCVD_UNPARSEABLE", (str(chain.unparsed),)))
        le = chain.last_external
        if le is not None and le.ip:
            where = f"{le.ip}:lastexternal"
            helo = (le.helo or "").strip()
            if helo:
                literal = helo.strip("[]")
                helo_ip = parse_ip(literal)
                if helo_ip is not None:
                    hits.append(Hit("HELO_IP_LITERAL", (helo, where)))
                    if helo_ip != parse_ip(le.ip):
                        hits.append(Hit("HELO_MISMATCH_IP", (helo, where)))
                elif not _FQDN.match(helo):
                    hits.append(Hit("HELO_NOT_FQDN", (helo[:60], where)))
            if not le.rdns and not is_private(le.ip):
                hits.append(Hit("RDNS_NONE", (where,)))
            if is_private(le.ip) and not chain.authenticated:
                hits.append(Hit("RCVD_PRIVATE_EXTERNAL", (where,)))
        # Forgery: an untrusted line claims a trusted host name as its receiver, or a "from" IP that
        # is one of ours appears below an untrusted hop (spamware pastes fake relay lines).
        trusted_names = {r.by.lower() for r in chain.trusted if r.by}
        for r in chain.untrusted[1:]:
            if r.by and r.by.lower() in trusted_names:
                hits.append(Hit("RCVD_FORGED", (f"by {r.by} below an untrusted hop",)))
                break
            ip = parse_ip(r.ip)
            if ip is not None and isinstance(ip, ipaddress.IPv4Address) and ip.is_unspecified:
                hits.append(Hit("RCVD_FORGED", (f"from {r.ip}",)))
                break
        return hits
