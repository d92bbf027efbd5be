"""The relay-side loop: apply operator commands every `poll_interval` and purge old decisions hourly.

The front ends start one `ContainmentAgent` per relayguard process next to their servers:

    agent = ContainmentAgent(containment)
    task = asyncio.create_task(agent.run())
    ...
    agent.stop(); await task
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from relayguard.containment.service import CommandResult, Containment

log = logging.getLogger("relayguard.containment")

PURGE_EVERY = 3600.0


class ContainmentAgent:
    def __init__(self, containment: Containment, interval: float | None = None) -> None:
        self.containment = containment
        self.interval = interval or containment.settings.poll_interval
        self._stop = asyncio.Event()
        self._last_purge = -PURGE_EVERY

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> list[CommandResult]:
        """One round (blocking: postsuper and the store); run() calls it in a worker thread."""
        c = self.containment
        results = c.poll()
        now = c.clock.monotonic()
        if now - self._last_purge >= PURGE_EVERY:
            self._last_purge = now
            n = c.purge()
            if n:
                log.info("containment: purged %d decisions older than the retention", n)
        return results

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("containment: command poll failed; retrying in %.1fs", self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)
