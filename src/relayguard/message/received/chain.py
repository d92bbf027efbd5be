"""Build the relay chain and walk trust, with SpamAssassin's semantics (Metadata/Received.pm).

The walk starts at the newest header. A hop is trusted while every hop so far was trusted; it stays
trusted if its client address is in trusted_networks or the client authenticated (`with ESMTPA`,
`(Authenticated sender: ...)`, ...). The first hop that is neither breaks trust for good: it and every
older hop are untrusted. internal_networks is walked the same way (a hop that is not trusted is not
internal either). A hop whose client is in msa_networks is a submission server that only takes
authenticated users: the hop it received the message from is trusted too, and the walk stops
changing trust there.

With no networks configured (TrustConfig.inferred), SpamAssassin's inference: a hop is trusted (and
internal) while its client address is private (RFC 1918, loopback, link-local, CGNAT) or the client
authenticated.

Unparsed headers do not break trust (SpamAssassin's choice, kept so `ALL_TRUSTED`-style decisions
agree); they are counted in RelayChain.unparsed and listed in unparsed_lines.
"""

from __future__ import annotations

from functools import lru_cache

from relayguard.core.netset import IPAddress, NetSet, is_private, parse_ip
from relayguard.message.received.parse import parse_received
from relayguard.message.relay import Relay, RelayChain
from relayguard.message.trust import TrustConfig

# SpamAssassin always counts loopback as trusted and internal once networks are configured.
_LOOPBACK = NetSet(["127.0.0.0/8", "::1/128"])


# The same few relay addresses recur in message after message: remember what was decided. The key
# holds the NetSet itself (hashed by identity), so a cached answer never outlives its network list.
@lru_cache(maxsize=8192)
def _addr(ip: str | None) -> IPAddress | None:
    return parse_ip(ip)


@lru_cache(maxsize=8192)
def _member(nets: NetSet, addr: IPAddress) -> bool:
    return nets.contains(addr)


def _in(nets: NetSet, addr: IPAddress | None) -> bool:
    if addr is None:
        return False
    return _member(_LOOPBACK, addr) or _member(nets, addr)


@lru_cache(maxsize=8192)
def _private(addr: IPAddress) -> bool:
    return is_private(addr)


def _with_flags(r: Relay, envfrom: str | None, trusted: bool, internal: bool, msa: bool) -> Relay:
    # Spelled out rather than dataclasses.replace, which introspects the fields on every call.
    return Relay(
        ip=r.ip,
        rdns=r.rdns,
        helo=r.helo,
        by=r.by,
        ident=r.ident,
        id=r.id,
        envfrom=envfrom or r.envfrom,
        auth=r.auth,
        protocol=r.protocol,
        time=r.time,
        dialect=r.dialect,
        raw=r.raw,
        trusted=trusted,
        internal=internal,
        msa=msa,
        no_rdns=r.no_rdns,
    )


def build_chain(values: list[str], trust: TrustConfig) -> RelayChain:
    """`values`: unfolded Received header values in header order (newest first)."""
    inferred = trust.inferred
    # When only one of the two is set it serves for both (TrustConfig.from_lists already does this;
    # repeat it here for configs built field by field).
    trusted_nets = trust.trusted or trust.internal
    internal_nets = trust.internal or trust.trusted

    in_trusted = True
    in_internal = True
    found_msa = False
    allow_fetch_restart = True
    carried_envfrom: str | None = None

    relays: list[Relay] = []
    unparsed: list[str] = []
    skipped = 0
    notes: list[str] = []
    defects: set[str] = set()

    for value in values:
        envfrom = carried_envfrom
        carried_envfrom = None
        p = parse_received(value)
        defects.update(p.defects)
        if p.fetch and allow_fetch_restart and relays:
            # A fetchmail/getmail line inside the trusted part: the hops above it are local
            # delivery after the download. SpamAssassin restarts its lists here; so do we.
            notes.append(f"fetchmail: dropped {len(relays)} local hop(s) above the fetch")
            relays.clear()
        if p.relay is None:
            if p.skip:
                skipped += 1
                carried_envfrom = p.envfrom_for_next
            else:
                unparsed.append(value)
            continue

        r = p.relay
        msa = False
        if in_trusted and not found_msa:
            addr = _addr(r.ip)
            if inferred:
                if not (r.auth or (addr is not None and _private(addr))):
                    in_trusted = False
                    in_internal = False
            elif not r.auth and not _in(trusted_nets, addr):
                in_trusted = False
                in_internal = False
            else:
                if in_internal and not r.auth and not _in(internal_nets, addr):
                    in_internal = False
                if addr is not None and trust.msa and _member(trust.msa, addr):
                    found_msa = True
                    msa = True
        if envfrom or in_trusted or in_internal or msa:
            r = _with_flags(r, envfrom, in_trusted, in_internal, msa)
        allow_fetch_restart = in_trusted
        relays.append(r)

    if defects:
        notes.extend(f"defect: {d}" for d in sorted(defects))
    trusted = tuple(r for r in relays if r.trusted)
    untrusted = tuple(r for r in relays if not r.trusted)
    internal = tuple(r for r in relays if r.internal)
    external = tuple(r for r in relays if not r.internal)
    # Submitted by an authenticated client: a trusted relay recorded the client's authentication, or
    # an MSA (which only takes authenticated users) received it.
    authenticated = any(r.auth for r in trusted) or any(r.msa for r in trusted)
    return RelayChain(
        relays=tuple(relays),
        unparsed=len(unparsed),
        unparsed_lines=tuple(unparsed),
        skipped=skipped,
        trusted=trusted,
        untrusted=untrusted,
        internal=internal,
        external=external,
        authenticated=authenticated,
        notes=tuple(notes),
    )
