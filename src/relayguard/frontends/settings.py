"""The `[frontends]` section: where each front end listens and what it answers when relayguard fails."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relayguard.core.netset import parse_net_entry


class FailMode(StrEnum):
    """What a front end answers when a check, its storage or relayguard itself fails.

    Never a permanent reject: an internal error must not bounce legitimate mail.
    """

    TEMPFAIL = "tempfail"  # 4xx: the client keeps the message and retries
    ACCEPT = "accept"  # let the message through unchecked


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str = ""  # TCP host (empty for a unix socket)
    port: int = 0
    path: str = ""  # unix socket path (empty for TCP)

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"[{self.host}]:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """`127.0.0.1:10040`, `[::1]:10040` (TCP) or `unix:/run/relayguard/policy.sock`."""
    from relayguard.config.schema import parse_hostport

    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise ValueError(f"{text!r}: empty socket path")
        return ListenAddress(path=path)
    host, port = parse_hostport(text, 0)
    if port == 0:
        raise ValueError(f"{text!r}: a port is required (host:port or unix:/path)")
    return ListenAddress(host=host, port=port)


def _check_listen(values: list[str]) -> list[str]:
    for v in values:
        parse_listen(v)
    return values


class PolicySettings(_Section):
    listen: list[str] = Field(default_factory=list)
    fail_mode: FailMode = FailMode.ACCEPT
    max_request_bytes: Annotated[int, Field(ge=1024, le=1 << 20)] = 65536
    # The built-in per-login rate limit (postfwd's `rate(sasl_username/100/3600/...)`); 0 disables it.
    rate_limit: Annotated[int, Field(ge=0)] = 100
    rate_window: Annotated[float, Field(gt=0)] = 3600.0
    rate_state: str = "RCPT"
    rate_exempt: list[str] = Field(default_factory=list)
    rate_text: str = "4.7.1 hourly outbound limit exceeded for {key}, try again later"

    _v = field_validator("listen")(classmethod(lambda cls, v: _check_listen(v)))

    @field_validator("rate_exempt")
    @classmethod
    def _nets(cls, values: list[str]) -> list[str]:
        for v in values:
            parse_net_entry(v)
        return values


class MilterSettings(_Section):
    listen: list[str] = Field(default_factory=list)
    fail_mode: FailMode = FailMode.TEMPFAIL
    max_message_bytes: Annotated[int, Field(ge=1024)] = 50 * 1024 * 1024
    add_headers: bool = True
    authserv_id: str = ""  # Authentication-Results authserv-id; empty = the MTA's {j} macro or host name


class SpamdSettings(_Section):
    listen: list[str] = Field(default_factory=list)
    fail_mode: FailMode = FailMode.ACCEPT
    max_message_bytes: Annotated[int, Field(ge=1024)] = 50 * 1024 * 1024


class HttpSettings(_Section):
    listen: list[str] = Field(default_factory=list)
    fail_mode: FailMode = FailMode.ACCEPT
    max_message_bytes: Annotated[int, Field(ge=1024)] = 50 * 1024 * 1024

    _v = field_validator("listen")(classmethod(lambda cls, v: _check_listen(v)))


class FrontendsSettings(_Section):
    policy: PolicySettings = PolicySettings()
    milter: MilterSettings = MilterSettings()
    spamd: SpamdSettings = SpamdSettings()
    http: HttpSettings = HttpSettings()
    # Extra checks for the front ends' pipeline: "module:factory" entries, factory(settings) -> [Check].
    plugins: list[str] = Field(default_factory=list)
    # Seconds a SIGTERM waits for transactions in flight before closing what is left.
    shutdown_grace: Annotated[float, Field(ge=0, le=600)] = 30.0
    # Seconds one connection may stay silent in the middle of a request before it is dropped.
    idle_timeout: Annotated[float, Field(gt=0, le=3600)] = 300.0

    @field_validator("milter", "spamd")
    @classmethod
    def _listen(cls, v: MilterSettings | SpamdSettings) -> MilterSettings | SpamdSettings:
        _check_listen(v.listen)
        return v
