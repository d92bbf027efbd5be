"""Compromised-customer detection at the ISP's own relays (docs/outbound.md)."""
