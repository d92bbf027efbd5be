"""The `[outbound]` configuration section: compromised-customer detection at the ISP's own relays.

Every default is documented in `config/default.toml` and `docs/outbound.md`. The SPRT defaults are
SPOT's (Duan et al., INFOCOM 2009): alpha = beta = 0.01, theta0 = 0.2, theta1 = 0.9.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from relayguard.core.actions import Action


class OutboundSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True

    # --- identity ---
    static_assignments: str = ""  # CIDR file: "<network> <subscriber>" per line
    lease_file: str = ""  # RADIUS accounting / Kea lease records, one per line
    lease_socket: str = ""  # "host:port" on loopback or "unix:/path": live lease records
    lease_history: Annotated[float, Field(gt=0)] = 30 * 86400.0
    ipv6_prefix: Annotated[int, Field(ge=32, le=128)] = 64
    login_network_window: Annotated[float, Field(gt=0)] = 86400.0
    login_networks_suspect: Annotated[int, Field(ge=2)] = 4

    # --- behaviour windows ---
    windows: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [600.0, 3600.0, 86400.0])
    baseline_halflife: Annotated[float, Field(gt=0)] = 7 * 86400.0
    baseline_prior_per_hour: Annotated[float, Field(gt=0)] = 6.0
    max_events: Annotated[int, Field(ge=100, le=1_000_000)] = 20_000
    max_distinct: Annotated[int, Field(ge=10, le=1_000_000)] = 5_000

    # --- sequential test ---
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    beta: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    theta0: Annotated[float, Field(gt=0, lt=1)] = 0.2
    theta1: Annotated[float, Field(gt=0, lt=1)] = 0.9
    max_behaviour_llr: Annotated[float, Field(ge=0)] = 1.5
    burst_factor: Annotated[float, Field(gt=1)] = 5.0
    burst_llr: Annotated[float, Field(ge=0)] = 0.7
    domain_spread: Annotated[int, Field(ge=2)] = 8
    domain_spread_llr: Annotated[float, Field(ge=0)] = 0.5
    sender_churn: Annotated[int, Field(ge=2)] = 3
    sender_churn_llr: Annotated[float, Field(ge=0)] = 0.5
    rejected_ratio: Annotated[float, Field(gt=0, le=1)] = 0.3
    rejected_llr: Annotated[float, Field(ge=0)] = 0.5
    login_networks_llr: Annotated[float, Field(ge=0)] = 1.0
    repeat_window: Annotated[float, Field(gt=0)] = 86400.0

    # --- campaigns ---
    campaign_k: Annotated[int, Field(ge=2)] = 3
    campaign_window: Annotated[float, Field(gt=0)] = 6 * 3600.0
    campaign_ttl: Annotated[float, Field(gt=0)] = 3 * 86400.0
    campaign_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.6
    campaign_num_perm: Annotated[int, Field(ge=16, le=512)] = 64
    campaign_shingle: Annotated[int, Field(ge=1, le=10)] = 4
    campaign_min_spam: Annotated[float, Field(ge=0, le=1)] = 0.5
    campaign_member_llr: Annotated[float, Field(ge=0)] = 3.0
    campaign_spam_p: Annotated[float, Field(ge=0, le=1)] = 0.99
    max_campaign_clusters: Annotated[int, Field(ge=100)] = 100_000

    # --- decisions ---
    suspect_action: Action = Action.QUARANTINE
    campaign_action: Action = Action.QUARANTINE  # "no action": score only
    suspect_message: str = "4.7.1 Sending from this account is on hold: possible compromise, contact support"

    # --- storage ---
    state: Literal["memory", "sqlite"] = "memory"
    state_path: str = ""  # SQLite file; empty = <storage.data_dir>/outbound.sqlite3

    @model_validator(mode="after")
    def _check(self) -> OutboundSettings:
        if self.theta1 <= self.theta0:
            raise ValueError("theta1 (spam rate of a compromised customer) must exceed theta0")
        return self
