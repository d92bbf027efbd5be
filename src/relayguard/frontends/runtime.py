"""Start every configured front end, reload them, and stop them gracefully.

`Frontends` owns the listening sockets. Reload swaps what the servers share (decider, pipeline, fail
modes) without closing sockets or connections; listen addresses are read at start only (changing them
needs a restart, which the log says). Stop closes the listeners, lets transactions in flight finish
(up to `shutdown_grace` seconds), then closes what is left.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from relayguard.config.schema import Settings
from relayguard.core.http_endpoint import UvicornServer
from relayguard.core.netset import NetSet
from relayguard.frontends.decider import FirstAnswer, PolicyDecider, RateLimitDecider
from relayguard.frontends.http_server import HttpService
from relayguard.frontends.listen import open_server, open_stream_server
from relayguard.frontends.milter_server import MilterService
from relayguard.frontends.policy_server import PolicyService
from relayguard.frontends.scan import Scanner
from relayguard.frontends.settings import FrontendsSettings, parse_listen
from relayguard.frontends.spamd_server import SpamdService

if TYPE_CHECKING:
    from relayguard.containment.agent import ContainmentAgent
    from relayguard.containment.decider import ContainmentDecider
    from relayguard.containment.service import Containment

log = logging.getLogger("relayguard.frontends")


def frontend_settings(settings: Settings) -> FrontendsSettings:
    fs = settings.frontends
    if isinstance(fs, FrontendsSettings):
        return fs
    return FrontendsSettings.model_validate(fs)  # until schema.py carries the model


def build_policy_decider(
    settings: Settings, containment: Containment | None = None, containment_decider: ContainmentDecider | None = None
) -> PolicyDecider:
    """The decision path that exists today: containment (when enabled), then the per-login rate limit.

    `containment_decider` is reused when given (`Frontends` keeps one across reloads: its messages in
    progress and its background decision writer live on); otherwise one is made for `containment`."""
    p = frontend_settings(settings).policy
    deciders: list[PolicyDecider] = []
    if containment_decider is None and containment is not None:
        from relayguard.containment.decider import ContainmentDecider

        containment_decider = ContainmentDecider(containment)
    if containment_decider is not None:
        deciders.append(containment_decider)
    if p.rate_limit > 0:
        deciders.append(RateLimitDecider(p.rate_limit, p.rate_window, p.rate_state, NetSet(p.rate_exempt), p.rate_text))
    return deciders[0] if len(deciders) == 1 else FirstAnswer(deciders)


def build_containment(settings: Settings) -> Containment | None:
    """Containment from [containment], or None when it is disabled."""
    from relayguard.containment.factory import build, containment_settings

    if not containment_settings(settings).enabled:
        return None
    return build(settings)


@dataclass
class Frontends:
    settings: Settings
    servers: list[tuple[str, asyncio.AbstractServer]] = field(default_factory=list)

    containment: Containment | None = None

    def __post_init__(self) -> None:
        fs = frontend_settings(self.settings)
        self._agent: ContainmentAgent | None = None
        self._agent_task: asyncio.Task[None] | None = None
        self.containment_decider: ContainmentDecider | None = None
        if self.containment is not None:
            from relayguard.containment.decider import ContainmentDecider

            # Write-behind: the decision log is written in batches on a worker thread, never on the
            # request path; stop() writes whatever is still queued before it returns.
            self.containment_decider = ContainmentDecider(self.containment, background=True)
        self.policy = PolicyService(
            build_policy_decider(self.settings, self.containment, self.containment_decider),
            fs.policy.fail_mode,
            fs.policy.max_request_bytes,
        )
        self._scanner: Scanner | None = None
        self.milter: MilterService | None = None
        if fs.milter.listen:
            self.milter = MilterService(
                self.scanner(), fs.milter, self.settings.actions.subject_prefix, fs.idle_timeout
            )
        self.http: HttpService | None = None
        self.http_servers: list[UvicornServer] = []
        if fs.http.listen:
            self.http = HttpService(self.scanner(), fs.http, self.stats)
        self.spamd: SpamdService | None = None
        if fs.spamd.listen:
            self.spamd = SpamdService(self.scanner(), fs.spamd, self.settings.actions.subject_prefix, fs.idle_timeout)

    def scanner(self) -> Scanner:
        """One pipeline shared by every content front end (built on first use: it may be costly)."""
        if self._scanner is None:
            self._scanner = self._new_scanner(self.settings)
        return self._scanner

    def _new_scanner(self, settings: Settings) -> Scanner:
        if self.containment is None:
            return Scanner(settings)
        from relayguard.containment.check import ContainmentCheck, ContainmentUpdater

        return Scanner(settings, None, [ContainmentCheck(self.containment)], [ContainmentUpdater(self.containment)])

    def stats(self) -> dict[str, dict[str, int]]:
        """Live counters of every front end, for /metrics."""
        out = {
            "policy": {
                "requests": self.policy.requests,
                "failures": self.policy.failures,
                "inflight": self.policy.inflight.count,
            }
        }
        if self.milter is not None:
            out["milter"] = {"messages": self.milter.messages, "inflight": self.milter.inflight.count}
        if self.spamd is not None:
            out["spamd"] = {"requests": self.spamd.requests, "inflight": self.spamd.inflight.count}
        return out

    async def start(self) -> None:
        fs = frontend_settings(self.settings)
        if self.containment is not None:
            from relayguard.containment.agent import ContainmentAgent

            self._agent = ContainmentAgent(self.containment)
            self._agent_task = asyncio.create_task(self._agent.run())
        for text in fs.policy.listen:
            self.servers.append(("policy", await open_server(parse_listen(text), self.policy.protocol)))
        if self.milter is not None:
            for text in fs.milter.listen:
                self.servers.append(("milter", await open_stream_server(parse_listen(text), self.milter.handle)))
        if self.http is not None:
            app = self.http.app()
            for text in fs.http.listen:
                server = UvicornServer(app, parse_listen(text))
                await server.start()
                self.http_servers.append(server)
        if self.spamd is not None:
            for text in fs.spamd.listen:
                self.servers.append(("spamd", await open_stream_server(parse_listen(text), self.spamd.handle)))
        if not self.servers and not self.http_servers:
            log.warning("no front end configured: set [frontends.*] listen")

    def reload(self, settings: Settings) -> None:
        old = frontend_settings(self.settings)
        new = frontend_settings(settings)
        if (old.policy.listen, old.milter.listen, old.spamd.listen, old.http.listen) != (
            new.policy.listen,
            new.milter.listen,
            new.spamd.listen,
            new.http.listen,
        ):
            log.warning("listen addresses changed: they take effect at the next restart")
        self.policy.decider = build_policy_decider(settings, self.containment, self.containment_decider)
        self.policy.fail_mode = new.policy.fail_mode
        if self._scanner is not None:
            # Build the new pipeline before swapping, so a broken one leaves the old in place.
            scanner = self._new_scanner(settings)
            self._scanner = scanner
            if self.milter is not None:
                self.milter.scanner = scanner
            if self.spamd is not None:
                self.spamd.scanner = scanner
            if self.http is not None:
                self.http.scanner = scanner
        if self.milter is not None:
            self.milter.settings = new.milter
        if self.spamd is not None:
            self.spamd.settings = new.spamd
        if self.http is not None:
            self.http.settings = new.http
        self.settings = settings
        log.info("configuration reloaded")

    async def stop(self, grace: float | None = None) -> None:
        if grace is None:
            grace = frontend_settings(self.settings).shutdown_grace
        for _, s in self.servers:
            s.close()
        # uvicorn stops accepting, then waits for the requests in flight (its graceful shutdown).
        http_stops = [asyncio.create_task(h.stop()) for h in self.http_servers]
        self.policy.close_idle()
        if self.milter is not None:
            self.milter.stopping = True
            self.milter.close_idle()
        waits = [("policy", self.policy.inflight)]
        if self.milter is not None:
            waits.append(("milter", self.milter.inflight))
        if self.spamd is not None:
            waits.append(("spamd", self.spamd.inflight))
        for name, inflight in waits:
            if not await inflight.wait_idle(grace):
                log.warning("shutdown grace over with %d %s transactions in flight", inflight.count, name)
        for c in list(self.policy.connections):
            c.close()
        if self.milter is not None:
            self.milter.close_all()
        if http_stops:
            await asyncio.wait(http_stops, timeout=grace)
        self.http_servers.clear()
        for _, s in self.servers:
            await s.wait_closed()
        self.servers.clear()
        if self._agent is not None and self._agent_task is not None:
            self._agent.stop()
            await self._agent_task
        if self.containment_decider is not None:
            # every answer is written: now the decisions still queued for the log (nothing is lost)
            await asyncio.to_thread(self.containment_decider.close)
