"""Build the relay chain and walk trust. (Placeholder: the trust walk replaces this.)"""

from __future__ import annotations

from relayguard.message.received.parse import parse_received
from relayguard.message.relay import Relay, RelayChain
from relayguard.message.trust import TrustConfig


def build_chain(values: list[str], trust: TrustConfig) -> RelayChain:
    relays: list[Relay] = []
    unparsed: list[str] = []
    for v in values:
        p = parse_received(v)
        if p.relay is not None:
            relays.append(p.relay)
        elif not p.skip:
            unparsed.append(v)
    return RelayChain(
        relays=tuple(relays), unparsed=len(unparsed), unparsed_lines=tuple(unparsed),
        untrusted=tuple(relays), external=tuple(relays),
    )
