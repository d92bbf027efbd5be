"""The trust model's configuration (SpamAssassin's trusted, internal and MSA networks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from relayguard.core.netset import NetSet


@dataclass(frozen=True)
class TrustConfig:
    """trusted ⊇ internal; when only one of the two is configured it serves for both (SpamAssassin).

    When neither is configured, `inferred` is True and the walk uses SpamAssassin's inference.
    """

    trusted: NetSet = field(default_factory=NetSet)
    internal: NetSet = field(default_factory=NetSet)
    msa: NetSet = field(default_factory=NetSet)

    @classmethod
    def from_lists(
        cls, trusted: list[str] | None = None, internal: list[str] | None = None, msa: list[str] | None = None
    ) -> TrustConfig:
        t = list(trusted or [])
        i = list(internal or [])
        if t and not i:
            i = t
        elif i and not t:
            t = i
        return cls(NetSet(t), NetSet(i), NetSet(msa or []))

    @property
    def inferred(self) -> bool:
        return not self.trusted and not self.internal
