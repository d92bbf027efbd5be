"""`dnsbl serve --metrics HOST:PORT`: Prometheus text at /metrics (and `pong` at /ping).

Everything is read from the running server at scrape time: the per-socket counters its UDP threads keep
without locks, the TCP counter, reload and live-refresh outcomes, and each served zone's entries and
SOA serial (what a mirror operator checks first when answers look stale).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from relayguard.core.http_endpoint import Endpoint, UvicornServer

if TYPE_CHECKING:
    from relayguard.dnsbl.server import DnsblServer


class DnsblCollector(Collector):
    def __init__(self, server: DnsblServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        srv = self.server
        q = CounterMetricFamily("relayguard_dnsbl_queries", "DNS queries received", labels=["transport"])
        q.add_metric(["udp"], sum(u.queries for u in srv.udp))
        q.add_metric(["tcp"], srv.tcp_queries)
        yield q
        yield CounterMetricFamily("relayguard_dnsbl_compiled_answers", "UDP queries answered by the compiled engine",
                                  value=sum(u.compiled for u in srv.udp))
        socks = GaugeMetricFamily("relayguard_dnsbl_udp_sockets", "UDP sockets served, by answering path",
                                  labels=["path"])
        socks.add_metric(["compiled"], sum(1 for u in srv.udp if u.native))
        socks.add_metric(["python"], sum(1 for u in srv.udp if not u.native))
        yield socks
        yield GaugeMetricFamily("relayguard_dnsbl_tcp_clients", "TCP clients connected", value=srv.tcp_clients)
        yield CounterMetricFamily("relayguard_dnsbl_reloads", "Data file reloads swapped in",
                                  value=srv.catalog.reloads)
        yield CounterMetricFamily("relayguard_dnsbl_reload_failures",
                                  "Reloads that failed (the previous data kept answering)", value=srv.reload_failures)
        yield CounterMetricFamily("relayguard_dnsbl_live_refresh_failures",
                                  "Live-listing refreshes that failed (the previous listings kept answering)",
                                  value=srv.live_failures)
        entries = GaugeMetricFamily("relayguard_dnsbl_zone_entries", "Entries served per zone", labels=["zone"])
        serial = GaugeMetricFamily("relayguard_dnsbl_zone_serial", "SOA serial per zone", labels=["zone"])
        for z in srv.catalog.zoneset.zones:
            name = z.name or "."
            entries.add_metric([name], sum(ds.count() for ds in z.datasets))
            serial.add_metric([name], z.serial)
        yield entries
        yield serial


def metrics_app(server: DnsblServer) -> Starlette:
    async def metrics(request: Request) -> Response:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DnsblCollector(server))
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def ping(request: Request) -> Response:
        return PlainTextResponse("pong\r\n")

    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"]), Route("/ping", ping, methods=["GET"])])


def metrics_server(server: DnsblServer, addr: Endpoint) -> UvicornServer:
    """The /metrics endpoint of server at addr; start() and stop() it on the server's event loop."""
    return UvicornServer(metrics_app(server), addr)
