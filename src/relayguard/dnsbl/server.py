"""The authoritative DNS server: UDP and TCP on asyncio (uvloop when available), answering from the
current ZoneSet, which a reload replaces in one assignment.

Reloads are built off to the side (in a forked child process at idle priority, see handover) while the
old data keeps answering; a load that fails, or whose files changed while they were being read, is
thrown away. Each UDP socket is answered by a thread of its own: the compiled engine (native.py) takes
batches off it and answers the plain questions, Python the rest; without the engine the thread answers
in blocking recvfrom/sendto calls. Each socket gets a large receive buffer so that a burst does not drop
queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import functools
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relayguard.dnsbl import native
from relayguard.dnsbl.acl import Acl
from relayguard.dnsbl.answer import Dataset, Limits, Zone, ZoneSet
from relayguard.dnsbl.handover import build_in_child, can_fork
from relayguard.dnsbl.wire import answer_fast, answer_packet
from relayguard.dnsbl.zonespec import (
    DatasetKey,
    Loaded,
    StaleFiles,
    ZoneSpec,
    build_zoneset,
    file_mtimes,
    load_checked,
)

if TYPE_CHECKING:
    from relayguard.core.http_endpoint import Endpoint

log = logging.getLogger("relayguard.dnsbl")

# the kernel doubles it and counts each queued datagram at 0.8-1.6 KiB: 20,000-40,000 queued queries,
# one to two seconds at 20,000 q/s
RCVBUF = 16 * 1024 * 1024
# SO_RCVBUFFORCE (root, or CAP_NET_ADMIN) goes past net.core.rmem_max; Python's socket module has no name
# for it, and without it the buffer stays at twice rmem_max (8 MiB here, a quarter of the above)
SO_RCVBUFFORCE: int | None = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None)
TCP_IDLE = 10.0
TCP_MAX_CLIENTS = 256
SETTLE = 0.5  # seconds a changed file must stay unchanged before it is read


def load_unless_stale(key: DatasetKey, limits: Limits) -> tuple[Dataset | Acl, dict[str, float]] | None:
    try:
        return load_checked(key, limits)
    except StaleFiles:
        return None


def tune_malloc() -> None:
    """Large numpy arrays always from mmap, so that a reload's temporaries go back to the system.

    glibc otherwise raises its mmap threshold after the first large free and serves later arrays from
    the heap, which never shrinks: peak memory would keep the high-water mark of every reload.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1024 * 1024)  # M_TRIM_THRESHOLD


def trim_memory() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


LiveProvider = Callable[[], tuple[int, list[Zone]]]


