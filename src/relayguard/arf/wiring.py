"""Build the ARF pieces from the configuration: store, matcher (decision log + identity), sinks.

Containment (issue 8) and detection (issue 7) are optional here: when their packages are missing or
cannot be opened, complaints are still parsed, kept and counted, and traced through whatever is left
(leases and static assignments alone, or nothing). What was wired is logged once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayguard.arf.ingest import Ingestor
from relayguard.arf.match import Matcher
from relayguard.arf.ports import (
    ComplaintSink,
    DecisionLogLookup,
    DecisionLookup,
    DetectorSink,
    IdentityLookup,
    IncidentSink,
    ResolverIdentity,
)
from relayguard.arf.settings import ArfSettings, arf_settings
from relayguard.arf.store import ComplaintStore
from relayguard.config.schema import Settings
from relayguard.core.clock import Clock

log = logging.getLogger("relayguard.arf")


@dataclass
class Wired:
    settings: ArfSettings
    store: ComplaintStore
    decisions: DecisionLookup | None = None
    identity: IdentityLookup | None = None
    containment: Any = None
    sinks: list[ComplaintSink] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ingestor(self, clock: Clock | None = None) -> Ingestor:
        return Ingestor(
            self.settings, self.store, Matcher(self.settings, self.decisions, self.identity), self.sinks, clock
        )


def store_path(settings: Settings) -> Path:
    a = arf_settings(settings)
    return Path(a.database) if a.database else settings.storage.data_path() / "arf.sqlite3"


def wire(settings: Settings, *, containment: bool = True, detection: bool = True, clock: Clock | None = None) -> Wired:
    a = arf_settings(settings)
    w = Wired(a, ComplaintStore(store_path(settings), a.keep_raw_bytes))
    if containment:
        try:
            from relayguard.containment.factory import build

            c = build(settings, clock=clock)
            w.containment = c
            w.decisions = DecisionLogLookup(c.store)
            w.sinks.append(IncidentSink(c))
            w.notes.append("decision log and incidents: containment")
        except Exception as exc:  # missing package, unreadable store: keep going without it
            w.notes.append(f"no decision log / incidents ({type(exc).__name__}: {exc})")
    if detection:
        try:
            from relayguard.outbound.detector import OutboundDetector

            det = OutboundDetector.from_settings(settings, clock)
            w.identity = ResolverIdentity(det.identity)
            w.notes.append("identity: outbound leases and static assignments")
            if det.settings.state == "sqlite":
                # Only a persistent state is shared with the relay's daemon; memory state would be lost.
                w.sinks.append(DetectorSink(det, a.complaint_llr))
                w.notes.append("detection: complaint evidence into the outbound SQLite state")
        except Exception as exc:
            w.notes.append(f"no identity / detection ({type(exc).__name__}: {exc})")
    for n in w.notes:
        log.info("arf: %s", n)
    return w
