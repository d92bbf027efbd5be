"""Real peers for tests: a private redis-server and PostgreSQL (the machine's own when it answers on
127.0.0.1:5432, else a private cluster from the Debian packages). Fixtures live in tests/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_dns(proc: subprocess.Popen[bytes], port: int, name: str, timeout: float = 20.0) -> None:
    """Wait until a DNS server on 127.0.0.1:port answers a UDP query (any answer will do)."""
    import dns.message

    deadline = time.monotonic() + timeout
    q = dns.message.make_query("probe.invalid", "A").to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.05)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"{name} exited: {err}")
            s.sendto(q, ("127.0.0.1", port))
            try:
                s.recvfrom(4096)
                return
            except OSError:
                continue
    raise RuntimeError(f"{name} did not answer on port {port}")


def wait_port(port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until something accepts on 127.0.0.1:port; with `proc`, give up as soon as that process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process meant to listen on port {port} exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


async def eventually(cond: Callable[[], object], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Until cond() is true (polling on the event loop, so a server in the same loop keeps running); False
    after timeout. The caller asserts what it waited for: a bound on how long, never a timing."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


class RedisServer:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server not installed (scripts/apt-packages.txt)")
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def redis_server_fixture(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(free_port(), tmp_path)
    srv.start()
    yield srv
    srv.stop()


# ------------------------------------------------------------------------------------------ postgres


def _pg_answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 1):
        return True
    return False


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    return None


def pg_server_fixture() -> Iterator[str]:
    """A DSN prefix (without dbname) for a PostgreSQL that accepts user postgres with trust auth."""
    # RELAYGUARD_TEST_PG_PRIVATE=1 forces the private cluster (to test this path where 5432 answers)
    if _pg_answers("127.0.0.1", 5432) and not os.environ.get("RELAYGUARD_TEST_PG_PRIVATE"):
        yield "host=127.0.0.1 port=5432 user=postgres"
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.fail("PostgreSQL not running and not installed (scripts/apt-packages.txt: postgresql)")
    root = Path(tempfile.mkdtemp(prefix="rg-pg-"))
    data = root / "data"
    port = free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the private cluster as the postgres system user
        shutil.chown(root, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*run_as, initdb, "-D", str(data), "-U", "postgres", "-A", "trust"], check=True, capture_output=True)
    subprocess.run(
        [
            *run_as,
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"host=127.0.0.1 port={port} user=postgres"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def pg_dsn_fixture(pg_server: str) -> Iterator[str]:
    """A throwaway database with a random name, dropped afterwards."""
    import psycopg

    name = "rg_test_" + secrets.token_hex(6)
    with psycopg.connect(pg_server + " dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_server} dbname={name}"
    finally:
        with psycopg.connect(pg_server + " dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
