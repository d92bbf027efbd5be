"""bench/scan with DNS lists: relayguard and SpamAssassin asking the same six lists of a local rbldnsd.

Six lists, as a receiver would run them: Spamhaus-zen-style (SBL/CSS/DROP on untrusted hops, XBL/PBL
on the last external one), SpamCop-style and PSBL-style (untrusted hops), Mailspike-style (last
external), DBL-style (registrable domains, 127.0.1.x) and URIBL-multi-style (bitmask). The zones are
written for the sampled messages: a seeded share of the addresses and domains the messages carry is
listed, so both scanners see real listings as well as NXDOMAIN answers. rbldnsd logs every query it
receives, so queries per message are counted on the server side, for both scanners alike.

Both scanners run their full rule sets (relayguard: build_pipeline plus the inbound checks;
SpamAssassin: its stock rules without Bayes, Razor, Pyzor, DCC, SPF, DKIM, DMARC) pinned to one core,
measured by the CPU time of their processes. SpamAssassin's own stock DNS rules are switched off
with `dns_query_restriction deny` for every zone they name, so it asks only our six lists.

    bench/scan/with_dnsbl.py [--corpus DIR] [--limit N] [--parallel N] [--skip-spamassassin]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.lib import corpus as corpus_lib  # noqa: E402
from bench.lib.peers import Spamd  # noqa: E402

RESULTS = REPO / "bench" / "results"
SERVER_CORE = 1 if (os.cpu_count() or 1) > 1 else 0
RBLDNSD = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
SOA = "$SOA 300 ns.bench.test. hostmaster.bench.test. 1 600 300 86400 300"
SA_RULES = Path("/usr/share/spamassassin")

ZEN, BL, PSBL, MS, DBL, MULTI = (
    "zen.bench.test",
    "bl.bench.test",
    "psbl.bench.test",
    "ms.bench.test",
    "dbl.bench.test",
    "multi.bench.test",
)

RELAYGUARD_CONFIG = """
[storage]
data_dir = "{data_dir}"
[dns]
nameservers = ["127.0.0.1:{port}"]
timeout = 2.0
[inbound]
use = ["spamhaus_zen", "spamcop", "psbl", "mailspike_bl", "spamhaus_dbl", "uribl_multi"]
[inbound.override.spamhaus_zen]
zone = "{zen}"
[inbound.override.spamcop]
zone = "{bl}"
[inbound.override.psbl]
zone = "{psbl}"
[inbound.override.mailspike_bl]
zone = "{ms}"
[inbound.override.spamhaus_dbl]
zone = "{dbl}"
monitor_listed = "test"
[inbound.override.uribl_multi]
zone = "{multi}"
monitor_listed = "test"
"""

SA_LISTS_CF = """
# The six bench lists, as SpamAssassin's own 20_dnsbl_tests.cf / 25_uribl.cf would declare them.
header   __RG_ZEN       eval:check_rbl('rgzen', '{zen}.')
tflags   __RG_ZEN       net
header   RG_SBL         eval:check_rbl_sub('rgzen', '127.0.0.2')
header   RG_CSS         eval:check_rbl_sub('rgzen', '127.0.0.3')
header   RG_DROP        eval:check_rbl_sub('rgzen', '127.0.0.9')
header   RG_XBL         eval:check_rbl('rgzen-lastexternal', '{zen}.', '^127\\.0\\.0\\.[4567]$')
header   RG_PBL         eval:check_rbl('rgzen-lastexternal', '{zen}.', '^127\\.0\\.0\\.1[01]$')
header   RG_BL          eval:check_rbl('rgbl', '{bl}.', '127.0.0.2')
header   RG_PSBL        eval:check_rbl('rgpsbl', '{psbl}.', '127.0.0.2')
header   RG_MS          eval:check_rbl('rgms-lastexternal', '{ms}.', '127.0.0.2')
urirhssub RG_DBL        {dbl}. A 127.0.1.2
body     RG_DBL         eval:check_uridnsbl('RG_DBL')
urirhssub RG_URIBL_BLACK {multi}. A 2
body     RG_URIBL_BLACK eval:check_uridnsbl('RG_URIBL_BLACK')
urirhssub RG_URIBL_GREY {multi}. A 4
body     RG_URIBL_GREY  eval:check_uridnsbl('RG_URIBL_GREY')
"""
SA_RULE_NAMES = (
    "RG_SBL",
    "RG_CSS",
    "RG_DROP",
    "RG_XBL",
    "RG_PBL",
    "RG_BL",
    "RG_PSBL",
    "RG_MS",
    "RG_DBL",
    "RG_URIBL_BLACK",
    "RG_URIBL_GREY",
)
SA_NO_PLUGINS = ("SPF", "DKIM", "DMARC", "AskDNS", "HashBL", "Pyzor", "Razor2")


# -- test zones ------------------------------------------------------------------------------------------


def _pick(key: str, mod: int, rest: int = 0) -> bool:
    return zlib.crc32(key.encode()) % mod == rest


def build_zones(paths: list[Path], zonedir: Path) -> dict[str, int]:
    """List a seeded share of the sample's addresses and domains; return how many entries per zone."""
    from relayguard.config import load_config
    from relayguard.message.parse import parse_message

    settings = load_config()
    ips: set[str] = set()
    domains: set[str] = set()
    for p in paths:
        facts = parse_message(p.read_bytes(), settings)
        ips.update(r.ip for r in facts.chain.relays if r.ip)
        domains.update(u.domain for u in facts.urls if u.domain)
    sbl = sorted(i for i in ips if _pick(i, 11))
    xbl = sorted(i for i in ips if _pick(i, 5, 1))
    pbl = sorted(i for i in ips if _pick(i, 7, 2))
    bl = sorted(i for i in ips if _pick(i, 4, 3))
    psbl = sorted(i for i in ips if _pick(i, 3, 1))
    ms = sorted(i for i in ips if _pick(i, 6, 4))
    dbl = sorted(d for d in domains if _pick(d, 6))
    black = sorted(d for d in domains if _pick(d, 8, 3))
    grey = sorted(d for d in domains if _pick(d, 9, 5))
    zones = {
        "zen-sbl": f"{SOA}\n:127.0.0.2:SBL\n127.0.0.2\n" + "\n".join(sbl),
        "zen-xbl": f"{SOA}\n:127.0.0.4:XBL\n" + "\n".join(xbl),
        "zen-pbl": f"{SOA}\n:127.0.0.10:PBL\n" + "\n".join(pbl),
        "bl": f"{SOA}\n:127.0.0.2:listed\n127.0.0.2\n" + "\n".join(bl),
        "psbl": f"{SOA}\n:127.0.0.2:listed\n127.0.0.2\n" + "\n".join(psbl),
        "ms": f"{SOA}\n:127.0.0.2:listed\n127.0.0.2\n" + "\n".join(ms),
        "dbl": f"{SOA}\ntest :127.0.1.2:\n" + "\n".join(f"{d} :127.0.1.2:" for d in dbl),
        "multi": f"{SOA}\ntest :127.0.0.14:\n"
        + "\n".join(f"{d} :127.0.0.2:" for d in black)
        + "\n"
        + "\n".join(f"{d} :127.0.0.4:" for d in grey if d not in black),
    }
    for name, text in zones.items():
        (zonedir / f"{name}.zone").write_text(text + "\n")
        (zonedir / f"{name}.zone").chmod(0o644)
    return {
        "ips": len(ips),
        "domains": len(domains),
        "sbl": len(sbl),
        "xbl": len(xbl),
        "pbl": len(pbl),
        "bl": len(bl),
        "psbl": len(psbl),
        "ms": len(ms),
        "dbl": len(dbl),
        "uribl": len(black) + len(grey),
    }