@dataclass
class Catalog:
    """The zones being served and how to rebuild them."""

    specs: Sequence[ZoneSpec]
    limits: Limits = field(default_factory=Limits)
    lazy: bool = True
    workdir: str | None = None
    live: LiveProvider | None = None
    loaded: Loaded | None = None
    live_version: int = -1
    live_zones: list[Zone] = field(default_factory=list)
    zoneset: ZoneSet = field(default_factory=lambda: ZoneSet([]))
    reloads: int = 0
    fork_builds: bool = True  # reloads build datasets in a child process (see reload_files)
    # install (reload worker) and apply_live (event loop) both rebuild zoneset from loaded + live zones
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        """First load, in the foreground: errors propagate (a server with broken files does not start)."""
        if self.live is not None:
            self.live_version, self.live_zones = self.live()
        self.loaded = build_zoneset(self.specs, self.limits, lazy=self.lazy, workdir=self.workdir,
                                    extra_zones=self.live_zones)
        self.zoneset = native.prepare(self.loaded.zoneset)
        trim_memory()

    def files_changed(self, *, settled: bool = True) -> bool:
        """Did a data file change? With settled, only once its mtime is SETTLE seconds old (a file still
        being written in place keeps moving its mtime); an operator's SIGHUP does not wait."""
        if self.loaded is None:
            return True
        try:
            now = file_mtimes(list(self.loaded.files))
        except OSError:
            return False  # a file is being replaced: try again at the next check
        changed = [p for p, m in now.items() if self.loaded.files.get(p) != m]
        if not changed:
            return False
        return not settled or all(time.time() - now[p] >= SETTLE for p in changed)

    def changed_keys(self) -> list[DatasetKey]:
        assert self.loaded is not None
        out = []
        for key in self.loaded.datasets:
            paths = key[1]
            try:
                cur = file_mtimes(list(paths))
            except OSError:
                continue
            if any(self.loaded.files.get(p) != m for p, m in cur.items()):
                out.append(key)
        return out

    def reload_files(self) -> int:
        """Reload changed datasets one at a time, off to the side (this runs in a worker thread), swapping
        each in as soon as it is built: every zone switches atomically, and only one dataset is ever
        held twice.

        Each dataset is built in a forked child at idle priority (see handover) unless fork_builds is
        off: the serving process only maps the finished arrays, so answers do not stall behind the
        parse and the load's temporaries stay out of the server's memory. Returns the datasets swapped
        in; stops, keeping the old data, if a file moves while being read. A failed build raises, and
        the old data keeps answering.
        """
        assert self.loaded is not None
        done = 0
        for key in self.changed_keys():
            assert self.loaded is not None
            got = self.build_dataset(key)
            if got is None:
                log.warning("data files changed while loading; keeping the old data, retrying later")
                break
            new = build_zoneset(self.specs, self.limits, lazy=self.lazy, workdir=self.workdir,
                                extra_zones=self.live_zones, reuse=self.loaded.datasets,
                                reuse_mtimes=self.loaded.files, load_only=key, fresh={key: got})
            self.install(new)
            done += 1
        return done

    def build_dataset(self, key: DatasetKey) -> tuple[Dataset | Acl, dict[str, float]] | None:
        """One dataset and the mtimes its files were read at; None if a file moved meanwhile."""
        if not (self.fork_builds and can_fork()):
            return load_unless_stale(key, self.limits)
        built = build_in_child(functools.partial(load_unless_stale, key, self.limits))
        log.info("%s built in a child process: %.2fs CPU, child peak RSS %d MiB (mostly shared)",
                 key[0], built.child_cpu_s, built.child_peak_kib // 1024)
        got: tuple[Dataset | Acl, dict[str, float]] | None = built.value
        return got

    def install(self, new: Loaded) -> None:
        with self._lock:
            self.loaded = new
            self.zoneset = native.prepare(ZoneSet(self._file_zones() + self.live_zones,
                                                  global_acl=new.zoneset.global_acl, lazy=self.lazy))
            self.reloads += 1
        trim_memory()

    def _file_zones(self) -> list[Zone]:
        assert self.loaded is not None
        return list(self.loaded.file_zones)

    def live_changed(self) -> bool:
        """Cheap check (a version number) whether the listings moved; runs in a worker thread."""
        if self.live is None:
            return False
        probe: Callable[[], int] | None = getattr(self.live, "version", None)
        return True if probe is None else probe() != self.live_version

    def fetch_live(self) -> tuple[int, list[Zone]] | None:
        """Read the listings (worker thread); None if there is no live source."""
        return self.live() if self.live is not None else None

    def apply_live(self, version: int, zones: list[Zone]) -> bool:
        """Swap in new live zones; True if the served data changed."""
        with self._lock:
            if self.loaded is None or version == self.live_version:
                return False
            file_zones = self._file_zones()
            self.live_version, self.live_zones = version, zones
            self.zoneset = native.prepare(ZoneSet(file_zones + zones, global_acl=self.zoneset.global_acl,
                                                  lazy=self.lazy))
        return True


def answer_one(zs: ZoneSet, data: bytes, addr: Any, send: Callable[[bytes, Any], object]) -> None:
    """One UDP query through the Python path; never lets a packet take the server down."""
    try:
        resp = answer_fast(zs, data, addr[0])
    except Exception:  # the client will retry
        log.exception("error answering a query")
        return
    if resp is not None:
        try:  # noqa: SIM105  (suppress() would cost a context manager per packet)
            send(resp, addr)
        except OSError:  # e.g. ICMP unreachable surfacing from an earlier answer
            pass


_FATAL = frozenset({errno.EBADF, errno.ENOTSOCK, errno.EINVAL})  # the socket is gone: stop, do not spin


class UdpListener:
    """Answers one UDP socket from a thread of its own, in blocking calls: batches through the compiled
    engine (run_native), or one recvfrom and one sendto a query without it (run_python).

    A thread rather than an event-loop reader: the reader costs an epoll_wait and a failing recvfrom (an
    exception) on top at moderate rates, where each packet wakes the server alone (about a tenth of the
    CPU at 20,000 q/s). The GIL is free while the thread waits, and the event loop (TCP, timers, reload
    hand-over) takes it only briefly.
    """

    def __init__(self, server: DnsblServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.stopping = False
        # counted by this listener's thread alone (no lock, no lost increments); /metrics sums them
        self.queries = 0
        self.compiled = 0  # answered by the compiled engine
        self.native = False  # the compiled engine serves this socket
        self.thread = threading.Thread(target=self.run, name="dnsbl-udp", daemon=True)

    def run(self) -> None:
        if native.enabled():
            self.native = True
            self.run_native()
        else:
            self.run_python()

    def run_native(self) -> None:
        """The compiled engine takes batches off the socket and answers the plain questions itself; the
        rest (other types, ACL zones, the apex, hostile packets...) come back here one by one."""
        sock = self.sock
        fd = sock.fileno()
        send = sock.sendto
        catalog = self.server.catalog
        scratch = bytearray(native.SCRATCH)  # this thread's receive and send buffers
        receive = native.receive
        assert receive is not None  # run() chose this loop because the extension is there
        while True:
            count, err = receive(fd, scratch)
            if self.stopping or err in _FATAL:
                return
            zs = catalog.zoneset  # after the wait: a reload meanwhile answers this batch already
            try:
                answered, declined = native.engine_for(zs).reply(fd, scratch, count)
            except Exception:  # a broken engine must not stop the answers: fall back to Python for good
                log.exception("the compiled DNSBL path failed; answering in Python from now on")
                self.native = False
                self.run_python()
                return
            self.queries += answered + len(declined)
            self.compiled += answered
            for data, addr in declined:
                answer_one(zs, data, addr, send)

    def run_python(self) -> None:
        sock = self.sock
        recv = sock.recvfrom
        send = sock.sendto
        catalog = self.server.catalog
        while True:
            try:
                data, addr = recv(4096)
            except OSError:
                if self.stopping:
                    return
                continue  # e.g. ICMP errors surfacing from an earlier sendto
            if self.stopping:
                return
            self.queries += 1
            answer_one(catalog.zoneset, data, addr, send)

    def stop(self) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RD)  # wakes the blocked recvfrom (ENOTCONN is expected)
        self.thread.join(2)
        self.sock.close()


class DnsblServer:
    def __init__(self, catalog: Catalog, listen: Sequence[tuple[str, int]], *, check_interval: float = 60.0,
                 live_interval: float = 0.5) -> None:
        self.catalog = catalog
        self.listen = list(listen)
        self.check_interval = check_interval
        self.live_interval = live_interval
        self.udp: list[UdpListener] = []
        self.tcp_servers: list[asyncio.Server] = []
        self.bound: list[tuple[str, int]] = []
        self.tcp_queries = 0
        self.tcp_clients = 0
        self.reload_failures = 0
        self.live_failures = 0
        self._reload_now = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dnsbl-reload")
        self._reloading = False

    @property
    def queries(self) -> int:
        """Queries received over UDP and TCP since start."""
        return sum(u.queries for u in self.udp) + self.tcp_queries

    async def start(self) -> None:
        if not native.available():
            log.warning("the DNSBL server's compiled path is not built (no C compiler at install time?): "
                        "answering UDP in Python, at about half the throughput; see docs/dnsbl.md")
        elif not native.enabled():
            log.info("compiled DNSBL path turned off (RELAYGUARD_DNSBL_NATIVE=0): answering UDP in Python")
        else:
            log.info("UDP answered by the compiled engine (Python for what it leaves)")
        for host, port in self.listen:
            # port 0 picks a free UDP port; the same TCP port may be taken, so try a few
            for attempt in range(20):
                us, bound_port = self._udp_socket(host, port)
                try:
                    srv = await asyncio.start_server(self._tcp_client, host, bound_port, reuse_address=True,
                                                     family=us.family)
                except OSError:
                    us.close()
                    if port or attempt == 19:
                        raise
                    continue
                break
            ul = UdpListener(self, us)
            ul.thread.start()
            self.udp.append(ul)
            self.tcp_servers.append(srv)
            self.bound.append((host, bound_port))
        self._tasks.append(asyncio.create_task(self._watch_files()))
        if self.catalog.live is not None:
            self._tasks.append(asyncio.create_task(self._watch_live()))

    @staticmethod
    def _udp_socket(host: str, port: int) -> tuple[socket.socket, int]:
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        us = socket.socket(fam, socket.SOCK_DGRAM)
        if fam == socket.AF_INET6:
            us.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            if opt is None:
                continue
            try:
                us.setsockopt(socket.SOL_SOCKET, opt, RCVBUF)
                break
            except OSError:
                continue
        us.bind((host, port))
        return us, int(us.getsockname()[1])

    def request_reload(self) -> None:
        self._reload_now.set()

    async def _watch_files(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.check_interval > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._reload_now.wait(), self.check_interval)
            else:
                await self._reload_now.wait()
            forced = self._reload_now.is_set()
            self._reload_now.clear()
            # SIGHUP re-checks the files at once, as rbldnsd does; the timer waits for them to settle
            if not self.catalog.files_changed(settled=not forced):
                continue
            self._reloading = True
            t0 = time.monotonic()
            try:
                n = await loop.run_in_executor(self._pool, self.catalog.reload_files)
                if n:
                    log.info("%d dataset(s) reloaded in %.2fs", n, time.monotonic() - t0)
            except Exception:
                self.reload_failures += 1
                log.exception("reload failed; still serving the previous data")
            finally:
                self._reloading = False

    async def _watch_live(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.live_interval)
            try:
                # the store is read in a worker thread: a slow database must not stall answers
                if await loop.run_in_executor(None, self.catalog.live_changed):
                    got = await loop.run_in_executor(None, self.catalog.fetch_live)
                    if got is not None:
                        self.catalog.apply_live(*got)
            except Exception:
                self.live_failures += 1
                log.exception("live listings refresh failed; still serving the previous listings")

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if peer else None
        if self.tcp_clients >= TCP_MAX_CLIENTS:
            writer.close()
            return
        self.tcp_clients += 1
        try:
            while True:
                try:
                    hdr = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                    (n,) = struct.unpack("!H", hdr)
                    data = await asyncio.wait_for(reader.readexactly(n), TCP_IDLE)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                self.tcp_queries += 1
                resp = self.answer_tcp(data, host)
                if resp is None:
                    continue
                for part in [resp] if isinstance(resp, bytes) else resp:
                    writer.write(struct.pack("!H", len(part)) + part)
                await writer.drain()
        finally:
            self.tcp_clients -= 1
            with contextlib.suppress(Exception):
                writer.close()

    def answer_tcp(self, data: bytes, host: str | None) -> bytes | list[bytes] | None:
        """Hook for subclasses (zone transfers); plain questions are answered as over UDP, without the
        UDP size limit."""
        return answer_packet(self.catalog.zoneset, data, host, tcp=True)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for ul in self.udp:
            ul.stop()
        for s in self.tcp_servers:
            s.close()
            await s.wait_closed()
        self._pool.shutdown(wait=False, cancel_futures=True)


async def serve_forever(server: DnsblServer, ready: Callable[[DnsblServer], None] | None = None,
                        metrics: Endpoint | None = None) -> None:
    await server.start()
    endpoint = None
    if metrics is not None:
        from relayguard.dnsbl.metrics import metrics_server

        endpoint = metrics_server(server, metrics)
        try:
            await endpoint.start()
        except BaseException:
            await server.stop()
            raise
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, server.request_reload)
    if ready is not None:
        ready(server)
    await stop.wait()
    if endpoint is not None:
        await endpoint.stop()
    await server.stop()


def run(server_factory: Callable[[], DnsblServer], ready: Callable[[DnsblServer], None] | None = None,
        metrics: Endpoint | None = None) -> None:
    """Run with uvloop when installed (about a third faster per packet), else the default loop."""
    async def main() -> None:
        await serve_forever(server_factory(), ready, metrics)

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
        return
    if os.environ.get("RELAYGUARD_NO_UVLOOP") == "1":
        asyncio.run(main())
    else:
        uvloop.run(main())
