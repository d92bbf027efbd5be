"""Inbound origin checks: DNS blocklists on the right hops, URI/domain lists, SPF, DKIM and DMARC.

`inbound_checks(settings, resolver)` builds the checks the configuration asks for; every one of them
resolves through the one shared `Resolver` (see resolver.py), so the cache, the in-flight cap and the
nameservers apply to all.

Imports here are lazy: `relayguard.config.schema` imports `inbound.settings`, and the checks import
the message parser, which imports the schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relayguard.checks.api import Check
    from relayguard.config.schema import Settings
    from relayguard.inbound.resolver import Resolver

__all__ = ["inbound_checks", "shared_resolver"]


_shared: dict[tuple[object, ...], Resolver] = {}


def shared_resolver(settings: Settings) -> Resolver:
    """The process's resolver for these [dns] settings (one cache and one in-flight cap for all)."""
    from relayguard.inbound.resolver import Resolver

    d = settings.dns
    key = (tuple(d.nameservers), d.timeout, d.max_inflight)
    r = _shared.get(key)
    if r is None:
        r = _shared[key] = Resolver(d)
    return r


def inbound_checks(settings: Settings, resolver: Resolver | None = None) -> list[Check]:
    """One check per enabled DNS list, plus the SPF/DKIM/DMARC check when any of them is on.

    Without `resolver`, the process's shared one (so `inbound_checks` also fits a one-argument
    check-factory list such as relayguard.app.build.CHECK_FACTORIES).
    """
    from relayguard.inbound.auth import AuthCheck
    from relayguard.inbound.dnsbl_check import ListCheck
    from relayguard.inbound.settings import InboundSettings
    from relayguard.message.parse import trust_config

    if resolver is None:
        resolver = shared_resolver(settings)

    inbound = settings.inbound
    if not isinstance(inbound, InboundSettings):
        inbound = InboundSettings.model_validate(inbound)
    timeout = settings.dns.timeout
    trust = trust_config(settings)
    checks: list[Check] = [ListCheck(spec, inbound, resolver, timeout, trust) for spec in inbound.active_lists()]
    if inbound.spf or inbound.dkim or inbound.dmarc:
        checks.append(AuthCheck(inbound, resolver, timeout))
    return checks
