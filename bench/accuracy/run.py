"""One command: relayguard's classifier vs bogofilter, SpamAssassin Bayes and Rspamd Bayes.

    .venv/bin/python -m bench.accuracy.run [CORPUS] [--limit N] [--only relayguard,bogofilter,...]

Same messages for all (verdict headers stripped alike), two protocols: a fixed split (train on one
half, test on the other) and TREC-style online (classify each message in delivery order, then learn it
with its true label). Writes bench/RESULTS.md (or --out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.accuracy.contestants import Bogofilter, Contestant, Relayguard
from bench.accuracy.corpus import Msg, load, split
from bench.accuracy.metrics import evaluate

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpus" / "spamassassin-public"


def factories() -> dict[str, Callable[[Path], Contestant]]:
    from bench.accuracy import external_contestants as ext

    return {
        "relayguard": lambda d: Relayguard(d),
        "bogofilter": Bogofilter,
        "sa-bayes": lambda d: ext.SaBayes(d),
        "rspamd-bayes": lambda d: ext.RspamdBayes(d),
    }


def run_one(make: Callable[[Path], Contestant], base: Path, protocol: str, train: list[Msg],
            test: list[Msg], everything: list[Msg]) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="c-", dir=base))
    c = make(work)
    try:
        res: dict[str, object] = {"name": c.name, "version": c.version(), "protocol": protocol,
                                  "run": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
        if protocol == "split":
            t0, w0, p0 = c.cpu(), time.monotonic(), getattr(c, "parse_cpu", None)
            c.learn(train)
            t1, w1, p1 = c.cpu(), time.monotonic(), getattr(c, "parse_cpu", None)
            scores = c.classify(test)
            t2, w2, p2 = c.cpu(), time.monotonic(), getattr(c, "parse_cpu", None)
            if p0 is not None and p1 is not None and p2 is not None:
                res["learn_no_parse_per_cpu_s"] = len(train) / max(t1 - t0 - (p1 - p0), 1e-9)
                res["classify_no_parse_per_cpu_s"] = len(test) / max(t2 - t1 - (p2 - p1), 1e-9)
            judged = test
            res["learn_per_cpu_s"] = len(train) / max(t1 - t0, 1e-9)
            res["classify_per_cpu_s"] = len(test) / max(t2 - t1, 1e-9)
            res["learn_wall_s"] = w1 - w0
            res["classify_wall_s"] = w2 - w1
        else:
            t0, w0 = c.cpu(), time.monotonic()
            scores = c.online(everything)
            total = c.cpu() - t0
            res["online_per_cpu_s"] = len(everything) / max(total, 1e-9)
            ccpu = getattr(c, "classify_cpu", None)
            if ccpu:  # contestants that account classify and learn CPU apart during the online run
                res["classify_per_cpu_s"] = len(everything) / max(ccpu, 1e-9)
                res["learn_per_cpu_s"] = len(everything) / max(total - ccpu, 1e-9)
            res["online_wall_s"] = time.monotonic() - w0
            judged = everything
        labels = [m.label for m in judged]
        s = evaluate(labels, scores)
        res.update(s.__dict__)
        res["n"] = len(judged)
        res["ham_misjudged"] = sorted(
            (m.name, round(p, 4)) for m, p in zip(judged, scores, strict=True) if not m.label and p >= 0.5
        )
        res["spam_missed"] = sum(1 for m, p in zip(judged, scores, strict=True) if m.label and p < 0.5)
        return res
    finally:
        c.close()
        shutil.rmtree(work, ignore_errors=True)


def fmt_rate(v: object) -> str:
    return f"{v:,.0f}" if isinstance(v, float) else "–"


def report(results: list[dict[str, object]], corpus: Path, n: int, n_spam: int, ntrain: int,
           ntest: int, limit: int | None) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Content classifier accuracy (bench/accuracy)",
        "",
        f"Run {now} on {platform.node() and 'a'} {platform.machine()} machine, Python "
        f"{platform.python_version()}; corpus `{corpus.name}`: {n} messages ({n_spam} spam, {n - n_spam} ham)"
        + (f", `--limit {limit}`" if limit else "")
        + f". Fixed split: {ntrain} train / {ntest} test (by a hash of the file name). Online: all {n} in "
        "delivery order (Date header), each classified then learned with its true label. Verdict headers "
        "(X-Spam-*, X-Virus-*, ...) stripped for every contestant alike. Throughput is messages per CPU "
        "second of the contestant's own processes (so per core), measured on a 2-core machine shared with "
        "other work: noisy.",
        "",
        "| protocol | contestant | version | (1-ROCA)% | spam caught @0.1% FP | @1% FP | ham ≥ 0.5 | spam < 0.5 "
        "| learn msg/s/core | classify msg/s/core | run started |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["protocol"] == "split":
            rates = f"{fmt_rate(r.get('learn_per_cpu_s'))} | {fmt_rate(r.get('classify_per_cpu_s'))}"
            if "classify_no_parse_per_cpu_s" in r:
                rates = (f"{fmt_rate(r.get('learn_per_cpu_s'))} ({fmt_rate(r.get('learn_no_parse_per_cpu_s'))} "
                         f"without parsing) | {fmt_rate(r.get('classify_per_cpu_s'))} "
                         f"({fmt_rate(r.get('classify_no_parse_per_cpu_s'))} without parsing)")
        elif "classify_per_cpu_s" in r:
            rates = f"{fmt_rate(r.get('learn_per_cpu_s'))} | {fmt_rate(r.get('classify_per_cpu_s'))}"
        else:
            rates = f"{fmt_rate(r.get('online_per_cpu_s'))} (classify+learn) | "
        lines.append(
            f"| {r['protocol']} | {r['name']} | {r['version']} | {r['one_minus_roca_pct']:.4f} | "
            f"{100 * r['caught_at_01']:.1f}% | {100 * r['caught_at_1']:.1f}% | "  # type: ignore[operator]
            f"{r['fp_at_half']} | {r['fn_at_half']} | {rates} | {r.get('run', '')} |"
        )
    lines += ["", "## Ham scored ≥ 0.5, by file", ""]
    for r in results:
        hm = r["ham_misjudged"]
        assert isinstance(hm, list)
        lines.append(f"- **{r['name']}, {r['protocol']}** ({len(hm)}): "
                     + (", ".join(f"`{name}` {p}" for name, p in hm) or "none"))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--limit", type=int, default=None, help="use a deterministic subsample of N messages")
    ap.add_argument("--only", default="relayguard,bogofilter,sa-bayes,rspamd-bayes")
    ap.add_argument("--protocols", default="split,online")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument("--json", type=Path, default=None, help="also write raw results as JSON")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--reuse", type=Path, default=None,
                    help="JSON of an earlier run on the same corpus and split: its rows for contestants not run "
                         "now are reported too (marked with the time of that run)")
    a = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="rg-accuracy-", dir=a.workdir))
    try:
        msgs = load(a.corpus, base, a.limit)
        train, test = split(msgs)
        fac = factories()
        results: list[dict[str, object]] = []
        for protocol in a.protocols.split(","):
            for name in a.only.split(","):
                t = time.monotonic()
                r = run_one(fac[name], base, protocol, train, test, msgs)
                print(f"{protocol:6} {name:12} (1-ROCA)%={r['one_minus_roca_pct']:.4f} "
                      f"ham>=0.5={r['fp_at_half']} spam<0.5={r['fn_at_half']} "
                      f"({time.monotonic() - t:.0f}s)", file=sys.stderr, flush=True)
                results.append(r)
                if a.json:  # after each contestant, so a long run that is stopped keeps what it measured
                    a.json.write_text(json.dumps(results, indent=1, default=str))
        if a.reuse:
            ran = {r["name"] for r in results}
            for r in json.loads(a.reuse.read_text()):
                if r["name"] not in ran and r["n"] in (len(train), len(test), len(msgs)):
                    r.setdefault("run", "earlier run")
                    results.append(r)
            order = {n: i for i, n in enumerate(["relayguard", "bogofilter", "sa-bayes", "rspamd-bayes"])}
            results.sort(key=lambda r: (r["protocol"] != "split", order.get(str(r["name"]), 9)))
        n_spam = sum(m.label for m in msgs)
        text = report(results, a.corpus, len(msgs), n_spam, len(train), len(test), a.limit)
        a.out.write_text(text)
        if a.json:
            a.json.write_text(json.dumps(results, indent=1, default=str))
        print(text)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
