"""Errors that carry what an operator needs to fix them."""

from __future__ import annotations


class RelayguardError(Exception):
    """Base of relayguard's own errors."""


class ConfigError(RelayguardError):
    """The configuration is wrong; `problems` lists each problem as `where: what`."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class ParseError(RelayguardError):
    """Hostile or malformed input that a parser refused (callers turn it into a symbol)."""
