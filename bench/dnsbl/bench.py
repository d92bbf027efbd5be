#!/usr/bin/env python3
"""relayguard's DNSBL server beside rbldnsd: same zones, same dnsperf query mix, one core each, one run.

Builds on the shared harness in ../shared/bench/dnsbl/ (data and query generators, dnsperf driver,
answer checks); nothing of it is copied here. For each server, interleaved:

  load     process start -> first answer (1,000,000-entry ip4set + 200,000-name dnset), RSS after
  check    2,000 sampled questions against the generator's ground truth
  sat      dnsperf without a rate limit: queries/s (median of --repeats)
  lat      dnsperf at --lat-qps (default 20,000/s): p99 latency and lost queries
  reload   data files touched + SIGHUP while dnsperf sends --lat-qps: queries lost, peak RSS (VmHWM)

and prints a table with every figure as a ratio to rbldnsd. Results (JSON and Markdown) go to
$BENCH_RESULTS (default bench/results). The machine is shared: say so when quoting figures.

    bench/dnsbl/run [--repeats 3] [--duration 10] [--python-path]

--python-path adds relayguard without its compiled path (RELAYGUARD_DNSBL_NATIVE=0) to the same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared", "bench", "dnsbl"))
sys.path.insert(0, SHARED)
import dns_bench as db  # noqa: E402  (the shared harness)

ZONES = ["ip.bl.test:ip4set:ip4set.zone", "dbl.bl.test:dnset:dnset.zone"]


def ensure_data(data: str) -> None:
    os.makedirs(data, exist_ok=True)
    if not all(os.path.exists(os.path.join(data, f)) for f in ("ip4set.zone", "dnset.zone")):
        subprocess.run([sys.executable, os.path.join(SHARED, "gen_zone.py"), "--out", data], check=True)
    if not os.path.exists(os.path.join(data, "queries.txt")):
        subprocess.run([sys.executable, os.path.join(SHARED, "gen_queries.py"), "--data", data], check=True)
    os.chmod(data, 0o755)  # rbldnsd reads as an unprivileged user
    for f in os.listdir(data):
        os.chmod(os.path.join(data, f), 0o644)


class Server:
    def __init__(self, name: str, cmd: list[str], port: int, data: str, cpu: str, logdir: str,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.cmd, self.port, self.data, self.cpu = name, cmd, port, data, cpu
        self.env = env
        self.log = os.path.join(logdir, f"{name}.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_start = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def target(self) -> dict[str, Any]:
        return {"name": self.name, "host": "127.0.0.1", "port": self.port, "pid": self.pid}

    def start(self, probe: tuple[str, str]) -> float:
        cmd = (["taskset", "-c", self.cpu] if self.cpu not in ("", "none") else []) + self.cmd
        with open(self.log, "a") as logf:
            self.log_start = logf.tell()  # the log is appended to across runs: this run's part starts here
            t0 = time.monotonic()
            env = {**os.environ, **self.env} if self.env else None
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=self.data, env=env,
                                         start_new_session=True)
        import rbldnsd_bench as rb  # the shared harness's readiness probe

        waited = rb.wait_answer("127.0.0.1", self.port, probe[0], probe[1], timeout=300)
        if waited is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} did not come up; see {self.log}")
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # only the process we started, by its pid
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def build_peaks(log: str, start: int) -> list[int]:
    """Peak RSS (KiB) of each reload build process the server logged (relayguard builds in a child)."""
    out = []
    with open(log, errors="replace") as f:
        f.seek(start)
        for line in f:
            m = re.search(r"child peak RSS (\d+) MiB", line)
            if m:
                out.append(int(m.group(1)) * 1024)
    return out


def loadavg() -> list[str]:
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def touch_files(data: str) -> None:
    """Move the mtimes by more than a whole second (rbldnsd compares whole seconds)."""
    paths = [os.path.join(data, z.split(":")[2]) for z in ZONES]
    last = max(int(os.stat(p).st_mtime) for p in paths)
    while time.time() < last + 1.1:
        time.sleep(0.05)
    now = time.time()
    for p in paths:
        os.utime(p, (now, now))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("BENCH_DNSBL_DATA", os.path.join(HERE, "data")))
    ap.add_argument("--results", default=os.environ.get("BENCH_RESULTS", os.path.join(REPO, "bench", "results")))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per saturation run")
    ap.add_argument("--lat-qps", type=int, default=20000)
    ap.add_argument("--lat-duration", type=int, default=10)
    ap.add_argument("--reload-duration", type=int, default=10)
    ap.add_argument("--server-cpu", default=os.environ.get("SERVER_CPU", "1"))
    ap.add_argument("--client-cpu", default=os.environ.get("CLIENT_CPU", "0"))
    ap.add_argument("--port", type=int, default=5350)
    ap.add_argument("--user", default=os.environ.get("RBLDNSD_USER", "rbldns"))
    ap.add_argument("--relayguard", default=os.path.join(REPO, ".venv", "bin", "relayguard"))
    ap.add_argument("--python-path", action="store_true",
                    help="also run relayguard without its compiled path (RELAYGUARD_DNSBL_NATIVE=0): what the C adds")
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    ensure_data(data)
    os.makedirs(os.path.join(args.results, "raw"), exist_ok=True)
    raw = os.path.join(args.results, "raw")
    rows = db.load_expected(os.path.join(data, "queries.expected.tsv"))
    probe = next((r[0], r[1]) for r in rows if r[2] == "ip_hit")
    queries = os.path.join(data, "queries.txt")

    servers = [
        Server("rbldnsd", ["rbldnsd", "-n", "-u", args.user, "-b", f"127.0.0.1/{args.port}", "-a", "-c", "0",
                           "-w", ".", *ZONES], args.port, data, args.server_cpu, raw),
        # -V: the log tells the reload build process's peak RSS (a separate process: not in VmHWM)
        Server("relayguard", [args.relayguard, "dnsbl", "serve", "--listen", f"127.0.0.1:{args.port + 1}", "-V",
                              "-a", "-c", "0", "-w", ".", *ZONES], args.port + 1, data, args.server_cpu, raw),
    ]
    if args.python_path:
        servers.append(Server("relayguard-python", [args.relayguard, "dnsbl", "serve", "--listen",
                                                    f"127.0.0.1:{args.port + 2}", "-V", "-a", "-c", "0", "-w", ".",
                                                    *ZONES], args.port + 2, data, args.server_cpu, raw,
                              env={"RELAYGUARD_DNSBL_NATIVE": "0"}))
    res: dict[str, Any] = {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "loadavg_start": loadavg(), "servers": {}}
    common = {"clients": 4, "threads": 1, "client_cpu": args.client_cpu, "raw_dir": raw}
    try:
        for s in servers:
            t = s.start(probe)
            cpu = db.proc_cpu_seconds(s.pid)  # the machine is shared: CPU time says what wall time cannot
            mem = db.proc_mem_kb(s.pid)
            bulk = db.verify_bulk(s.target(), rows, 2000)
            res["servers"][s.name] = {"load_s": round(t, 3), "load_cpu_s": cpu, "rss_after_load_kb": mem.get("VmRSS"),
                                      "check": {"mismatches": bulk["mismatches"], "checked": bulk["checked"]},
                                      "sat": [], "lat": []}
            print(f"[{s.name}] first answer after {t:.2f}s ({cpu:.2f}s CPU), RSS {mem.get('VmRSS', 0) / 1024:.1f} MiB, "
                  f"check {bulk['mismatches']} mismatches of {bulk['checked']}", flush=True)
        for s in servers:
            db.run_dnsperf(s.target(), queries, 2, label="warmup", outstanding=100, **common)
        for rep in range(args.repeats):
            for s in servers:
                r = db.run_dnsperf(s.target(), queries, args.duration, label=f"sat-{rep}", outstanding=100,
                                   **common)
                res["servers"][s.name]["sat"].append(r.get("qps"))
                # dnsperf on one core saturates near 160k q/s here, before a fast server does: the
                # server's CPU per query says what the query rate alone cannot
                res["servers"][s.name].setdefault("sat_cpu", []).append(r.get("server_cpu_pct"))
                r2 = db.run_dnsperf(s.target(), queries, args.lat_duration, qps=args.lat_qps, verbose=True,
                                    label=f"lat-{rep}", outstanding=10000, **common)
                res["servers"][s.name]["lat"].append({k: r2.get(k) for k in ("qps", "p99", "lost", "sent",
                                                                              "server_cpu_pct")})
                print(f"  rep {rep + 1} {s.name:10s} sat {db.fmt_n(r.get('qps'))} q/s; at {args.lat_qps} q/s: "
                      f"p99 {db.fmt_ms(r2.get('p99'))} ms, lost {db.fmt_n(r2.get('lost'))}", flush=True)
        for s in servers:
            def during(t0: float, s: Server = s) -> dict[str, float]:
                time.sleep(max(0.0, 2.0 - (time.monotonic() - t0)))
                touch_files(data)
                assert s.pid is not None
                os.kill(s.pid, signal.SIGHUP)
                return {"hup_at_s": round(time.monotonic() - t0, 2)}

            r = db.run_dnsperf(s.target(), queries, args.reload_duration, qps=args.lat_qps, verbose=True,
                               label="reload", outstanding=10000, during=during, **common)
            mem = db.proc_mem_kb(s.pid)
            res["servers"][s.name]["reload"] = {k: r.get(k) for k in ("qps", "p99", "max_lat", "lost", "sent")}
            res["servers"][s.name]["peak_rss_kb"] = mem.get("VmHWM")
            builds = build_peaks(s.log, s.log_start)
            if builds:
                res["servers"][s.name]["build_peak_rss_kb"] = max(builds)
            print(f"[{s.name}] reload under {args.lat_qps} q/s: lost {db.fmt_n(r.get('lost'))} of "
                  f"{db.fmt_n(r.get('sent'))}, max latency {db.fmt_ms(r.get('max_lat'))} ms, "
                  f"peak RSS {mem.get('VmHWM', 0) / 1024:.1f} MiB", flush=True)
    finally:
        for s in servers:
            s.stop()
    res["loadavg_end"] = loadavg()
    md = render(res, args.lat_qps)
    stamp = res["date"].replace("-", "").replace(":", "")
    with open(os.path.join(args.results, f"dnsbl-{stamp}.json"), "w") as f:
        json.dump(db.scrub(res), f, indent=1)
    with open(os.path.join(args.results, f"dnsbl-{stamp}.md"), "w") as f:
        f.write(md)
    print()
    print(md)
    return 0


def render(res: dict[str, Any], lat_qps: int) -> str:
    def med(xs: list[float | None]) -> float | None:
        v = [x for x in xs if x is not None]
        return statistics.median(v) if v else None

    rows: dict[str, dict[str, float | None]] = {}
    for name, s in res["servers"].items():
        rows[name] = {
            "qps": med(s["sat"]),
            "sat_cpu": med(s.get("sat_cpu", [])),
            "per_core": med([q / (c / 100) for q, c in zip(s["sat"], s.get("sat_cpu", []), strict=False)
                             if q and c]),
            "lat_cpu": med([x.get("server_cpu_pct") for x in s["lat"]]),
            "p99_ms": None if med([x["p99"] for x in s["lat"]]) is None else med([x["p99"] for x in s["lat"]]) * 1000,
            "lat_lost": med([x["lost"] for x in s["lat"]]),
            "load_s": s["load_s"],
            "load_cpu_s": s.get("load_cpu_s"),
            "rss_mib": (s["rss_after_load_kb"] or 0) / 1024,
            "peak_mib": (s.get("peak_rss_kb") or 0) / 1024,
            "build_peak_mib": (s["build_peak_rss_kb"] / 1024) if s.get("build_peak_rss_kb") else None,
            "reload_lost": s.get("reload", {}).get("lost"),
        }
    base = rows.get("rbldnsd", {})
    others = [n for n in rows if n != "rbldnsd"]  # relayguard, and relayguard-python with --python-path
    lines = [f"# DNSBL bench {res['date']} (load average {' '.join(res['loadavg_start'])} at start, "
             f"{' '.join(res['loadavg_end'])} at end: a shared machine)", "",
             "| figure | rbldnsd | " + " | ".join(f"{n} | ratio" for n in others) + " | target |",
             "|---|---:|" + "---:|---:|" * len(others) + "---|"]
    targets = {"qps": ">= 0.25", "sat_cpu": "-", "per_core": "-", "lat_cpu": "-", "p99_ms": "< 1 ms",
               "lat_lost": "-", "load_s": "< 3 s", "load_cpu_s": "< 3 s",
               "rss_mib": "-",
               "peak_mib": "<= 2.0", "build_peak_mib": "-", "reload_lost": "0"}
    labels = {"qps": "queries/s, no rate limit (median)",
              "sat_cpu": "server CPU at that rate, % of a core",
              "per_core": "queries per server CPU-second (the server's own capacity)",
              "lat_cpu": f"server CPU at {lat_qps} q/s, % of a core", "p99_ms": f"p99 latency at {lat_qps} q/s, ms",
              "lat_lost": f"lost at {lat_qps} q/s", "load_s": "start to first answer, s",
              "load_cpu_s": "CPU time at first answer, s",
              "rss_mib": "RSS after load, MiB", "peak_mib": "peak RSS (VmHWM, after a reload), MiB",
              "build_peak_mib": "reload build process's peak RSS (a child; most pages shared), MiB",
              "reload_lost": f"queries lost during a reload at {lat_qps} q/s"}

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:,.3f}" if isinstance(v, float) and v < 100 else f"{v:,.0f}"

    for k, label in labels.items():
        a = base.get(k)
        cells = []
        for n in others:
            b = rows[n].get(k)
            cells.append(f"{fmt(b)} | {'-' if not a or b is None else f'{b / a:.2f}x'}")
        lines.append(f"| {label} | {fmt(a)} | " + " | ".join(cells) + f" | {targets[k]} |")
    lines.append("")
    for name, s in res["servers"].items():
        c = s["check"]
        lines.append(f"- {name}: {c['mismatches']} mismatches in {c['checked']} checked answers")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
