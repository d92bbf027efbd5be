"""relayguard: stop spam from hijacked customers at an ISP's relays, and see through relays to the origin."""

__version__ = "0.1.0"
