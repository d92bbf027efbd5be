"""asyncio server for Postfix policy delegation (TCP and unix sockets).

Built on `asyncio.Protocol` rather than streams: one request is a few hundred bytes and the relay asks
on every RCPT, so the per-request overhead of the stream layer would dominate. A synchronous decider is
answered inside `data_received`; an asynchronous one pauses reading until its answer is written, which
keeps replies in request order and bounds what a pipelining client can make us buffer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from relayguard.frontends.decider import PolicyDecider
from relayguard.frontends.listen import InFlight
from relayguard.frontends.settings import FailMode
from relayguard.protocols.errors import NEED_DATA, ProtocolError
from relayguard.protocols.policy import (
    DUNNO,
    PolicyAction,
    PolicyConnection,
    PolicyReply,
    PolicyRequest,
)

log = logging.getLogger("relayguard.frontends.policy")

TEMPFAIL = PolicyReply(PolicyAction.DEFER_IF_PERMIT, "4.3.0 Policy service temporarily unavailable")


@dataclass
class PolicyService:
    """What the connections share; `decider` and `fail_mode` are replaced on reload."""

    decider: PolicyDecider
    fail_mode: FailMode = FailMode.ACCEPT
    max_request_bytes: int = 65536

    def __post_init__(self) -> None:
        self.inflight = InFlight()
        self.connections: set[PolicyProtocol] = set()
        self.requests = 0
        self.failures = 0

    def failure_reply(self) -> PolicyReply:
        self.failures += 1
        return TEMPFAIL if self.fail_mode is FailMode.TEMPFAIL else DUNNO

    def protocol(self) -> PolicyProtocol:
        return PolicyProtocol(self)

    def close_idle(self) -> None:
        """Shutdown: close connections that have no request in progress."""
        for c in list(self.connections):
            if not c.busy:
                c.close()


class PolicyProtocol(asyncio.Protocol):
    def __init__(self, service: PolicyService) -> None:
        self.service = service
        self.conn = PolicyConnection(max_request_bytes=service.max_request_bytes)
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self._closing = False
        self._task: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass it
        self.service.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.service.connections.discard(self)
        self._closing = True

    def close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        if not self.busy:
            self._drain()

    def eof_received(self) -> bool | None:
        self.conn.receive_data(b"")
        if self.busy:
            return True  # keep the transport until the pending answer is written (_finish closes it)
        self._drain()
        return None

    def _drain(self) -> None:
        # The hot path: one request in, one reply out, per RCPT of every message the relay handles.
        service = self.service
        conn = self.conn
        transport = self.transport
        assert transport is not None
        while not self._closing:
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                # Never echo the reason to the peer: Postfix logs a broken connection and applies
                # smtpd_policy_service_default_action, which is what we want for garbage.
                log.warning("policy protocol error from %s: %s", _peer(transport), exc)
                self.close()
                return
            if event is NEED_DATA:
                return
            if not isinstance(event, PolicyRequest):
                self.close()  # ConnectionClosed
                return
            service.requests += 1
            try:
                result = service.decider.decide(event)
            except Exception:
                log.exception("policy decider failed; answering per fail_mode=%s", service.fail_mode)
                result = service.failure_reply()
            if isinstance(result, PolicyReply):
                transport.write(conn.send(result))
                continue
            # Asynchronous answer: stop reading until it is written so replies stay in order.
            self.busy = True
            service.inflight.begin()
            transport.pause_reading()
            self._task = asyncio.ensure_future(self._finish(result))  # keep a reference: no GC
            return

    async def _finish(self, pending: object) -> None:
        service = self.service
        try:
            reply = await pending  # type: ignore[misc]
            if not isinstance(reply, PolicyReply):
                raise TypeError(f"decider returned {type(reply).__name__}, not PolicyReply")
        except Exception:
            log.exception("policy decider failed; answering per fail_mode=%s", service.fail_mode)
            reply = service.failure_reply()
        finally:
            service.inflight.end()
        self.busy = False
        if self._closing or self.transport is None:
            return
        self.transport.write(self.conn.send(reply))
        self.transport.resume_reading()
        self._drain()


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer) if peer else "unix socket"
