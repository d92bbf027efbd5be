"""Shared by the Received tests: the fixture blocks, the trust configurations, running SpamAssassin.

Run as a script to regenerate tests/fixtures/received/sa_expected.jsonl from real SpamAssassin:
    .venv/bin/python tests/received/sa_fixtures.py
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayguard.message.trust import TrustConfig

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "received"
DUMP = REPO / "scripts" / "sa_received_dump.pl"
EXPECTED = FIXTURES / "sa_expected.jsonl"
PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


@dataclass(frozen=True)
class TrustCase:
    name: str
    trusted: tuple[str, ...] = ()
    internal: tuple[str, ...] = ()
    msa: tuple[str, ...] = ()

    def perl_arg(self) -> str:
        return "|".join([self.name, " ".join(self.trusted), " ".join(self.internal), " ".join(self.msa)])

    def config(self) -> TrustConfig:
        return TrustConfig.from_lists(list(self.trusted), list(self.internal), list(self.msa))


# The corpus's list servers and the recipients' MX (see scripts/sa_received_oracle.py), plus the
# documentation networks the modern fixtures use: 203.0.113.0/24 is "our" network, 192.0.2.0/24 the ISP.
CASES = (
    TrustCase("inferred"),
    TrustCase(
        "trusted",
        (
            *PRIVATE,
            "64.161.22.236",
            "194.125.145.45",
            "!66.187.233.211",
            "66.187.233.0/24",
            "203.0.113.0/24",
            "!192.0.2.66",
            "192.0.2.0/24",
        ),
    ),
    TrustCase(
        "internal+trusted",
        (*PRIVATE, "64.161.22.236", "194.125.145.45", "66.187.233.0/24", "203.0.113.0/24", "192.0.2.0/24"),
        (*PRIVATE, "194.125.145.45", "203.0.113.0/24"),
    ),
    TrustCase("msa", (*PRIVATE, "194.125.145.45", "64.161.22.236", "192.0.2.25"), (), ("194.125.145.45", "192.0.2.25")),
)

_BLOCK = re.compile(r"^#@ (\S+)\n", re.MULTILINE)


def load_blocks() -> dict[str, str]:
    """Fixture name -> the raw Received header lines (folded, with the `Received:` names)."""
    out: dict[str, str] = {}
    for fname in ("corpus_chains.txt", "modern_chains.txt"):
        text = (FIXTURES / fname).read_text(encoding="utf-8")
        parts = _BLOCK.split(text)
        for i in range(1, len(parts), 2):
            out[parts[i]] = parts[i + 1]
    return out


def message_text(block: str) -> str:
    return block + "From: fixture@example.org\nSubject: received fixture\n\nbody\n"


def header_values(block: str) -> list[str]:
    """The unfolded Received values of a block, newest first (what build_chain takes)."""
    values: list[str] = []
    for line in block.splitlines():
        if line[:1] in (" ", "\t") and values:
            values[-1] += " " + line.strip()
        elif line.lower().startswith("received:"):
            values.append(line[9:].strip())
    return values


def have_spamassassin() -> bool:
    if shutil.which("perl") is None:
        return False
    r = subprocess.run(["perl", "-MMail::SpamAssassin", "-e", "1"], capture_output=True)
    return r.returncode == 0


def run_spamassassin(blocks: dict[str, str]) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        paths: dict[str, str] = {}
        for i, (name, block) in enumerate(blocks.items()):
            p = Path(tmp) / f"{i:04d}.eml"
            p.write_text(message_text(block), encoding="utf-8")
            paths[str(p)] = name
        proc = subprocess.run(
            ["perl", str(DUMP), *(c.perl_arg() for c in CASES)],
            input="".join(f"{p}\n" for p in paths),
            capture_output=True,
            text=True,
            check=True,
        )
    out: dict[str, dict[str, Any]] = {}
    for line in proc.stdout.splitlines():
        rec = json.loads(line)
        rec["path"] = paths[rec["path"]]
        out[rec["path"]] = rec
    return out


def load_expected() -> dict[str, dict[str, Any]]:
    recs = [json.loads(x) for x in EXPECTED.read_text().splitlines() if x.strip()]
    return {r["path"]: r for r in recs}


if __name__ == "__main__":
    result = run_spamassassin(load_blocks())
    EXPECTED.write_text("".join(json.dumps(result[k], sort_keys=True) + "\n" for k in result))
    print(f"wrote {len(result)} records to {EXPECTED.relative_to(REPO)}", file=sys.stderr)
