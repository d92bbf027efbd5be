"""uvicorn inside an asyncio loop that is already running (the front ends' HTTP service, the DNSBL
server's /metrics): it serves until stop(), and leaves signal handling to the program that runs it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

from starlette.applications import Starlette


class Endpoint(Protocol):
    """Where to listen: TCP host and port, or a unix socket path (frontends.settings.ListenAddress)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def path(self) -> str: ...


class UvicornServer:
    """uvicorn inside our event loop; signals stay ours (serve's SIGTERM/SIGHUP handling)."""

    def __init__(self, app: Starlette, addr: Endpoint) -> None:
        import uvicorn

        kwargs: dict[str, Any] = {"uds": addr.path} if addr.path else {"host": addr.host, "port": addr.port}
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=30,
            h11_max_incomplete_event_size=65536, **kwargs,
        )  # fmt: skip

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # relayguard serve owns SIGTERM/SIGINT/SIGHUP

        self.server = _Server(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                return
            if self.task.done():
                self.task.result()
                raise RuntimeError("uvicorn stopped at start")
            await asyncio.sleep(0.01)
        raise RuntimeError("uvicorn did not start")

    @property
    def port(self) -> int:
        for s in self.server.servers:
            for sock in s.sockets:
                name = sock.getsockname()
                if isinstance(name, tuple):
                    return int(name[1])
        raise ValueError("no TCP socket")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task
