"""Parse one Received header into a Relay. (Placeholder: the dialect parsers replace this.)"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relayguard.message.relay import Relay

_IP = re.compile(r"\[(?:IPv6:)?([0-9a-fA-F:.]+)\]")


@dataclass(frozen=True, slots=True)
class ParsedReceived:
    """Result of parsing one header: a relay, a line to skip (not a hop), or unparsed."""

    relay: Relay | None
    skip: bool = False

    @property
    def unparsed(self) -> bool:
        return self.relay is None and not self.skip


def parse_received(value: str) -> ParsedReceived:
    m = _IP.search(value)
    if not m:
        return ParsedReceived(None)
    return ParsedReceived(Relay(ip=m.group(1), raw=value))
