"""The `[inbound]` configuration section: which DNS lists to use and how the origin checks behave."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from relayguard.inbound.dnsbl_lists import SHIPPED, ListSpec, shipped


class InboundSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Shipped list blocks to turn on, by name (see docs/inbound.md).
    use: list[str] = Field(default_factory=list)
    # Per shipped block, fields to replace (zone for a Spamhaus DQS key, nameservers for a mirror, ...).
    override: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Your own list blocks ([[inbound.lists]]), same fields as the shipped ones.
    lists: list[ListSpec] = Field(default_factory=list)
    # Headers a webmail or submission server writes with the client's address (SpamAssassin's
    # originating_ip_headers); queried by lists with the `originating` selector.
    originating_headers: list[str] = Field(
        default_factory=lambda: ["X-Yahoo-Post-IP", "X-Originating-IP", "X-Apparently-From", "X-SenderIP"]
    )
    max_domains: Annotated[int, Field(ge=1, le=1000)] = 20  # domain lookups per list per message
    resolve_url_hosts: bool = False  # look up A records of URL hosts for `urlhost` IP lists
    max_url_hosts: Annotated[int, Field(ge=0, le=100)] = 5
    monitor_interval: Annotated[float, Field(ge=1, le=86_400)] = 300.0
    spf: bool = False
    dkim: bool = False
    dmarc: bool = False
    authserv_id: str = ""  # Authentication-Results authserv-id; empty: this host's name
    dkim_minkey: Annotated[int, Field(ge=512, le=8192)] = 1024
    max_dkim_signatures: Annotated[int, Field(ge=1, le=20)] = 5

    @model_validator(mode="after")
    def _known(self) -> InboundSettings:
        for name in self.use:
            if name not in SHIPPED:
                raise ValueError(f"[inbound] use: no shipped list {name!r} (have: {', '.join(sorted(SHIPPED))})")
        for name in self.override:
            if name not in SHIPPED:
                raise ValueError(f"[inbound.override]: no shipped list {name!r}")
        self.active_lists()  # validates overrides and duplicate names
        return self

    def active_lists(self) -> list[ListSpec]:
        """Enabled lists: the shipped blocks named in `use` (with overrides), then your own."""
        out = [shipped(n, self.override.get(n)) for n in self.use]
        out += self.lists
        out = [s for s in out if s.enabled]
        owner: dict[str, str] = {}
        for s in out:
            own = {s.name, f"{s.name}_FAIL", s.blocked_symbol, s.broken_symbol} | {r.symbol for r in s.rules}
            for n in own:
                if n in owner:
                    raise ValueError(f"[inbound]: {n} is used by both {owner[n]} and {s.name}")
                owner[n] = s.name
        return out
