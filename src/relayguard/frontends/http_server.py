"""Rspamd-compatible HTTP front end (Starlette on uvicorn): /checkv2 /learnspam /learnham /ping /metrics.

`rspamc -h host:port` works unchanged against it, and so does anything that speaks Rspamd's protocol v2
(Rspamd's own proxy in self-scan=false mode, Haraka's rspamd plugin, ...). The request body is read
with a bound (413 beyond `max_message_bytes`) before anything parses it.

Fail modes: when scanning fails, `accept` answers action "no action" with score 0, `tempfail` answers
"soft reject" (a 4xx at the MTA); the reply carries no detail of the failure, and the status is 200 so
the client uses the action rather than its own error path. Learning failures answer 500 with a fixed text.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from relayguard.core.actions import Action
from relayguard.frontends.listen import InFlight
from relayguard.frontends.result_headers import result_headers, spam_threshold
from relayguard.frontends.scan import LearnUnavailable, ScanFailed, Scanner
from relayguard.frontends.settings import FailMode, HttpSettings
from relayguard.message.facts import Envelope
from relayguard.protocols import rspamd_http as rh
from relayguard.protocols.errors import RemoteProtocolError

log = logging.getLogger("relayguard.frontends.http")


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise BodyTooLarge
    return bytes(buf)


def _multi_headers(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in request.headers.items():
        out.setdefault(k.lower(), []).append(v)
    return out


@dataclass
class HttpService:
    scanner: Scanner
    settings: HttpSettings
    stats: Callable[[], dict[str, dict[str, int]]] = field(default=lambda: {})
    inflight: InFlight = field(default_factory=InFlight)
    counts: dict[str, int] = field(default_factory=dict)

    def authserv_id(self) -> str:
        """Authentication-Results authserv-id: [frontends.milter] authserv_id, else this host's name."""
        fs = self.scanner.settings.frontends
        configured = getattr(getattr(fs, "milter", None), "authserv_id", "")
        return configured or socket.gethostname()

    def thresholds(self) -> dict[str, float]:
        a = self.scanner.settings.actions
        pairs = {
            "reject": a.reject, "soft reject": a.soft_reject, "rewrite subject": a.rewrite_subject,
            "add header": a.add_header, "greylist": a.greylist,
        }  # fmt: skip
        return {k: v for k, v in pairs.items() if v >= 0}

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        self.inflight.begin()
        try:
            yield
        finally:
            self.inflight.end()

    async def checkv2(self, request: Request) -> Response:
        with self._busy():
            t0 = time.perf_counter()
            try:
                body = await read_body(request, self.settings.max_message_bytes)
                req = rh.parse_check_headers(_multi_headers(request))
            except BodyTooLarge:
                return JSONResponse(rh.error_reply("message too large"), status_code=413)
            except RemoteProtocolError:
                return JSONResponse(rh.error_reply("bad request headers"), status_code=400)
            if request.headers.get("compression") or request.headers.get("content-encoding", "identity") != "identity":
                return JSONResponse(rh.error_reply("compressed requests are not supported"), status_code=415)
            env = Envelope(
                mail_from=req.mail_from, rcpt_to=req.rcpt, helo=req.helo, client_ip=req.ip,
                client_rdns=req.hostname, sasl_username=req.user, queue_id=req.queue_id, protocol="http",
            )  # fmt: skip
            try:
                verdict = await self.scanner.scan(body, env)
            except ScanFailed:
                self._count("failed")
                action = Action.SOFT_REJECT if self.settings.fail_mode is FailMode.TEMPFAIL else Action.NO_ACTION
                msg = "Temporary failure in message scanning, try again later" if action is Action.SOFT_REJECT else None
                return JSONResponse(
                    rh.check_reply(
                        score=0.0, required_score=self.scanner.settings.actions.reject, action=str(action),
                        symbols=[], thresholds=self.thresholds(), smtp_message=msg,
                        time_real=time.perf_counter() - t0,
                    )
                )  # fmt: skip
            self._count(str(verdict.action))
            symbols = [rh.SymbolOut(n, s.score, s.description, s.options) for n, s in sorted(verdict.symbols.items())]
            adds = result_headers(
                verdict, self.authserv_id(), req.user,
                spam_threshold(self.scanner.settings.actions),
            )  # fmt: skip
            reject = {Action.DISCARD: "discard", Action.QUARANTINE: "quarantine"}.get(verdict.action)
            milter = rh.milter_block(adds, [n for n, _ in adds if n.startswith("X-Spam")], reject)
            msgid = None
            for line in body[:65536].split(b"\n"):
                if not line.strip():
                    break
                if line.lower().startswith(b"message-id:"):
                    msgid = line[11:].strip().decode("utf-8", "replace")
                    break
            return JSONResponse(
                rh.check_reply(
                    score=verdict.score, required_score=verdict.required_score, action=str(verdict.action),
                    symbols=symbols, thresholds=self.thresholds(), message_id=msgid,
                    smtp_message=verdict.message, milter=milter, time_real=time.perf_counter() - t0,
                )
            )  # fmt: skip

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    async def _learn(self, request: Request, is_spam: bool) -> Response:
        with self._busy():
            try:
                body = await read_body(request, self.settings.max_message_bytes)
            except BodyTooLarge:
                return JSONResponse(rh.error_reply("message too large"), status_code=413)
            try:
                result = self.scanner.learn(body, is_spam)
            except LearnUnavailable:
                return JSONResponse(rh.error_reply("no classifier configured"), status_code=404)
            except ScanFailed:
                return JSONResponse(rh.error_reply("learning failed, try again later"), status_code=500)
            if result == "unchanged":
                # Rspamd answers 208 when the message was already learned with this class.
                return JSONResponse(rh.error_reply("already learned"), status_code=208)
            return JSONResponse({"success": True, "result": result})

    async def learnspam(self, request: Request) -> Response:
        return await self._learn(request, True)

    async def learnham(self, request: Request) -> Response:
        return await self._learn(request, False)

    async def ping(self, request: Request) -> Response:
        return PlainTextResponse("pong\r\n")

    async def metrics(self, request: Request) -> Response:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_StatsCollector(self))
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/checkv2", self.checkv2, methods=["POST"]),
                Route("/learnspam", self.learnspam, methods=["POST"]),
                Route("/learnham", self.learnham, methods=["POST"]),
                Route("/ping", self.ping, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
            ]
        )


class _StatsCollector(Collector):
    """Reads the live counters of every front end at scrape time (nothing is counted twice)."""

    def __init__(self, service: HttpService) -> None:
        self.service = service

    def collect(self) -> Iterator[Any]:
        msgs = CounterMetricFamily("relayguard_http_checks", "HTTP /checkv2 results by action", labels=["action"])
        for action, n in sorted(self.service.counts.items()):
            msgs.add_metric([action], n)
        yield msgs
        stats = self.service.stats()
        for frontend, values in sorted(stats.items()):
            for name, n in sorted(values.items()):
                if name == "inflight":
                    g = GaugeMetricFamily(f"relayguard_{frontend}_inflight", f"{frontend} transactions in flight")
                    g.add_metric([], n)
                    yield g
                else:
                    c = CounterMetricFamily(f"relayguard_{frontend}_{name}", f"{frontend} {name}")
                    c.add_metric([], n)
                    yield c
        scanned = CounterMetricFamily("relayguard_scans", "Messages scanned (all front ends)", labels=["outcome"])
        scanned.add_metric(["ok"], self.service.scanner.scanned)
        scanned.add_metric(["failed"], self.service.scanner.failed)
        yield scanned

