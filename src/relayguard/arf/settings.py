"""The `[arf]` configuration section: abuse reports out (RFC 5965) and feedback-loop complaints in.

Every default is documented in `config/default.toml` and `docs/arf.md`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relayguard.core.netset import parse_net_entry


def split_hostport(text: str, default_port: int = 25) -> tuple[str, int]:
    """`127.0.0.1:2525`, `[::1]:2525`, `host` -> (host, port); ValueError when malformed.

    The [dns] syntax; kept here because config.schema imports this module.
    """
    t = text.strip()
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: expected [v6]:port")
        port_text = rest[1:] if rest else str(default_port)
    elif t.count(":") == 1:
        host, _, port_text = t.partition(":")
    else:
        host, port_text = t, str(default_port)
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: expected host:port with a port 1-65535")
    return host, int(port_text)


def _hostport(text: str) -> str:
    split_hostport(text)
    return text


class ArfSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- reports out ---
    abuse_addresses: list[str] = Field(default_factory=list)  # where `arf report` sends by default
    report_from: str = "abuse@localhost"  # From: of the reports we write (our abuse desk)
    smtp_server: str = "127.0.0.1:25"  # the relay that carries our reports
    smtp_starttls: bool = False
    smtp_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    folder: str = ""  # write reports as .eml files here instead of sending
    user_agent: str = "relayguard/0.1"
    original: Literal["message", "headers"] = "message"  # message/rfc822, or text/rfc822-headers only
    redact_recipients: bool = True  # RFC 6590: recipient local-parts replaced by a keyed hash
    redact_body: bool = False  # the original's body replaced by a notice (headers kept)
    redaction_key: str = ""  # HMAC key for redaction; empty = unkeyed hash (guessable; set one)
    auto: Literal["off", "opened", "contained"] = "off"  # report every incident when it opens / is contained
    max_messages: Annotated[int, Field(ge=1, le=1000)] = 5  # reports per incident (one per message)

    # --- complaints in ---
    listen: str = ""  # "127.0.0.1:10025": `relayguard arf serve` default; empty = not served
    lmtp: bool = False
    max_report_bytes: Annotated[int, Field(ge=4096, le=100 * 1024 * 1024)] = 10 * 1024 * 1024
    database: str = ""  # SQLite file; empty = <[storage] data_dir>/arf.sqlite3
    keep_raw_bytes: Annotated[int, Field(ge=0)] = 262_144  # of each complaint kept for the abuse desk
    relay_hostnames: list[str] = Field(default_factory=list)  # our relays' names in Received "by" clauses
    relay_networks: list[str] = Field(default_factory=list)  # our relays' addresses: a Source-IP here is not a customer
    match_window: Annotated[float, Field(gt=0, le=7 * 86400)] = 900.0  # seconds around a time for address lookups
    complaint_llr: Annotated[float, Field(ge=0, le=20)] = 3.0  # evidence one complaint adds to the customer's test

    @field_validator("relay_networks")
    @classmethod
    def _nets(cls, values: list[str]) -> list[str]:
        for v in values:
            parse_net_entry(v)
        return values

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _hostport(value) if value else value

    @field_validator("smtp_server")
    @classmethod
    def _smtp(cls, value: str) -> str:
        return _hostport(value)


def arf_settings(settings: object) -> ArfSettings:
    """The section from a Settings, whether the schema holds our model yet or still a plain table."""
    section = getattr(settings, "arf", None)
    if isinstance(section, ArfSettings):
        return section
    if isinstance(section, dict):
        return ArfSettings.model_validate(section)
    return ArfSettings()