class Rbldnsd:
    def __init__(self, zonedir: Path) -> None:
        self.dir = zonedir
        self.port = _free_udp_port()
        self.log = zonedir / "queries.log"
        user = "rbldns" if _user_exists("rbldns") else "nobody"
        specs = [
            f"{ZEN}:ip4set:zen-sbl.zone",
            f"{ZEN}:ip4set:zen-xbl.zone",
            f"{ZEN}:ip4set:zen-pbl.zone",
            f"{BL}:ip4set:bl.zone",
            f"{PSBL}:ip4set:psbl.zone",
            f"{MS}:ip4set:ms.zone",
            f"{DBL}:dnset:dbl.zone",
            f"{MULTI}:dnset:multi.zone",
        ]
        # rbldnsd gets core 0: it serves both scanners, which run on SERVER_CORE, and its CPU is not theirs.
        core = 0
        argv = [
            RBLDNSD,
            "-n",
            "-q",
            "-u",
            user,
            "-b",
            f"127.0.0.1/{self.port}",
            "-w",
            str(zonedir),
            "-c",
            "0",
            "-l",
            "+queries.log",
            *specs,
        ]
        self.argv = ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        import socket

        import dns.message

        q = dns.message.make_query("2.0.0.127." + ZEN, "A").to_wire()
        deadline = time.monotonic() + 30
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.1)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"rbldnsd exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                    )
                s.sendto(q, ("127.0.0.1", self.port))
                try:
                    s.recvfrom(4096)
                    return
                except OSError:
                    continue
        raise RuntimeError("rbldnsd did not answer")

    def queries(self) -> int:
        try:
            with self.log.open("rb") as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# -- relayguard ------------------------------------------------------------------------------------------


