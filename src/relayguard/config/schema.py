"""Typed settings, one model per TOML section. Unknown keys are errors (a typo must not pass silently)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relayguard.arf.settings import ArfSettings
from relayguard.classifier.settings import ClassifierSettings
from relayguard.containment.settings import ContainmentSettings
from relayguard.core.netset import parse_net_entry
from relayguard.frontends.settings import FrontendsSettings
from relayguard.inbound.settings import InboundSettings
from relayguard.outbound.settings import OutboundSettings


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_nets(values: list[str]) -> list[str]:
    for v in values:
        parse_net_entry(v)  # raises ValueError with a readable message
    return values


class StorageSettings(Section):
    data_dir: str = ""
    redis_url: str = ""
    postgres_dsn: str = ""

    def data_path(self) -> Path:
        """The directory for embedded databases (created on first use by whoever writes there)."""
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "relayguard"


class DnsSettings(Section):
    nameservers: list[str] = Field(default_factory=list)
    timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    max_inflight: Annotated[int, Field(ge=1, le=10_000)] = 64

    @field_validator("nameservers")
    @classmethod
    def _ns(cls, values: list[str]) -> list[str]:
        for v in values:
            parse_hostport(v, 53)
        return values


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """`127.0.0.1`, `127.0.0.1:5353`, `[::1]:53`, `::1` -> (host, port); ValueError if malformed."""
    t = text.strip()
    if not t:
        raise ValueError("empty address")
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep:
            raise ValueError(f"{text!r}: missing ']'")
        if not rest:
            return host, default_port
        if not rest.startswith(":"):
            raise ValueError(f"{text!r}: expected ':port' after ']'")
        port_text = rest[1:]
    elif t.count(":") == 1:
        host, _, port_text = t.partition(":")
    else:
        return t, default_port  # a bare IPv6 address or a host name
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: port must be 1-65535")
    return host, int(port_text)


class TrustSettings(Section):
    trusted_networks: list[str] = Field(default_factory=list)
    internal_networks: list[str] = Field(default_factory=list)
    msa_networks: list[str] = Field(default_factory=list)

    _v = field_validator("trusted_networks", "internal_networks", "msa_networks")(
        classmethod(lambda cls, v: _check_nets(v))
    )


class LimitSettings(Section):
    max_message_bytes: Annotated[int, Field(ge=1024)] = 20 * 1024 * 1024
    max_headers: Annotated[int, Field(ge=10)] = 1000
    max_header_bytes: Annotated[int, Field(ge=256)] = 65536
    max_parts: Annotated[int, Field(ge=1)] = 200
    max_depth: Annotated[int, Field(ge=1)] = 20
    max_text_chars: Annotated[int, Field(ge=1000)] = 2_000_000
    max_urls: Annotated[int, Field(ge=1)] = 500


class PipelineSettings(Section):
    budget: Annotated[float, Field(gt=0, le=600)] = 10.0
    check_timeout: Annotated[float, Field(gt=0, le=600)] = 5.0


class ActionSettings(Section):
    reject: float = 15.0
    add_header: float = 6.0
    greylist: float = 4.0
    rewrite_subject: float = -1
    soft_reject: float = -1
    subject_prefix: str = "***SPAM*** "


class GroupSettings(Section):
    max_score: float | None = None


class Settings(Section):
    storage: StorageSettings = StorageSettings()
    dns: DnsSettings = DnsSettings()
    trust: TrustSettings = TrustSettings()
    limits: LimitSettings = LimitSettings()
    pipeline: PipelineSettings = PipelineSettings()
    actions: ActionSettings = ActionSettings()
    groups: dict[str, GroupSettings] = Field(default_factory=dict)
    scores: dict[str, float] = Field(default_factory=dict)
    # Sections owned by later features; each is a plain table until its feature defines a model.
    classifier: ClassifierSettings = ClassifierSettings()
    dnsbl: dict[str, object] = Field(default_factory=dict)
    inbound: InboundSettings = InboundSettings()
    frontends: FrontendsSettings = FrontendsSettings()
    outbound: OutboundSettings = OutboundSettings()
    arf: ArfSettings = ArfSettings()
    containment: ContainmentSettings = ContainmentSettings()
