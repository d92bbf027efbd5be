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

from relayguard.config.schema import Settings
from relayguard.core.netset import NetSet
from relayguard.frontends.decider import FirstAnswer, PolicyDecider, RateLimitDecider
from relayguard.frontends.listen import open_server
from relayguard.frontends.policy_server import PolicyService
from relayguard.frontends.settings import FrontendsSettings, parse_listen

log = logging.getLogger("relayguard.frontends")


def frontend_settings(settings: Settings) -> FrontendsSettings:
    fs = settings.frontends
    if isinstance(fs, FrontendsSettings):
        return fs
    return FrontendsSettings.model_validate(fs)  # until schema.py carries the model


def build_policy_decider(settings: Settings) -> PolicyDecider:
    """The decision path that exists today: the in-memory per-login rate limit."""
    p = frontend_settings(settings).policy
    deciders: list[PolicyDecider] = []
    if p.rate_limit > 0:
        deciders.append(
            RateLimitDecider(p.rate_limit, p.rate_window, p.rate_state, NetSet(p.rate_exempt), p.rate_text)
        )
    return deciders[0] if len(deciders) == 1 else FirstAnswer(deciders)


@dataclass
class Frontends:
    settings: Settings
    servers: list[tuple[str, asyncio.AbstractServer]] = field(default_factory=list)

    def __post_init__(self) -> None:
        fs = frontend_settings(self.settings)
        self.policy = PolicyService(build_policy_decider(self.settings), fs.policy.fail_mode,
                                    fs.policy.max_request_bytes)
        self.services: dict[str, object] = {"policy": self.policy}

    async def start(self) -> None:
        fs = frontend_settings(self.settings)
        for text in fs.policy.listen:
            self.servers.append(("policy", await open_server(parse_listen(text), self.policy.protocol)))
        if not self.servers:
            log.warning("no front end configured: set [frontends.*] listen")

    def reload(self, settings: Settings) -> None:
        old = frontend_settings(self.settings)
        new = frontend_settings(settings)
        if (old.policy.listen, old.milter.listen, old.spamd.listen, old.http.listen) != (
            new.policy.listen, new.milter.listen, new.spamd.listen, new.http.listen
        ):
            log.warning("listen addresses changed: they take effect at the next restart")
        self.policy.decider = build_policy_decider(settings)
        self.policy.fail_mode = new.policy.fail_mode
        self.settings = settings
        log.info("configuration reloaded")

    async def stop(self, grace: float | None = None) -> None:
        if grace is None:
            grace = frontend_settings(self.settings).shutdown_grace
        for _, s in self.servers:
            s.close()
        self.policy.close_idle()
        if not await self.policy.inflight.wait_idle(grace):
            log.warning("shutdown grace over with %d policy requests in flight", self.policy.inflight.count)
        for c in list(self.policy.connections):
            c.close()
        for _, s in self.servers:
            await s.wait_closed()
        self.servers.clear()
