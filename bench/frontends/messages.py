"""bench/frontends/messages: milter and HTTP messages per second, relayguard next to Rspamd, same messages.

    bench/frontends/messages [--limit N] [--parallel P] [--skip-rspamd]

Four servers, each pinned to one core (clients on the other), each fed the same seeded corpus sample:

  relayguard-http    `relayguard serve --http`, driven by `rspamc -n P` (POST /checkv2)
  rspamd-normal      Rspamd's normal worker (network modules off), the same `rspamc -n P`
  relayguard-milter  `relayguard serve --milter`, driven by a milter client (P connections, protocol 6)
  rspamd-proxy       Rspamd's proxy worker in milter mode with self_scan, the same milter client

Throughput is counted per busy core (messages / CPU seconds of the server's processes) and per wall
second; ratios are relayguard over Rspamd from the same run. Results: bench/results/frontends-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from bench.lib import corpus as corpus_lib  # noqa: E402
from bench.lib import proc  # noqa: E402
from bench.lib.peers import Rspamd, free_port, wait_port  # noqa: E402

from relayguard.protocols import milter as m  # noqa: E402

RESULTS = REPO / "bench" / "results"
SERVER_CORE = 1 if (os.cpu_count() or 1) > 1 else 0
CLIENT_CORE = 0


def pinned(argv: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv


# --- the milter client -----------------------------------------------------------------------------


def split_message(raw: bytes) -> tuple[list[tuple[str, str]], bytes]:
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    headers: list[tuple[str, str]] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + "\n" + line.decode("utf-8", "replace"))
            continue
        name, sep, value = line.partition(b":")
        if sep and name.strip():
            headers.append((name.decode("ascii", "replace").strip(), value.decode("utf-8", "replace").strip()))
    return headers, body.replace(b"\n", b"\r\n")


FINAL = set("artdy")


class MilterClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer
        self.steps = m.Steps(0)

    async def reply(self) -> tuple[str, bytes]:
        head = await self.r.readexactly(4)
        (n,) = struct.unpack(">I", head)
        data = await self.r.readexactly(n)
        return chr(data[0]), data[1:]

    async def send(self, pkt: bytes, no_reply: m.Steps | None = None) -> None:
        self.w.write(pkt)
        if no_reply is not None and self.steps & no_reply:
            return
        await self.w.drain()
        cmd, _ = await self.reply()
        if cmd != "c":
            raise RuntimeError(f"unexpected milter reply {cmd!r}")

    async def open(self) -> None:
        # Offer what Postfix 3.x offers: every action, and every "no reply" step (the filter picks).
        mta = m.MtaSide(actions=m.Actions(0x1FF), steps=m.NO_REPLY_STEPS | m.Steps.NOUNKNOWN | m.Steps.SKIP)
        self.w.write(mta.optneg())
        await self.w.drain()
        _, data = await self.reply()
        _, _, steps = struct.unpack_from(">III", data)
        self.steps = m.Steps(steps)
        self.w.write(m.MtaSide.macro("C", {"j": "relay.bench", "{daemon_name}": "smtpd"}))
        await self.send(m.MtaSide.connect("client.bench", "198.18.0.1", 40000), m.Steps.NR_CONN)
        await self.send(m.MtaSide.helo("client.bench"), m.Steps.NR_HELO)

    async def message(self, i: int, raw: bytes) -> str:
        headers, body = split_message(raw)
        self.w.write(m.MtaSide.macro("M", {"i": f"Q{i:08X}", "{auth_authen}": f"cust{i % 50}@isp.example"}))
        await self.send(m.MtaSide.mail("<sender@isp.example>"), m.Steps.NR_MAIL)
        await self.send(m.MtaSide.rcpt("<rcpt@example.org>"), m.Steps.NR_RCPT)
        await self.send(m.MtaSide.simple("T"), m.Steps.NR_DATA)
        for name, value in headers:
            await self.send(m.MtaSide.header(name, value), m.Steps.NR_HDR)
        await self.send(m.MtaSide.simple("N"), m.Steps.NR_EOH)
        for off in range(0, len(body), 65535):
            await self.send(m.MtaSide.simple("B", body[off : off + 65535]), m.Steps.NR_BODY)
        self.w.write(m.MtaSide.simple("E"))
        await self.w.drain()
        while True:
            cmd, _ = await self.reply()
            if cmd in FINAL or cmd == "c":
                return cmd


async def milter_load(port: int, messages: list[bytes], parallel: int) -> dict[str, int]:
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for i, raw in enumerate(messages):
        queue.put_nowait((i, raw))
    outcomes: dict[str, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = MilterClient(reader, writer)
        await client.open()
        while not queue.empty():
            i, raw = queue.get_nowait()
            cmd = await asyncio.wait_for(client.message(i, raw), 300)
            outcomes[cmd] = outcomes.get(cmd, 0) + 1
        writer.write(m.MtaSide.simple("Q"))
        await writer.drain()
        writer.close()

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return outcomes


def run_milter_client(port: int, files: list[Path], parallel: int) -> dict[str, int]:
    """In a pinned child process, so the client's CPU never lands on the server's core."""
    argv = pinned([sys.executable, __file__, "--milter-client", str(port), "--parallel", str(parallel),
                   *map(str, files)], CLIENT_CORE)  # fmt: skip
    out = subprocess.run(argv, capture_output=True, check=True, timeout=7200).stdout
    return dict(json.loads(out))


# --- servers ---------------------------------------------------------------------------------------


class Relayguard:
    def __init__(self, work: Path, front: str) -> None:
        self.work = work
        self.port = free_port()
        cfg = work / f"relayguard-{front}.toml"
        cfg.write_text(f'[storage]\ndata_dir = "{work / ("data-" + front)}"\n')
        argv = [
            str(REPO / ".venv" / "bin" / "relayguard"),
            "serve",
            "-c",
            str(cfg),
            f"--{front}",
            f"127.0.0.1:{self.port}",
        ]
        self.p = subprocess.Popen(pinned(argv, SERVER_CORE), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 120, self.p)

    def cpu(self) -> float:
        return proc.cpu_seconds(self.p.pid)

    def stop(self) -> None:
        self.p.terminate()
        self.p.wait(60)


class RspamdProxy(Rspamd):
    """Rspamd with its proxy worker in milter mode, scanning itself (self_scan), next to the normal one."""

    def __init__(self, workdir: Path, core: int | None) -> None:
        super().__init__(workdir, core)
        self.milter_port = free_port()

    def _pin(self, argv: list[str]) -> list[str]:
        # Called just before Rspamd starts, after the base class wrote its overrides: enable the proxy.
        (self.dir / "override.d" / "worker-proxy.inc").write_text(
            f'bind_socket = "127.0.0.1:{self.milter_port}";\ncount = 1;\nmilter = yes;\ntimeout = 120s;\n'
            'upstream "local" { default = yes; self_scan = yes; }\n'
        )
        return super()._pin(argv)

    def start(self, timeout: float = 300) -> None:
        super().start(timeout)
        wait_port(self.milter_port, timeout, self.p)


def with_cache(srv: Rspamd) -> None:
    # Rspamd compiles its regexps with Hyperscan on first start (minutes); share bench/scan's cache.
    cache = RESULTS / "cache" / "rspamd-db"
    srv.dir.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    os.symlink(cache, srv.dir / "db")


def measure(cpu: object, run: object) -> tuple[float, float, object]:
    c0, t0 = cpu(), time.perf_counter()  # type: ignore[operator]
    out = run()  # type: ignore[operator]
    return cpu() - c0, time.perf_counter() - t0, out  # type: ignore[operator]


def rspamc_run(port: int, files: list[Path], parallel: int) -> int:
    argv = pinned(["rspamc", "-h", f"127.0.0.1:{port}", "-n", str(parallel), "-j", *map(str, files)], CLIENT_CORE)
    r = subprocess.run(argv, capture_output=True, timeout=7200, check=False)
    return r.stdout.count(b'"action"')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=corpus_lib.default_corpus())
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--skip-rspamd", action="store_true")
    ap.add_argument("--milter-client", type=int, help=argparse.SUPPRESS)
    ap.add_argument("files", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.milter_client:
        msgs = [f.read_bytes() for f in args.files]
        print(json.dumps(asyncio.run(milter_load(args.milter_client, msgs, args.parallel))))
        return 0

    files = corpus_lib.sample(args.corpus, args.limit, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-frontends-") as tmp:
        work = Path(tmp)
        paths = corpus_lib.materialise(files, work / "messages")
        n = len(paths)
        print(f"{n} messages from {args.corpus}; servers on core {SERVER_CORE}, clients on {CLIENT_CORE}", flush=True)

        rg = Relayguard(work, "http")
        try:
            rspamc_run(rg.port, paths[:3], 1)  # warm-up
            cpu, wall, ok = measure(rg.cpu, lambda: rspamc_run(rg.port, paths, args.parallel))
            results["relayguard-http"] = {"messages": float(ok), "cpu_s": cpu, "wall_s": wall}  # type: ignore[arg-type]
        finally:
            rg.stop()
        print("relayguard-http done", flush=True)

        rg = Relayguard(work, "milter")
        try:
            run_milter_client(rg.port, paths[:3], 1)
            cpu, wall, out = measure(rg.cpu, lambda: run_milter_client(rg.port, paths, args.parallel))
            results["relayguard-milter"] = {"messages": float(sum(out.values())), "cpu_s": cpu, "wall_s": wall}  # type: ignore[attr-defined]
        finally:
            rg.stop()
        print("relayguard-milter done", flush=True)

        if not args.skip_rspamd:
            srv = RspamdProxy(work / "rspamd", SERVER_CORE)
            with_cache(srv)
            srv.start()
            try:
                rspamc_run(srv.port, paths[:3], 1)
                cpu, wall, ok = measure(srv.cpu, lambda: rspamc_run(srv.port, paths, args.parallel))
                results["rspamd-normal"] = {"messages": float(ok), "cpu_s": cpu, "wall_s": wall}  # type: ignore[arg-type]
                print("rspamd-normal done", flush=True)
                run_milter_client(srv.milter_port, paths[:3], 1)
                cpu, wall, out = measure(srv.cpu, lambda: run_milter_client(srv.milter_port, paths, args.parallel))
                results["rspamd-proxy"] = {"messages": float(sum(out.values())), "cpu_s": cpu, "wall_s": wall}  # type: ignore[attr-defined]
                print("rspamd-proxy done", flush=True)
            finally:
                srv.stop()

    lines = ["| server | messages | msg/s per busy core | wall msg/s |", "|---|---:|---:|---:|"]
    for name, r in results.items():
        r["per_core"] = r["messages"] / r["cpu_s"] if r["cpu_s"] else 0.0
        r["per_wall"] = r["messages"] / r["wall_s"] if r["wall_s"] else 0.0
        lines.append(f"| {name} | {r['messages']:.0f} | {r['per_core']:.1f} | {r['per_wall']:.1f} |")
    for ours, theirs in (("relayguard-http", "rspamd-normal"), ("relayguard-milter", "rspamd-proxy")):
        if ours in results and theirs in results and results[theirs]["per_core"]:
            ratio = results[ours]["per_core"] / results[theirs]["per_core"]
            lines.append(f"\n{ours} / {theirs}: {ratio:.2f}x per busy core")
    print("\n".join(lines))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_path = RESULTS / f"frontends-{stamp}.json"
    out_path.write_text(json.dumps({"date": stamp, "corpus": str(args.corpus), "results": results}, indent=2))
    print(f"results: {out_path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
