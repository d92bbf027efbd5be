"""Containment of compromised customers: per-customer states, the decision log, incidents, shared state
across a relay fleet, release of held mail, and listing in the exploited-hosts zone (docs/containment.md).
"""
