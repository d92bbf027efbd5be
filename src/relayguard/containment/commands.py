"""Operator commands (release, whitelist, block, ...) queued for every relay's relayguard to act on.

The CLI and API do not reach into a running relay: they append a command, and each relay polls the
queue (shared state: Redis for a fleet; the store's table for the embedded default, where the CLI and
the daemon are different processes). A release is then carried out by each relay on its own queue ids
only, since a Postfix queue id means nothing to another relay's Postfix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

CommandKind = Literal["release", "whitelist", "unwhitelist", "block", "hold", "throttle", "close"]
COMMAND_KINDS: tuple[str, ...] = ("release", "whitelist", "unwhitelist", "block", "hold", "throttle", "close")


@dataclass(frozen=True, slots=True)
class Command:
    kind: str  # one of COMMAND_KINDS
    customer: str
    t: float
    actor: str = "operator"  # who asked, e.g. "cli:alice"
    reason: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    id: int = 0  # assigned by the queue; increasing

    def __post_init__(self) -> None:
        if self.kind not in COMMAND_KINDS:
            raise ValueError(f"unknown command {self.kind!r}")
        if not self.customer:
            raise ValueError("a command needs a customer")

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "customer": self.customer,
                "t": self.t,
                "actor": self.actor,
                "reason": self.reason,
                "args": self.args,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes, id: int) -> Command:
        d = json.loads(text)
        return cls(
            str(d["kind"]),
            str(d["customer"]),
            float(d["t"]),
            str(d.get("actor", "")),
            str(d.get("reason", "")),
            dict(d.get("args") or {}),
            id,
        )


class CommandQueue(Protocol):
    def push_command(self, cmd: Command) -> int:
        """Append; returns the command's id (increasing)."""
        ...

    def commands_after(self, cursor: int, limit: int = 100) -> list[Command]:
        """Commands with id > cursor, oldest first."""
        ...

    def last_command_id(self) -> int:
        """The newest id (a relay starting fresh begins here, not at the start of history)."""
        ...

    def get_cursor(self, relay: str) -> int | None:
        """The last command id this relay applied (so commands queued while it was down still apply)."""
        ...

    def set_cursor(self, relay: str, cursor: int) -> None: ...
