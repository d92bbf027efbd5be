"""Deterministic random rbldnsd data files and questions for the differential test.

Addresses and names come from deliberately small spaces so that ranges, prefixes, duplicates and
exclusions overlap often: that is where two implementations disagree.
"""

from __future__ import annotations

import ipaddress
import os
import random

WORDS = ["spam", "mail", "x", "relay", "bad", "shop", "a", "b", "cdn", "ok"]
TLDS = ["example", "test", "co.example"]


def rev4(ip: int) -> str:
    return f"{ip & 255}.{(ip >> 8) & 255}.{(ip >> 16) & 255}.{ip >> 24}"


def rev6(ip: int) -> str:
    return ".".join(reversed(ipaddress.IPv6Address(ip).exploded.replace(":", "")))


def _ip(r: random.Random) -> int:
    return (r.choice([60, 61]) << 24) | (r.randrange(3) << 16) | (r.randrange(4) << 8) | r.randrange(256)


def _q(ip: int) -> str:
    return ".".join(str((ip >> s) & 255) for s in (24, 16, 8, 0))


def _value(r: random.Random) -> str:
    k = r.randrange(8)
    return ["", "", f" :{r.randrange(2, 12)}:code text $ here", f" :{r.randrange(2, 12)}", f" :{r.randrange(2, 5)}:",
            " plain text for $ $1", " ; comment", f" :127.0.{r.randrange(3)}.{r.randrange(2, 9)}:long {'y' * 40} $"][k]


def ip4set(r: random.Random, n: int) -> list[str]:
    out = ["$TTL 1234", "$1 see-var-one", ":127.0.0.2:default for $"]
    for _ in range(n):
        ip = _ip(r)
        k = r.randrange(10)
        if k < 4:
            key = _q(ip)
        elif k == 4:
            key = ".".join(_q(ip).split(".")[:3])
        elif k == 5:
            bits = r.choice([16, 20, 22, 24, 25, 27, 28, 30, 31])
            key = f"{_q(ip & ((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF))}/{bits}"
        elif k == 6:
            end = min(ip + r.randrange(1, 700), (ip | 0xFFFF))
            key = f"{_q(ip)}-{_q(end)}"
        elif k == 7:
            key = f"{_q(ip)}-{min(255, (ip & 255) + r.randrange(40))}"
        elif k == 8:
            out.append("!" + _q(ip if r.random() < 0.6 else ip & 0xFFFFFF00) + ("" if r.random() < 0.7 else "/24"))
            continue
        else:
            out.append(f":{r.randrange(2, 6)}:new default {r.randrange(99)} $")
            continue
        out.append(key + _value(r))
    return out


def ip4trie(r: random.Random, n: int) -> list[str]:
    out = [":127.0.0.3:trie $"]
    for _ in range(n):
        ip = _ip(r)
        bits = r.choice([8, 12, 16, 20, 24, 26, 28, 31, 32, 32, 32])
        net = ip & ((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF)
        key = f"{_q(net)}/{bits}"
        out.append(("!" + key) if r.random() < 0.1 else key + _value(r))
    return out


def ip4tset(r: random.Random, n: int) -> list[str]:
    return [":127.0.0.4:tset $"] + [_q(_ip(r)) for _ in range(n)]


def _ip6(r: random.Random) -> int:
    return (0x20010DB8 << 96) | (r.randrange(3) << 80) | (r.randrange(4) << 64) | r.randrange(16)


def ip6trie(r: random.Random, n: int) -> list[str]:
    out = [":127.0.1.2:six $"]
    for _ in range(n):
        a = _ip6(r)
        bits = r.choice([32, 48, 56, 64, 64, 96, 124, 128, 128])
        net = a & (((1 << 128) - 1) ^ ((1 << (128 - bits)) - 1))
        key = f"{ipaddress.IPv6Address(net)}/{bits}"
        out.append(("!" + key) if r.random() < 0.1 else key + _value(r))
    return out


def ip6tset(r: random.Random, n: int) -> list[str]:
    out = [":127.0.1.3:tset6 $"]
    for _ in range(n):
        a = _ip6(r)
        if r.random() < 0.2:
            out.append("!" + str(ipaddress.IPv6Address(a)))
        else:
            w = ipaddress.IPv6Address(a).exploded.split(":")[:4]
            out.append(":".join(w))
    return out


def _name(r: random.Random) -> str:
    return ".".join(r.choice(WORDS) for _ in range(r.randrange(0, 3))) + ("." if r.random() < 1 else "") + \
        r.choice(TLDS) if r.random() < 0.9 else r.choice(TLDS)


def dnset(r: random.Random, n: int) -> list[str]:
    out = [":127.0.1.2:name $"]
    for _ in range(n):
        name = _name(r).strip(".")
        k = r.randrange(8)
        pre = ["", "", "", "*.", ".", "!", "!*.", "!."][k]
        out.append(pre + name + ("" if pre.startswith("!") else _value(r)))
    return out


def write_all(d: str, seed: int, n: int) -> list[str]:
    """Write the files into d; return rbldnsd zone specs serving them."""
    r = random.Random(seed)
    files = {"g-ip4set.zone": ip4set(r, n), "g-ip4trie.zone": ip4trie(r, n), "g-ip4tset.zone": ip4tset(r, n),
             "g-ip6trie.zone": ip6trie(r, n), "g-ip6tset.zone": ip6tset(r, n), "g-dnset.zone": dnset(r, n)}
    soa = ["$SOA 0 ns.gen.test hm.gen.test 42 1h 10m 1w 5m", "$NS 600 ns.gen.test"]
    for name, lines in files.items():
        with open(os.path.join(d, name), "w", encoding="latin-1") as f:
            f.write("\n".join(soa + lines) + "\n")
    return ["s.gen.test:ip4set:g-ip4set.zone", "t.gen.test:ip4trie:g-ip4trie.zone",
            "ts.gen.test:ip4tset:g-ip4tset.zone", "six.gen.test:ip6trie:g-ip6trie.zone",
            "six-t.gen.test:ip6tset:g-ip6tset.zone", "d.gen.test:dnset:g-dnset.zone",
            "all.gen.test:ip4set:g-ip4set.zone", "all.gen.test:ip4trie:g-ip4trie.zone",
            "all.gen.test:dnset:g-dnset.zone"]


def questions(seed: int, n: int) -> list[tuple[str, str]]:
    r = random.Random(seed + 1)
    out: list[tuple[str, str]] = []
    types = ["A", "A", "TXT", "TXT", "ANY", "AAAA"]
    for _ in range(n):
        t = r.choice(types)
        k = r.randrange(10)
        if k < 5:
            z = r.choice(["s", "t", "ts", "all"])
            out.append((f"{rev4(_ip(r))}.{z}.gen.test", t))
        elif k < 7:
            z = r.choice(["six", "six-t"])
            out.append((f"{rev6(_ip6(r))}.{z}.gen.test", t))
        elif k < 9:
            z = r.choice(["d", "all"])
            pre = r.choice(["", "", "www.", "a.b."])
            out.append((f"{pre}{_name(r).strip('.')}.{z}.gen.test", t))
        else:
            out.append((r.choice(["gen.test", "s.gen.test", "d.gen.test", "1.2.s.gen.test", "x.s.gen.test",
                                  "other.test", "six.gen.test"]), r.choice(["SOA", "NS", "A", "ANY", "MX"])))
    return out
