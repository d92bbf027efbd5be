"""bench/scan: messages per second per core and peak memory, relayguard next to SpamAssassin and Rspamd.

Every contestant gets the same messages (a seeded sample of the corpus, mbox lines removed), runs pinned
to one core, and is measured by the CPU time its processes spent (so the figure is per core whatever the
client side does) and by its peak resident memory. Ratios are relayguard's throughput over the anchor's,
from the same run.

    bench/scan/run [--corpus DIR] [--limit N] [--skip-spamassassin] [--skip-rspamd] [--profile]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.lib import corpus as corpus_lib  # noqa: E402
from bench.lib.peers import Rspamd, Spamd  # noqa: E402

RESULTS = REPO / "bench" / "results"
SERVER_CORE = 1 if (os.cpu_count() or 1) > 1 else 0


def pinned(argv: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv


def relayguard_rusage(paths_dir: Path, n: int, config: str | None) -> dict[str, float]:
    """Run the scan as a child and read its own CPU time and peak RSS from wait4."""
    exe = REPO / ".venv" / "bin" / "relayguard"
    argv = [str(exe), "scan", "--json", "--no-progress", *(["--config", config] if config else []), str(paths_dir)]
    t0 = time.perf_counter()
    # A private data directory: the classifier seeds itself from the shipped starter model, as on a
    # fresh install, whatever an earlier version left under the operator's own data directory.
    env = {**os.environ, "XDG_DATA_HOME": str(paths_dir.parent / "data")}
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as errf:
        p = subprocess.Popen(pinned(argv, SERVER_CORE), stdout=devnull, stderr=errf, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            errf.seek(0)
            raise RuntimeError(f"relayguard scan failed: {errf.read().decode()[-2000:]}")
    cpu = ru.ru_utime + ru.ru_stime
    return {"messages": n, "cpu_s": cpu, "wall_s": wall, "per_core": n / cpu, "peak_mib": ru.ru_maxrss / 1024}


def run_clients(argvs: list[list[str]], files: list[Path], parallel: int) -> int:
    """Feed every file to the client command on stdin, `parallel` at a time; return failures."""

    def one(args: tuple[list[str], Path]) -> int:
        argv, f = args
        with f.open("rb") as fh:
            r = subprocess.run(argv, stdin=fh, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        return 0 if r.returncode in (0, 1) else 1  # spamc -c exits 1 for spam

    with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
        return sum(ex.map(one, zip(argvs, files, strict=True)))


def run_spamassassin(files: list[Path], work: Path, parallel: int) -> dict[str, float]:
    srv = Spamd(work / "spamd", SERVER_CORE)
    srv.start()
    try:
        run_clients([srv.client(f) for f in files[:3]], files[:3], 1)  # warm the children up
        c0, t0 = srv.cpu(), time.perf_counter()
        failed = run_clients([srv.client(f) for f in files], files, parallel)
        cpu, wall = srv.cpu() - c0, time.perf_counter() - t0
        peak = srv.peak_rss()
    finally:
        srv.stop()
    n = len(files) - failed
    return {"messages": n, "failed": failed, "cpu_s": cpu, "wall_s": wall, "per_core": n / cpu, "peak_mib": peak}


def run_rspamd(files: list[Path], work: Path, parallel: int) -> dict[str, float]:
    # Rspamd compiles its regexps with Hyperscan on first start (minutes); keep that cache between runs.
    cache = RESULTS / "cache" / "rspamd-db"
    srv = Rspamd(work / "rspamd", SERVER_CORE)
    (srv.dir / "db").parent.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    os.symlink(cache, srv.dir / "db")
    srv.start()
    try:
        host = f"127.0.0.1:{srv.port}"
        subprocess.run(["rspamc", "-h", host, *map(str, files[:3])], stdout=subprocess.DEVNULL, check=False)
        c0, t0 = srv.cpu(), time.perf_counter()
        r = subprocess.run(
            pinned(["rspamc", "-h", host, "-n", str(parallel), "-j", *map(str, files)], 0),
            capture_output=True,
            timeout=3600,
        )
        cpu, wall = srv.cpu() - c0, time.perf_counter() - t0
        peak = srv.peak_rss()
    finally:
        srv.stop()
    ok = r.stdout.count(b'"action"')
    return {
        "messages": ok,
        "failed": len(files) - ok,
        "cpu_s": cpu,
        "wall_s": wall,
        "per_core": ok / cpu,
        "peak_mib": peak,
    }


def profile_relayguard(files: list[Path], top: int = 25) -> str:
    import asyncio

    from relayguard.app.build import build_pipeline
    from relayguard.config import load_config
    from relayguard.message.parse import parse_message

    os.environ["XDG_DATA_HOME"] = str(files[0].parent.parent / "data")  # as the measured scan above
    settings = load_config()
    pipeline = build_pipeline(settings)
    data = [f.read_bytes() for f in files]

    async def go() -> None:
        for raw in data:
            await pipeline.check(parse_message(raw, settings))

    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(go())
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=corpus_lib.default_corpus(), help="folders of messages per label")
    ap.add_argument("--limit", type=int, default=1000, help="messages in the sample (0 = all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=4, help="concurrent clients for the servers")
    ap.add_argument("--config", help="relayguard configuration file for the scan")
    ap.add_argument("--skip-spamassassin", action="store_true")
    ap.add_argument("--skip-rspamd", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also print where relayguard's time goes (cProfile)")
    args = ap.parse_args()

    files = corpus_lib.sample(args.corpus, args.limit, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # spamd children run as nobody and must read their config here
        paths = corpus_lib.materialise(files, work / "messages")
        print(f"{len(paths)} messages from {args.corpus}; servers pinned to core {SERVER_CORE}", flush=True)
        results: dict[str, dict[str, float]] = {}
        results["relayguard"] = relayguard_rusage(work / "messages", len(paths), args.config)
        print(f"relayguard done: {results['relayguard']['per_core']:.0f} msg/s per core", flush=True)
        if not args.skip_spamassassin:
            results["SpamAssassin"] = run_spamassassin(paths, work, args.parallel)
            print(f"SpamAssassin done: {results['SpamAssassin']['per_core']:.1f} msg/s per core", flush=True)
        if not args.skip_rspamd:
            results["Rspamd"] = run_rspamd(paths, work, args.parallel)
            print(f"Rspamd done: {results['Rspamd']['per_core']:.0f} msg/s per core", flush=True)
        profile = profile_relayguard(paths) if args.profile else ""

    ours = results["relayguard"]["per_core"]
    lines = [
        "| contestant | messages | msg/s per core | wall msg/s | peak MiB | relayguard / contestant |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['messages']:.0f} | {r['per_core']:.1f} | {r['messages'] / r['wall_s']:.1f} "
            f"| {r['peak_mib']:.0f} | {ours / r['per_core']:.2f}x |"
        )
    table = "\n".join(lines)
    print()
    print(table)
    if profile:
        print("\nWhere relayguard's time goes (cProfile, sorted by own time):\n" + profile)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"scan-{stamp}.json"
    out.write_text(json.dumps({"date": stamp, "corpus": str(args.corpus), "results": results}, indent=2))
    print(f"\nresults: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
