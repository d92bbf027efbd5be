"""Assemble bench/RESULTS.md from several runs' JSON (same corpus, same split), when one long run could
not hold every contestant: later files win for the same (protocol, contestant); every row says when its
run started.

    .venv/bin/python -m bench.accuracy.merge OUT.md A.json [B.json ...] [--label FILE=NAME] [--append NOTES.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.accuracy.run import DEFAULT_CORPUS, report


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("inputs", nargs="+", type=Path)
    ap.add_argument("--run-label", action="append", default=[], help="FILE=TEXT: 'run started' for rows of FILE")
    ap.add_argument("--rename", action="append", default=[], help="FILE:NAME=NEWNAME")
    ap.add_argument("--append", type=Path, action="append", default=[])
    ap.add_argument("--n", type=int, default=6046)
    ap.add_argument("--n-spam", type=int, default=1896)
    ap.add_argument("--train", type=int, default=3007)
    ap.add_argument("--test", type=int, default=3039)
    a = ap.parse_args()
    labels = dict(x.split("=", 1) for x in a.run_label)
    renames: dict[tuple[str, str], str] = {}
    for x in a.rename:
        f, rest = x.split(":", 1)
        old, new = rest.split("=", 1)
        renames[(f, old)] = new
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for f in a.inputs:
        for r in json.loads(f.read_text()):
            r["name"] = renames.get((str(f), str(r["name"])), r["name"])
            if str(f) in labels:
                r["run"] = labels[str(f)]
            rows[(str(r["protocol"]), str(r["name"]))] = r
    order = ["relayguard", "bogofilter", "sa-bayes", "rspamd-bayes"]
    results = sorted(rows.values(), key=lambda r: (r["protocol"] != "split",
                                                   order.index(str(r["name"])) if r["name"] in order else 9))
    text = report(results, DEFAULT_CORPUS, a.n, a.n_spam, a.train, a.test, None)
    text = text.replace("\nRun ", "\nReport assembled from the runs in the last column; generated ", 1)
    for extra in a.append:
        text += extra.read_text()
    a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
