"""Received header parsing (one small parser per MTA dialect) and the trust walk."""

from relayguard.message.received.chain import build_chain
from relayguard.message.received.parse import ParsedReceived, parse_received

__all__ = ["ParsedReceived", "build_chain", "parse_received"]
