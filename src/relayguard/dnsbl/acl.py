"""acl: per-client actions for a zone (or all zones): ignore, refuse, empty, pass, or "always listed".

Keys are IPv4/IPv6 CIDRs as in ip4trie/ip6trie; the longest matching prefix decides; unlisted clients
pass. The default action of a listed entry is `ignore`. Under `empty` and "always listed", generic
datasets keep their names but give no records (as rbldnsd does, whatever its manual says).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from relayguard.dnsbl.answer import AclAction, Limits
from relayguard.dnsbl.datafile import (
    NO_TXT_DEFAULT,
    Meta,
    Rec,
    Source,
    entry_rest_ok,
    iter_entry_lines,
    parse_a_txt,
)
from relayguard.dnsbl.ip4 import PrefixTable, parse_ip4_cidr
from relayguard.dnsbl.ip6 import parse_ip6_cidr

_ACTIONS = {":ignore": AclAction.IGNORE, ":refuse": AclAction.REFUSE, ":empty": AclAction.EMPTY,
            ":pass": AclAction.PASS}


class Acl:
    kind = "acl"

    def __init__(self, meta: Meta, v4: PrefixTable, v6: PrefixTable, actions: list[str | Rec]) -> None:
        self.meta = meta
        self.v4 = v4
        self.v6 = v6
        self.actions = actions

    @classmethod
    def load(cls, paths: Iterable[Source], limits: Limits) -> Acl:
        meta = Meta()
        actions: list[str | Rec] = [AclAction.PASS]
        index: dict[str | Rec, int] = {}
        e4: dict[tuple[int, int], int] = {}
        e6: dict[tuple[int, int], int] = {}
        default: str | Rec = AclAction.IGNORE
        for where, line in iter_entry_lines(paths, meta, default_ttl=limits.defttl):
            if line[0] == ":" and line[1:2] != ":":
                act = cls._action(line, default)
                if act is None:
                    meta.warn(where, "invalid action")
                else:
                    default = act
                continue
            if line[0] == "!":
                # rbldnsd's acl has no exclusions: such a line is ignored (checked against rbldnsd)
                meta.warn(where, "exclusions are not supported in acl datasets")
                continue
            excl = False
            key = line
            token = key.split(None, 1)[0]
            table = e6 if ":" in token else e4
            c = parse_ip6_cidr(key) if table is e6 else parse_ip4_cidr(key)
            if c is None or not entry_rest_ok(c[2]):
                meta.warn(where, "invalid address")
                continue
            rest = c[2].strip()
            act2: str | Rec | None = AclAction.PASS if excl else (cls._action(rest, default) if rest else default)
            if act2 is None:
                meta.warn(where, "invalid action")
                continue
            if act2 not in index:
                index[act2] = len(actions)
                actions.append(act2)
            table.setdefault((c[0], c[1]), index[act2])
        return cls(meta, PrefixTable(e4, 32), PrefixTable(e6, 128), actions)

    @staticmethod
    def _action(text: str, default: str | Rec) -> str | Rec | None:
        t = text.strip()
        if not t or t[0] in "#;":
            return default
        low = t.split()[0].lower()
        if low in _ACTIONS:
            return _ACTIONS[low]
        base = default if isinstance(default, Rec) else NO_TXT_DEFAULT
        return parse_a_txt(t, base)

    def count(self) -> int:
        return len(self.actions)

    def action(self, peer: str | None) -> str | Rec | None:
        if peer is None:
            return None
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        table = self.v4 if ip.version == 4 else self.v6
        v = table.lookup(int(ip))
        if v <= 0:
            return None
        act = self.actions[v]
        return None if act == AclAction.PASS else act
