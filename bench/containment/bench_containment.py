"""Containment decision overhead per message, p50/p99, with the embedded backend and with Redis.

What is timed is the containment path only, as the policy service runs it for one message: the RCPT
request (identity, shared-state read, throttle admission for throttled customers) and the
END-OF-MESSAGE request (the decision-log write and the idempotent counters). Content checks and DNS
are excluded. Customers are spread over every state (mostly normal, some watched, throttled, held,
blocked) so every branch is on the clock.

Backends: `embedded` = memory shared state + SQLite decision log (WAL); `redis` = Redis shared state
(a private redis-server on loopback) + SQLite decision log; `redis+postgres` when PostgreSQL answers.

Latency is wall time, so on a busy machine it includes waiting for a CPU; `cpu_ms_per_message` (this
process's CPU time per message) and the load average printed with the results say how much.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # bench.lib

from bench.lib.peers import free_port, wait_port  # noqa: E402

from relayguard.containment.decider import ContainmentDecider  # noqa: E402
from relayguard.containment.service import Containment  # noqa: E402
from relayguard.containment.settings import ContainmentSettings  # noqa: E402
from relayguard.containment.shared_state import (  # noqa: E402
    MemorySharedState,
    RedisSharedState,
    ResilientSharedState,
    SharedState,
)
from relayguard.containment.states import Actor, ContainmentState  # noqa: E402
from relayguard.containment.store_sqlite import SqliteStore  # noqa: E402
from relayguard.protocols.policy import PolicyRequest  # noqa: E402


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def populate(c: Containment, customers: int, rng: random.Random) -> None:
    states = (
        [ContainmentState.WATCHED] * 5
        + [ContainmentState.THROTTLED] * 3
        + [ContainmentState.HELD] * 2
        + [ContainmentState.BLOCKED]
    )
    for i in range(customers):
        if rng.random() < 0.05:
            c.escalate(f"login:user{i}", rng.choice(states), "bench", actor=Actor.OPERATOR)


def requests(i: int, customer: int) -> tuple[PolicyRequest, PolicyRequest]:
    common = {
        "request": "smtpd_access_policy",
        "instance": f"bench.{i}",
        "client_address": f"10.{customer // 65536 % 256}.{customer // 256 % 256}.{customer % 256}",
        "sasl_username": f"user{customer}",
        "sender": f"user{customer}@isp.example",
    }
    rcpt = PolicyRequest({**common, "protocol_state": "RCPT", "recipient": f"r{i}@example.org"})
    eom = PolicyRequest({**common, "protocol_state": "END-OF-MESSAGE", "queue_id": f"4B{i:08X}",
                         "recipient_count": "1"})  # fmt: skip
    return rcpt, eom


def run_backend(name: str, shared: SharedState, workdir: Path, messages: int, customers: int, seed: int,
                store_factory: Any = None, background: bool = False) -> dict[str, Any]:  # fmt: skip
    store = store_factory() if store_factory else SqliteStore(workdir / f"{name}-{int(background)}.sqlite3")
    c = Containment(ContainmentSettings(relay="bench"), store, shared, relay="bench")
    rng = random.Random(seed)
    populate(c, customers, rng)
    dec = ContainmentDecider(c, background=background)
    for i in range(200):  # warm up (prepared statements, connections, Lua script cache)
        a, b = requests(-i - 1, rng.randrange(customers))
        dec.decide(a)
        dec.decide(b)
    lat: list[float] = []
    actions: dict[str, int] = {}
    t_all = time.perf_counter()
    cpu0 = time.process_time()
    for i in range(messages):
        a, b = requests(i, rng.randrange(customers))
        t0 = time.perf_counter()
        r = dec.decide(a)
        dec.decide(b)
        lat.append((time.perf_counter() - t0) * 1000.0)
        actions[r.action.value] = actions.get(r.action.value, 0) + 1
    if dec.recorder is not None:
        dec.recorder.flush()  # the writes are part of the throughput, not of the reply latency
        dec.recorder.close()
    wall = time.perf_counter() - t_all
    cpu = time.process_time() - cpu0  # this process only (Redis's and PostgreSQL's CPU not included)
    written = store.count_decisions()
    store.close()
    return {
        "backend": name,
        "decision_log": "background" if background else "inline",
        "decisions_written": written,
        "messages": messages,
        "customers": customers,
        "p50_ms": round(statistics.median(lat), 4),
        "p99_ms": round(pct(lat, 99), 4),
        "max_ms": round(max(lat), 4),
        "mean_ms": round(statistics.fmean(lat), 4),
        "messages_per_s": round(messages / wall, 1),
        "cpu_ms_per_message": round(cpu / messages * 1000.0, 4),
        "actions": actions,
    }


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not installed")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wait_port(port, 20.0)
    return proc, port


def run_postgres(args: argparse.Namespace, redis_url: str, work: Path) -> dict[str, Any]:
    import secrets

    import psycopg

    from relayguard.containment.store_postgres import PostgresStore

    name = "rg_bench_" + secrets.token_hex(4)
    with psycopg.connect(args.postgres + " dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        shared = ResilientSharedState(RedisSharedState.from_url(redis_url, "benchpg:"))
        return run_backend("redis+postgres", shared, work, args.messages, args.customers, args.seed,
                           lambda: PostgresStore(f"{args.postgres} dbname={name}"), background=True)  # fmt: skip
    finally:
        with psycopg.connect(args.postgres + " dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--postgres", default="", metavar="DSN",
                    help="also run redis+postgres: a server DSN without dbname (a scratch database is created "
                         "and dropped), e.g. 'host=127.0.0.1 user=postgres'")  # fmt: skip
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # one line per transition would swamp the report
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rg-bench-containment-") as tmp:
        work = Path(tmp)
        for bg in (False, True):
            results.append(run_backend("embedded", MemorySharedState(), work, args.messages, args.customers, args.seed,
                                       background=bg))  # fmt: skip
        proc, port = start_redis(work)
        try:
            url = f"redis://127.0.0.1:{port}/0"
            for bg in (False, True):
                shared = ResilientSharedState(RedisSharedState.from_url(url, f"bench{bg}:"))
                results.append(run_backend("redis", shared, work, args.messages, args.customers, args.seed,
                                           background=bg))  # fmt: skip
            from relayguard.containment.state_cache import CachedSharedState

            cached = CachedSharedState(ResilientSharedState(RedisSharedState.from_url(url, "benchc:")), ttl=10.0)
            while not cached.ready():
                time.sleep(0.05)
            r = run_backend("redis+cache", cached, work, args.messages, args.customers, args.seed, background=True)
            r["cache_hits"], r["cache_misses"] = cached.hits, cached.misses
            cached.close()
            results.append(r)
            if args.postgres:
                results.append(run_postgres(args, url, work))
        finally:
            proc.terminate()
            proc.wait(10)
    load = [round(x, 2) for x in os.getloadavg()]
    results.append({"loadavg_1_5_15": load, "cpus": os.cpu_count()})
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "containment.json").write_text(json.dumps(results, indent=2))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'backend':<16} {'decision log':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'msg/s':>9} {'cpu ms':>7}")
    for r in results:
        if "p50_ms" in r:
            print(
                f"{r['backend']:<16} {r['decision_log']:<12} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
                f"{r['max_ms']:>8.3f} {r['messages_per_s']:>9.0f} {r['cpu_ms_per_message']:>7.3f}"
            )
        else:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
