"""Releasing held mail: `postsuper -H` for the queue ids this relay held for a customer.

A release is a command in the shared queue; every relay's relayguard polls it and releases only the
queue ids its own decision log recorded as HOLD on this relay (a queue id means nothing to another
relay's Postfix). The call to Postfix is behind `Postsuper`, so tests point it at a private instance
(`postsuper -c CONFIG_DIR -H QUEUEID`) and simulations at a fake.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from relayguard.containment.decisions import DecisionLog

log = logging.getLogger("relayguard.containment")

# Postfix queue ids: short (hex) or long (base-52-ish alphanumerics); never let anything else reach argv.
QUEUE_ID = re.compile(r"^[0-9A-Za-z]{5,32}$")


class Postsuper(Protocol):
    def release(self, queue_ids: Sequence[str]) -> list[str]:
        """Release these held messages; returns the ids Postfix actually released."""
        ...


@dataclass
class PostsuperCli:
    """The real thing: `postsuper [-c DIR] -H -` with the ids on stdin, then `postqueue -i` for each."""

    config_dir: str = ""
    postsuper: str = "postsuper"
    postqueue: str = "postqueue"
    schedule: bool = True  # ask for immediate delivery of what was released
    timeout: float = 60.0

    def _base(self, prog: str) -> list[str]:
        return [prog, "-c", self.config_dir] if self.config_dir else [prog]

    def release(self, queue_ids: Sequence[str]) -> list[str]:
        ids = [q for q in queue_ids if QUEUE_ID.match(q)]
        if not ids:
            return []
        p = subprocess.run(
            [*self._base(self.postsuper), "-H", "-"],
            input="".join(q + "\n" for q in ids),
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        # postsuper logs "QUEUEID: released from hold" per message (to the mail log and to stderr when
        # run from a terminal); its exit status is 0 even when an id was not on hold.
        released = [q for q in ids if re.search(rf"\b{q}: released from hold", p.stderr)]
        if p.returncode != 0:
            log.warning("containment: postsuper -H exited %d: %s", p.returncode, p.stderr.strip()[:500])
        if not released and p.returncode == 0 and "released from hold" not in p.stderr:
            # Output not visible (logged elsewhere): trust the exit status, the caller re-checks the queue.
            released = ids
        if self.schedule:
            for q in released:
                subprocess.run(
                    [*self._base(self.postqueue), "-i", q], capture_output=True, timeout=self.timeout, check=False
                )
        return released


@dataclass
class FakePostsuper:
    """Records what would be released (simulations, tests without Postfix)."""

    held: set[str] = field(default_factory=set)
    released: list[str] = field(default_factory=list)

    def release(self, queue_ids: Sequence[str]) -> list[str]:
        out = [q for q in queue_ids if q in self.held or not self.held]
        self.held -= set(out)
        self.released.extend(out)
        return out


def release_held(log_: DecisionLog, postsuper: Postsuper, customer: str, relay: str, t: float) -> list[str]:
    """Release this relay's held mail for `customer`; marks the decisions released. Returns queue ids."""
    held = log_.held_unreleased(customer, relay)
    if not held:
        return []
    by_qid: dict[str, list[int]] = {}
    for d in held:
        if d.id is not None:
            by_qid.setdefault(d.queue_id, []).append(d.id)
    released = postsuper.release(sorted(by_qid))
    log_.mark_released([i for q in released for i in by_qid.get(q, [])], t)
    # ids Postfix did not know any more (delivered after an earlier release, expired) are marked too,
    # so they are not retried forever; they are reported apart.
    gone = [q for q in by_qid if q not in released]
    if gone:
        log_.mark_released([i for q in gone for i in by_qid[q]], t)
        log.info("containment: customer=%s relay=%s not on hold any more: %s", customer, relay, " ".join(gone))
    log.info("containment: customer=%s relay=%s released %d held messages", customer, relay, len(released))
    return released
