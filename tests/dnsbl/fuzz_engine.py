"""A long random-mutation run of the compiled DNSBL engine against the Python path (not a pytest module:
scripts/sanitize-dnsbl runs it under AddressSanitizer and UBSan). Every packet the engine answers must
give the Python path's bytes; a crash or a sanitizer report is a bug.

    python tests/dnsbl/fuzz_engine.py SECONDS
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import dns.message

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dnsbl.test_native import DATA, SPECS, TRIE, packets
from relayguard.dnsbl import native
from relayguard.dnsbl.answer import Limits
from relayguard.dnsbl.wire import answer_fast
from relayguard.dnsbl.zonespec import ZoneSpec, build_zoneset


def mutate(rnd: random.Random, p: bytearray) -> bytes:
    for _ in range(rnd.randint(0, 4)):
        op = rnd.random()
        if op < 0.5 and p:
            p[rnd.randrange(len(p))] = rnd.randrange(256)
        elif op < 0.7:
            del p[rnd.randrange(len(p) + 1) :]
        elif op < 0.9:
            p += rnd.randbytes(rnd.randint(1, 20))
        else:
            p = bytearray(rnd.randbytes(rnd.randint(0, 600)))
    return bytes(p)


def main(seconds: float, seed: int = 1) -> int:
    with tempfile.TemporaryDirectory() as d:
        for name, text in DATA.items():
            Path(d, name).write_text(text)
        Path(d, "trie.zone").write_text(TRIE)
        Path(d, "tset.zone").write_text(":127.0.0.3:Listed $\n" + "".join(f"10.0.0.{i}\n" for i in range(0, 20, 2)))
        specs = [*SPECS, "trie.test:ip4trie:trie.zone", "tset.test:ip4tset:tset.zone"]
        zs = build_zoneset([ZoneSpec.parse(s) for s in specs], Limits(), workdir=d).zoneset
    engine = native.engine_for(zs)
    base = [*packets(), *(dns.message.make_query(f"{i}.0.0.10.{z}.test", t, use_edns=0).to_wire()
                          for i in range(20) for z in ("trie", "tset") for t in ("A", "TXT"))]
    rnd = random.Random(seed)
    t0 = time.monotonic()
    n = answered = 0
    while time.monotonic() - t0 < seconds:
        p = mutate(rnd, bytearray(rnd.choice(base)))
        got = engine.answer(p)
        n += 1
        if got is not None:
            answered += 1
            if got != answer_fast(zs, p, "127.0.0.1"):
                print(f"MISMATCH for packet {p.hex()}", file=sys.stderr)
                return 1
    print(f"{n:,} packets, {answered:,} answered by the engine, all as the Python path answers them")
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0))
