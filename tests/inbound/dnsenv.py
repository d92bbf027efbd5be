"""Real DNS servers on loopback for the inbound tests: rbldnsd serving zones these tests write, and a
socket that never answers (a dead list). No mocks: every answer the checks read crossed a socket."""

from __future__ import annotations

import asyncio
import base64
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peers import wait_dns

RBLDNSD = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inbound"
SOA = "$SOA 60 ns.rbl.test. hostmaster.rbl.test. 1 600 300 86400 60"


def rbldnsd_available() -> bool:
    return os.access(RBLDNSD, os.X_OK)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def dkim_public_key() -> str:
    """Base64 SubjectPublicKeyInfo of the fixture key, as a DKIM p= value."""
    from dkim.crypto import parse_pem_private_key

    pk = parse_pem_private_key((FIXTURES / "dkim-test-key.pem").read_bytes())
    # dkimpy has no public-key exporter; build the DER by hand: SEQUENCE { algid, BIT STRING { RSAPublicKey } }
    n, e = pk["modulus"], pk["publicExponent"]

    def der_len(n_: int) -> bytes:
        if n_ < 0x80:
            return bytes([n_])
        b = n_.to_bytes((n_.bit_length() + 7) // 8, "big")
        return bytes([0x80 | len(b)]) + b

    def der_int(v: int) -> bytes:
        b = v.to_bytes((v.bit_length() + 8) // 8, "big")
        return b"\x02" + der_len(len(b)) + b

    def seq(b: bytes) -> bytes:
        return b"\x30" + der_len(len(b)) + b

    rsa_pub = seq(der_int(n) + der_int(e))
    algid = seq(b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00")
    bitstr = b"\x03" + der_len(len(rsa_pub) + 1) + b"\x00" + rsa_pub
    return base64.b64encode(seq(algid + bitstr)).decode()


class Rbldnsd:
    """rbldnsd on 127.0.0.1:<free port> serving (zone, dataset type, file text) triples; several
    datasets for one zone are merged by rbldnsd (how zen's SBL, XBL and PBL answers combine)."""

    def __init__(self, zones: Sequence[tuple[str, str, str]]) -> None:
        self.dir = tempfile.mkdtemp(prefix="rg-inbound-")
        os.chmod(self.dir, 0o755)
        specs = []
        for i, (zone, dtype, text) in enumerate(zones):
            name = f"z{i}.zone"
            p = Path(self.dir) / name
            p.write_text(text)
            os.chmod(p, 0o644)
            specs.append(f"{zone}:{dtype}:{name}")
        self.port = free_udp_port()
        user = "rbldns" if _user_exists("rbldns") else "nobody"
        # -n: stay in the foreground (we own the process); -q: load zones before answering anything.
        self.cmd = [RBLDNSD, "-n", "-q", "-u", user, "-b", f"127.0.0.1/{self.port}", "-w", self.dir, "-c", "0", *specs]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Rbldnsd:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_dns(self.proc, self.port, "rbldnsd")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class RelayguardDnsbl:
    """relayguard's own blocklist server (relayguard.dnsbl.server) serving the same zone files, on its
    own event loop in a thread, so the same cases run against it as against rbldnsd."""

    def __init__(self, zones: Sequence[tuple[str, str, str]]) -> None:
        self.dir = tempfile.mkdtemp(prefix="rg-inbound-own-")
        self.zones = zones
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RelayguardDnsbl:
        from relayguard.dnsbl.server import Catalog, DnsblServer
        from relayguard.dnsbl.zonespec import ZoneSpec

        specs = []
        for i, (zone, dtype, text) in enumerate(self.zones):
            name = f"z{i}.zone"
            (Path(self.dir) / name).write_text(text)
            specs.append(ZoneSpec.parse(f"{zone}:{dtype}:{name}"))
        catalog = Catalog(specs, workdir=self.dir)
        catalog.load()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = DnsblServer(catalog, [("127.0.0.1", 0)], check_interval=3600)
                loop.run_until_complete(self._server.start())
                self.port = self._server.bound[0][1]
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._server.stop())
            pending = asyncio.all_tasks(loop)
            for t in pending:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="relayguard-dnsbl", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Blackhole:
    """A UDP socket that reads queries and never answers: a list whose servers are dead."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
