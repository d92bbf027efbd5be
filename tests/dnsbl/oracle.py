"""Run the real rbldnsd on loopback and compare its answers with relayguard's (the differential test)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.rdatatype

from peers import wait_dns
from relayguard.dnsbl import native
from relayguard.dnsbl.answer import Limits, ZoneSet
from relayguard.dnsbl.wire import answer_fast, answer_packet
from relayguard.dnsbl.zonespec import ZoneSpec, build_zoneset

RBLDNSD = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"


def rbldnsd_available() -> bool:
    return os.path.exists(RBLDNSD) and os.access(RBLDNSD, os.X_OK)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_port_both() -> int:
    """A loopback port free for UDP and TCP alike (a server binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port: int = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def world_readable_dir() -> str:
    """rbldnsd drops root and reads as an unprivileged user: its files must be readable by anyone."""
    d = tempfile.mkdtemp(prefix="rg-dnsbl-")
    os.chmod(d, 0o755)
    return d


class Rbldnsd:
    def __init__(self, workdir: str, specs: Sequence[str], opts: Sequence[str] = ("-a",)) -> None:
        self.workdir = workdir
        self.port = free_udp_port()
        user = "rbldns" if _user_exists("rbldns") else "nobody"
        self.cmd = [
            RBLDNSD,
            "-n",
            "-q",
            "-u",
            user,
            "-b",
            f"127.0.0.1/{self.port}",
            "-w",
            workdir,
            "-c",
            "0",
            *opts,
            *specs,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Rbldnsd:
        for root, dirs, files in os.walk(self.workdir):
            for n in dirs:
                os.chmod(os.path.join(root, n), 0o755)
            for n in files:
                os.chmod(os.path.join(root, n), 0o644)
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_dns(self.proc, self.port, "rbldnsd")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def ask_many(
        self, packets: list[bytes], window: int = 64, source: str = "127.0.0.1", timeout: float = 0.5
    ) -> list[bytes | None]:
        """Send packets (each with a distinct id) with a bounded window; answers in packet order (None when
        no answer came). source: the loopback address to send from (acl tests)."""
        out: list[bytes | None] = [None] * len(packets)
        by_id = {int.from_bytes(p[:2], "big"): i for i, p in enumerate(packets)}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((source, 0))
            s.settimeout(timeout)
            for start in range(0, len(packets), window):
                chunk = range(start, min(start + window, len(packets)))
                for _attempt in range(3):
                    pending = [i for i in chunk if out[i] is None]
                    if not pending:
                        break
                    for i in pending:
                        s.sendto(packets[i], ("127.0.0.1", self.port))
                    got = 0
                    while got < len(pending):
                        try:
                            data, _ = s.recvfrom(65535)
                        except OSError:
                            break
                        j = by_id.get(int.from_bytes(data[:2], "big"))
                        if j is not None and out[j] is None:
                            out[j] = data
                            got += 1
        return out


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@dataclass(frozen=True, slots=True)
class Summary:
    rcode: int
    answer: tuple[tuple[str, int, str], ...]
    authority_types: tuple[str, ...]
    aa: bool


def summarize(wire: bytes | None) -> Summary | None:
    """What the differential test compares: rcode, AA, every answer record (type, TTL, data; order
    ignored) and the types in the authority section."""
    if wire is None:
        return None
    m = dns.message.from_wire(wire)
    ans: list[tuple[str, int, str]] = []
    for rrset in m.answer:
        for rd in rrset:
            ans.append((dns.rdatatype.to_text(rrset.rdtype), rrset.ttl, rd.to_text().lower()))
    auth = tuple(sorted(dns.rdatatype.to_text(r.rdtype) for r in m.authority))
    return Summary(m.rcode(), tuple(sorted(ans)), auth, bool(m.flags & dns.flags.AA))


def ours(specs: Sequence[str], workdir: str, limits: Limits | None = None, lazy: bool = True) -> ZoneSet:
    return build_zoneset([ZoneSpec.parse(s) for s in specs], limits or Limits(), lazy=lazy, workdir=workdir).zoneset


Mismatch = tuple[str, str, Summary | None, Summary | None]


def compare(
    zs: ZoneSet, server: Rbldnsd, questions: Iterable[tuple[str, str]], seed: int = 7, source: str = "127.0.0.1"
) -> tuple[int, list[Mismatch], int]:
    """(questions asked, mismatches, answers too big for UDP).

    Deviation: when the records do not fit in 512 bytes, rbldnsd sends the ones that fit without AA;
    we send none with TC so the client retries over TCP. Those are checked as: our TCP answer holds every
    record rbldnsd sent.
    """
    rnd = random.Random(seed)
    qs = list(questions)
    packets = []
    for i, (name, rtype) in enumerate(qs):
        m = dns.message.make_query(name, rtype)
        m.id = i & 0xFFFF
        m.flags &= ~dns.flags.RD if rnd.random() < 0.5 else 0xFFFF
        packets.append(m.to_wire())
    mism: list[Mismatch] = []
    total = 0
    truncated = 0
    engine = native.engine_for(zs)  # the compiled path must give the Python path's bytes, or leave it
    for start in range(0, len(packets), 60000):
        batch = packets[start : start + 60000]
        theirs = server.ask_many(batch, source=source, timeout=0.5 if source == "127.0.0.1" else 0.2)
        for k, (p, t) in enumerate(zip(batch, theirs, strict=True)):
            raw = answer_fast(zs, p, source)
            assert raw == answer_packet(zs, p, source), "fast path and general path disagree"
            compiled = engine.answer(p)
            assert compiled is None or compiled == raw, "compiled path and Python path disagree"
            mine = summarize(raw)
            th = summarize(t)
            total += 1
            if raw is not None and raw[2] & 0x02 and th is not None:
                full = summarize(answer_packet(zs, p, source, tcp=True))
                if full is not None and not th.aa and set(th.answer) <= set(full.answer):
                    truncated += 1
                    continue
            if mine != th:
                name, rtype = qs[start + k]
                mism.append((name, rtype, th, mine))
    return total, mism, truncated
