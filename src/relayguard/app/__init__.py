"""Wiring and the command line; nothing imports this package."""