def relayguard_child(config: str, msgdir: str, parallel: int, out: str) -> None:
    """Runs in the measured child process: full pipeline plus the inbound checks, `parallel` in flight."""
    from relayguard.app.build import default_checks
    from relayguard.config import load_config
    from relayguard.inbound import inbound_checks
    from relayguard.inbound.dnsbl_check import ListCheck
    from relayguard.inbound.resolver import Resolver
    from relayguard.message.parse import parse_message
    from relayguard.pipeline import Pipeline

    settings = load_config(config)
    resolver = Resolver(settings.dns)
    checks = default_checks(settings)
    if not any(isinstance(c, ListCheck) for c in checks):  # until build_pipeline wires them itself
        checks += inbound_checks(settings, resolver)
    pipeline = Pipeline(settings, checks)
    ours = {d.name for c in pipeline.checks if isinstance(c, ListCheck) for d in c.declared()}
    files = sorted(Path(msgdir).iterdir())
    hits: dict[str, int] = {}

    async def go() -> None:
        sem = asyncio.Semaphore(parallel)

        async def one(p: Path) -> None:
            async with sem:
                v = await pipeline.check(parse_message(p.read_bytes(), settings))
            for name in v.symbols:
                if name in ours:
                    hits[name] = hits.get(name, 0) + 1

        await asyncio.gather(*(one(p) for p in files))

    asyncio.run(go())
    Path(out).write_text(json.dumps({"messages": len(files), "resolver": resolver.stats.snapshot(), "hits": hits}))


def run_relayguard(config: Path, msgdir: Path, parallel: int, work: Path) -> dict[str, object]:
    out = work / "rg-out.json"
    argv = [sys.executable, __file__, "--child", str(config), str(msgdir), str(parallel), str(out)]
    if shutil.which("taskset"):
        argv = ["taskset", "-c", str(SERVER_CORE), *argv]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as errf:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errf)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            errf.seek(0)
            raise RuntimeError(f"relayguard child failed: {errf.read().decode()[-3000:]}")
    data = json.loads(out.read_text())
    cpu = ru.ru_utime + ru.ru_stime
    n = data["messages"]
    return {
        "messages": n,
        "cpu_s": cpu,
        "wall_s": wall,
        "per_core": n / cpu,
        "peak_mib": ru.ru_maxrss / 1024,
        "resolver": data["resolver"],
        "hits": data["hits"],
    }


