"""Live lease records (RADIUS accounting, DHCP leases) from a socket or a growing file.

A NAS or DHCP server (or a small relay such as FreeRADIUS `linelog` piped to `socat`) writes one record
per line, in the formats `identity.parse_lease_line` reads, to a TCP socket on loopback or a Unix socket.
The feed is one-way: nothing is answered, so a slow relayguard never blocks the sender's accounting.
`follow_file` tails a lease file the same way (Kea's memfile appends; a rotated file is read anew).

The byte handling is a sans-I/O `LineDecoder` (bytes in, complete lines out, a cap on buffered bytes) so
the socket and the file share it and tests feed it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from relayguard.config.schema import parse_hostport
from relayguard.core.errors import ParseError
from relayguard.outbound.identity import MAX_LINE, LeaseHistory, parse_lease_line

log = logging.getLogger("relayguard.outbound")


class LineDecoder:
    """Bytes in, complete text lines out; a line longer than `max_line` is dropped and counted."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._skipping = False  # inside an over-long line: drop until its end
        self.overlong = 0

    def feed(self, data: bytes) -> list[str]:
        out: list[str] = []
        self._buf += data
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self.max_line:
                    if not self._skipping:
                        self.overlong += 1
                    self._skipping = True
                    self._buf.clear()
                return out
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if self._skipping:
                self._skipping = False
                continue
            if len(line) > self.max_line:
                self.overlong += 1
                continue
            out.append(line.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> list[str]:
        """The last line when the stream ends without a newline."""
        if self._buf and not self._skipping and len(self._buf) <= self.max_line:
            line = bytes(self._buf).decode("utf-8", "replace").rstrip("\r")
            self._buf.clear()
            return [line]
        self._buf.clear()
        return []


@dataclass
class FeedStats:
    records: int = 0
    errors: int = 0
    connections: int = 0


class LeaseFeed:
    """Applies lines to a LeaseHistory; shared by the socket server and the file follower."""

    def __init__(self, history: LeaseHistory) -> None:
        self.history = history
        self.stats = FeedStats()

    def apply(self, lines: list[str], source: str) -> None:
        for line in lines:
            try:
                rec = parse_lease_line(line)
            except ParseError as exc:
                self.stats.errors += 1
                log.warning("lease feed %s: %s", source, exc)
                continue
            if rec is not None:
                self.history.add(rec)
                self.stats.records += 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername") or "unix")
        self.stats.connections += 1
        dec = LineDecoder()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self.apply(dec.feed(data), peer)
            self.apply(dec.close(), peer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("lease feed %s: connection ended (%s)", peer, exc)
        finally:
            if dec.overlong:
                self.stats.errors += dec.overlong
                log.warning("lease feed %s: %d over-long lines dropped", peer, dec.overlong)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def serve(self, address: str) -> asyncio.Server:
        """Listen on "host:port" (loopback in tests) or "unix:/path"."""
        if address.startswith("unix:"):
            path = address[5:]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return await asyncio.start_unix_server(self._handle, path=path)
        host, port = parse_hostport(address, 0)
        if not port:
            raise ValueError(f"lease_socket {address!r}: a port is needed")
        return await self.serve_tcp(host, port)

    async def serve_tcp(self, host: str, port: int) -> asyncio.Server:
        """TCP listener; port 0 picks a free port (tests)."""
        return await asyncio.start_server(self._handle, host=host, port=port)

    async def follow_file(self, path: str | Path, interval: float = 1.0, stop: asyncio.Event | None = None) -> None:
        """Read `path` from its start, then keep reading what is appended; a rotated file is read anew."""
        p = Path(path)
        pos = 0
        inode: int | None = None
        dec = LineDecoder()
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                st = p.stat()
                if inode is not None and (st.st_ino != inode or st.st_size < pos):
                    pos, dec = 0, LineDecoder()  # rotated or truncated
                inode = st.st_ino
                if st.st_size > pos:
                    with p.open("rb") as fh:
                        fh.seek(pos)
                        data = fh.read(min(st.st_size - pos, 16 * 1024 * 1024))
                    pos += len(data)
                    self.apply(dec.feed(data), str(p))
            except FileNotFoundError:
                inode = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


async def start_lease_feed(
    history: LeaseHistory, lease_socket: str, lease_file: str = ""
) -> tuple[LeaseFeed, list[asyncio.Task[None] | asyncio.Server]]:
    """What a front end's `serve` starts from `[outbound] lease_socket` / `lease_file`."""
    feed = LeaseFeed(history)
    running: list[asyncio.Task[None] | asyncio.Server] = []
    if lease_socket:
        running.append(await feed.serve(lease_socket))
        log.info("lease feed listening on %s", lease_socket)
    if lease_file:
        running.append(asyncio.create_task(feed.follow_file(lease_file)))
    return feed, running
