"""The `[containment]` configuration section (documented in config/default.toml and docs/containment.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ContainmentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    relay: str = ""  # this relay's name in decisions and release commands; empty = the host name

    # --- where things live ---
    store: Literal["sqlite", "postgres"] = "sqlite"  # decision log, incidents, state history
    sqlite_path: str = ""  # empty = <storage.data_dir>/containment.sqlite3
    shared_state: Literal["memory", "redis"] = "memory"  # per-customer hot state; redis = storage.redis_url
    redis_prefix: str = "rg:c:"
    redis_timeout: Annotated[float, Field(gt=0, le=10)] = 0.25  # seconds per Redis call before falling back
    redis_retry: Annotated[float, Field(gt=0)] = 5.0  # seconds between reconnect attempts while Redis is down
    state_cache: Annotated[float, Field(ge=0, le=3600)] = 10.0  # seconds a state read from Redis is reused; 0 = off

    # --- retention and bounds ---
    decision_retention: Annotated[float, Field(gt=0)] = 30 * 86400.0
    state_ttl: Annotated[float, Field(gt=0)] = 30 * 86400.0  # idle customers' shared state expires
    dedupe_ttl: Annotated[float, Field(gt=0)] = 86400.0  # a message id counts once within this
    max_ids_per_customer: Annotated[int, Field(ge=10, le=1_000_000)] = 5000  # dedupe memory bound
    max_customers: Annotated[int, Field(ge=100)] = 1_000_000  # memory backend bound

    # --- the state machine ---
    on_watch: Literal["watched", "normal"] = "watched"  # the SPRT leans towards compromised
    on_compromised: Literal["throttled", "held", "blocked"] = "held"  # the SPRT crossed its upper bound
    on_campaign: Literal["watched", "throttled", "held"] = "held"  # part of a campaign
    block_after_complaints: Annotated[int, Field(ge=0)] = 3  # 0 = complaints never block
    block_after_held: Annotated[int, Field(ge=0)] = 0  # held messages that escalate to blocked; 0 = never
    throttle_per_hour: Annotated[int, Field(ge=0)] = 10  # messages a throttled customer may send per hour
    defer_text: str = "4.7.1 Sending rate limited for this account, try again later"
    hold_text: str = "Held: possible account compromise"
    reject_text: str = "5.7.1 Sending from this account is blocked: possible compromise, contact support"

    # --- incidents ---
    redact_recipients: Literal["keep", "domain", "hash", "drop"] = "domain"
    redact_body: Literal["keep", "excerpt", "drop"] = "excerpt"
    excerpt_chars: Annotated[int, Field(ge=0, le=100_000)] = 400
    max_evidence: Annotated[int, Field(ge=0, le=10_000)] = 20  # evidence messages kept per incident

    # --- release ---
    poll_interval: Annotated[float, Field(gt=0)] = 2.0  # how often each relay polls for commands
    postsuper: str = "postsuper"
    postqueue: str = "postqueue"
    postfix_config_dir: str = ""  # -c DIR for postsuper/postqueue; empty = Postfix's default

    # --- listing ---
    list_on_block: bool = True
    listing_zone: str = "exploited"  # the live zone relayguard's DNSBL serves, e.g. exploited.dnsbl.isp.example
    listing_store: Literal["sqlite", "postgres"] = "sqlite"  # postgres = storage.postgres_dsn
    listing_database: str = ""  # the DNSBL's live-listings SQLite file; empty = <storage.data_dir>/dnsbl.sqlite3
    listing_ttl: Annotated[float, Field(gt=0)] = 7 * 86400.0
    listing_value: str = "127.0.0.4"

    @field_validator("relay", "listing_zone", "redis_prefix")
    @classmethod
    def _no_space(cls, v: str) -> str:
        if any(c.isspace() for c in v):
            raise ValueError("must not contain white space")
        return v