# -- SpamAssassin ----------------------------------------------------------------------------------------


def stock_dns_zones() -> list[str]:
    """Parent domains of every DNS zone SpamAssassin's stock rules would query (to deny them)."""
    zones: set[str] = set()
    rx_rbl = re.compile(r"check_rbl\w*\(\s*'[^']*'\s*,\s*'([^']+)'")
    rx_uri = re.compile(
        r"^\s*(?:urirhssub|urirhsbl|uridnsbl|uridnssub|urinsrhsbl|urinsrhssub|urifullnsrhsbl|"
        r"urifullnsrhssub|askdns|hashbl\w*)\s+\S+\s+(\S+)",
        re.M,
    )
    rx_zone = re.compile(r"\b([a-z0-9-]+\.(?:[a-z0-9-]+\.)*[a-z]{2,})\.?\b", re.I)
    for f in SA_RULES.glob("*.cf"):
        text = f.read_text(errors="replace")
        for m in rx_rbl.finditer(text):
            zones.add(m.group(1))
        for m in rx_uri.finditer(text):
            zones.add(m.group(1))
        for line in text.splitlines():
            if line.lstrip().startswith(("header", "askdns", "hashbl")) and ("check_rbl" in line or "askdns" in line):
                zones.update(z for z in rx_zone.findall(line) if not z.startswith("127."))
    parents = set()
    for z in zones:
        labels = z.strip(".").lower().split(".")
        if len(labels) >= 2 and all(re.match(r"^[a-z0-9_-]+$", x) for x in labels) and not labels[-1].isdigit():
            parents.add(".".join(labels[-2:]))
    return sorted(p for p in parents if not p.endswith("bench.test"))


class SpamdWithDns(Spamd):
    """spamd with network tests on (no -L), resolving through the bench rbldnsd only."""

    def __init__(self, workdir: Path, core: int | None, dns_port: int, children: int) -> None:
        super().__init__(workdir, core, children=children)
        self.dns_port = dns_port

    local_only = False  # network tests on, resolving only through the bench's rbldnsd

    def write_site(self, site: Path) -> None:
        plugins = "|".join(SA_NO_PLUGINS)
        drop = re.compile(rf"^\s*loadplugin\s+Mail::SpamAssassin::Plugin::({plugins})\b", re.M)
        for f in Path("/etc/spamassassin").glob("*"):
            if f.is_file():
                (site / f.name).write_text(drop.sub(r"# (bench) \g<0>", f.read_text(errors="replace")))
        deny = stock_dns_zones()
        lists = SA_LISTS_CF.format(zen=ZEN, bl=BL, psbl=PSBL, ms=MS, dbl=DBL, multi=MULTI)
        scores = "".join(f"score {r} 1.0\ntflags {r} net\n" for r in SA_RULE_NAMES)
        (site / "zz_bench.cf").write_text(
            "use_bayes 0\nuse_razor2 0\nuse_pyzor 0\nuse_dcc 0\nskip_rbl_checks 0\n"
            f"dns_available yes\ndns_server 127.0.0.1:{self.dns_port}\nrbl_timeout 5\n"
            + "".join(f"dns_query_restriction deny {d}\n" for d in deny)
            + "dns_query_restriction allow bench.test\n"
            + lists
            + scores
        )

    def symbols(self, path: Path) -> list[str]:
        with path.open("rb") as fh:
            r = subprocess.run(["spamc", "-p", str(self.port), "-y"], stdin=fh, capture_output=True, timeout=300)
        return r.stdout.decode().strip().split(",")


