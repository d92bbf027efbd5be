"""One hop of the Received chain, and the chain after the trust walk."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Relay:
    """What one Received header says about one hop. None means unknown (absent from the line).

    `ip`/`rdns`/`helo` describe the client that connected; `by` the host that received. `auth` is the
    authentication mechanism or token seen (for example `ESMTPA`, `postfix`), None when unauthenticated.
    `time` is the date stamp after the `;` as written. The trust flags are set by the trust walk.
    `no_rdns` keeps "absent" apart from "unknown": True when the receiving MTA is one that looks up
    the client's reverse DNS and recorded none (SpamAssassin's `no_reverse_dns`); `rdns` None with
    `no_rdns` False means the line does not say.
    """

    ip: str | None = None
    rdns: str | None = None
    helo: str | None = None
    by: str | None = None
    ident: str | None = None
    id: str | None = None
    envfrom: str | None = None
    auth: str | None = None
    protocol: str | None = None
    time: str | None = None
    dialect: str = "unknown"
    raw: str = ""
    trusted: bool = False
    internal: bool = False
    msa: bool = False
    no_rdns: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "ip": self.ip,
            "rdns": self.rdns,
            "helo": self.helo,
            "by": self.by,
            "ident": self.ident,
            "id": self.id,
            "envfrom": self.envfrom,
            "auth": self.auth,
            "protocol": self.protocol,
            "time": self.time,
            "trusted": self.trusted,
            "internal": self.internal,
            "msa": self.msa,
            "no_rdns": self.no_rdns,
            "dialect": self.dialect,
        }


@dataclass(frozen=True, slots=True)
class RelayChain:
    """The Received chain, newest hop first, with SpamAssassin's trust split.

    `relays` holds every parsed hop (newest first). `trusted` + `untrusted` partition it: trust holds
    from the newest hop until the first hop that is neither trusted nor authenticated. `internal` /
    `external` is the same split for internal_networks. `last_external` is the hop that handed the
    message into our internal networks: the origin as far as the chain can be believed.
    """

    relays: tuple[Relay, ...] = ()
    unparsed: int = 0
    unparsed_lines: tuple[str, ...] = ()
    skipped: int = 0
    trusted: tuple[Relay, ...] = ()
    untrusted: tuple[Relay, ...] = ()
    internal: tuple[Relay, ...] = ()
    external: tuple[Relay, ...] = ()
    authenticated: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def last_external(self) -> Relay | None:
        return self.external[0] if self.external else None

    @property
    def first_untrusted(self) -> Relay | None:
        return self.untrusted[0] if self.untrusted else None

    @property
    def first_trusted(self) -> Relay | None:
        """The trusted hop that received the message from the first untrusted one (SA's first-trusted)."""
        return self.trusted[-1] if self.trusted else None

    @property
    def origin_ip(self) -> str | None:
        le = self.last_external
        return le.ip if le is not None else None
