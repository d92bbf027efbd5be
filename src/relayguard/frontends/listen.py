"""Open listening sockets (TCP or unix) and track work in flight for graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable

from relayguard.frontends.settings import ListenAddress

log = logging.getLogger("relayguard.frontends")


async def open_server(addr: ListenAddress, factory: Callable[[], asyncio.BaseProtocol]) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    if addr.path:
        # A stale socket from a previous run blocks bind(); only ever remove a socket, never a file.
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(addr.path).st_mode):
                os.unlink(addr.path)
        server = await loop.create_unix_server(factory, addr.path)
        os.chmod(addr.path, 0o666)  # Postfix's smtpd runs as another user than relayguard
    else:
        server = await loop.create_server(factory, addr.host, addr.port, reuse_address=True)
    log.info("listening on %s", addr)
    return server


def bound_port(server: asyncio.AbstractServer) -> int:
    """The TCP port a server listens on (for tests that bind port 0)."""
    for s in getattr(server, "sockets", ()) or ():
        name = s.getsockname()
        if isinstance(name, tuple):
            return int(name[1])
    raise ValueError("server has no TCP socket")


class InFlight:
    """Counts transactions in progress so shutdown can wait for them to end."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def begin(self) -> None:
        self._count += 1
        self._idle.clear()

    def end(self) -> None:
        self._count -= 1
        if self._count <= 0:
            self._count = 0
            self._idle.set()

    @property
    def count(self) -> int:
        return self._count

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


async def open_stream_server(
    addr: ListenAddress,
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    limit: int = 1 << 16,
) -> asyncio.AbstractServer:
    """A streams server (for protocols with few, larger exchanges: milter, spamd)."""
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, handler, loop=loop)

    return await open_server(addr, factory)