def run_spamassassin(paths: list[Path], work: Path, dns_port: int, parallel: int) -> dict[str, object]:
    import concurrent.futures

    srv = SpamdWithDns(work / "spamd", SERVER_CORE, dns_port, children=2)
    srv.start()
    hits: dict[str, int] = {}
    try:
        for p in paths[:3]:
            srv.symbols(p)  # warm the children up
        c0, t0 = srv.cpu(), time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
            results = list(ex.map(srv.symbols, paths))
        cpu, wall = srv.cpu() - c0, time.perf_counter() - t0
        peak = srv.peak_rss()
    finally:
        srv.stop()
    for syms in results:
        for s in syms:
            if s.startswith("RG_"):
                hits[s] = hits.get(s, 0) + 1
    n = len(paths)
    return {"messages": n, "cpu_s": cpu, "wall_s": wall, "per_core": n / cpu, "peak_mib": peak, "hits": hits}


# -- main ------------------------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        relayguard_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=corpus_lib.default_corpus())
    ap.add_argument("--limit", type=int, default=400, help="messages in the sample (0 = all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=8, help="messages in flight (relayguard) / clients (spamc)")
    ap.add_argument("--skip-spamassassin", action="store_true")
    args = ap.parse_args()

    files = corpus_lib.sample(args.corpus, args.limit, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dnsbl-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        paths = corpus_lib.materialise(files, work / "messages")
        zonedir = work / "zones"
        zonedir.mkdir()
        zonedir.chmod(0o777)  # rbldnsd runs as nobody and writes its query log here
        listed = build_zones(paths, zonedir)
        dns = Rbldnsd(zonedir)
        dns.start()
        try:
            cfg = work / "relayguard.toml"
            (work / "data").mkdir()
            cfg.write_text(
                RELAYGUARD_CONFIG.format(
                    data_dir=work / "data", port=dns.port, zen=ZEN, bl=BL, psbl=PSBL, ms=MS, dbl=DBL, multi=MULTI
                )
            )
            print(f"{len(paths)} messages from {args.corpus}; zones: {listed}", flush=True)
            q0 = dns.queries()
            results["relayguard"] = run_relayguard(cfg, work / "messages", args.parallel, work)
            time.sleep(0.5)  # let the unbuffered log settle
            results["relayguard"]["dns_queries"] = dns.queries() - q0
            print(f"relayguard done: {results['relayguard']['per_core']:.1f} msg/s per core", flush=True)
            if not args.skip_spamassassin:
                q0 = dns.queries()
                results["SpamAssassin"] = run_spamassassin(paths, work, dns.port, args.parallel)
                time.sleep(0.5)
                results["SpamAssassin"]["dns_queries"] = dns.queries() - q0
                print(f"SpamAssassin done: {results['SpamAssassin']['per_core']:.1f} msg/s per core", flush=True)
        finally:
            dns.stop()

    ours = float(results["relayguard"]["per_core"])  # type: ignore[arg-type]
    lines = [
        "| contestant | messages | msg/s per core | wall msg/s | DNS queries/msg | peak MiB "
        "| relayguard / contestant |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        n = float(r["messages"])  # type: ignore[arg-type]
        lines.append(
            f"| {name} | {n:.0f} | {float(r['per_core']):.1f} | {n / float(r['wall_s']):.1f} "  # type: ignore[arg-type]
            f"| {float(r['dns_queries']) / n:.2f} | {float(r['peak_mib']):.0f} "  # type: ignore[arg-type]
            f"| {ours / float(r['per_core']):.2f}x |"  # type: ignore[arg-type]
        )
    print("\n" + "\n".join(lines))
    rg = results["relayguard"]
    print(f"\nrelayguard resolver: {rg['resolver']}")
    for name, r in results.items():
        print(f"{name} list hits: {json.dumps(r['hits'], sort_keys=True)}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"scan-dnsbl-{stamp}.json"
    out.write_text(
        json.dumps({"date": stamp, "corpus": str(args.corpus), "zones": listed, "results": results}, indent=2)
    )
    print(f"\nresults: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
