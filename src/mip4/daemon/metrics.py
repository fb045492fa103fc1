"""The Prometheus endpoint of a daemon (``[metrics] listen``, issue 15).

Theory of operation
-------------------
Every scrape reads the daemon's status snapshot (the dict ``mip4 status --json`` prints)
through :class:`StatusCollector`, on the daemon's event loop, so the numbers are those of
``mip4 status`` at that instant and no engine state is read from another thread:

========================================  ==================================================
metric                                    from the status snapshot
========================================  ==================================================
``mip4_registrations_total``              ``counters.accepted`` / ``counters.denied``
                                          (labels ``result``, ``code``, ``reason``)
``mip4_discards_total``                   ``counters.discarded`` (label ``reason``)
``mip4_retransmissions_total``            ``counters.events.retransmissions`` (mobile node)
``mip4_events_total``                     ``counters.events`` (label ``event``)
``mip4_bindings``                         ``home_agent.bindings`` (gauge)
``mip4_visitors``, ``mip4_pending``       ``foreign_agent.visitors`` / ``.pending`` (gauges)
``mip4_registered``                       ``mobile_node.registered`` (gauge, 0 or 1)
``mip4_tunnel_packets_total``, ``_bytes`` ``counters.tunnel`` (label ``direction``: rx, tx)
``mip4_forwarder_total``                  ``counters.forwarder`` (label ``what``)
``mip4_uptime_seconds``, ``mip4_info``    ``uptime``; ``role``, ``name``, ``version``
========================================  ==================================================

and one histogram the snapshot does not hold, ``mip4_registration_latency_seconds``, fed
from the engine's log actions (:meth:`Metrics.on_log`): a home agent's time from the
request datagram to its reply sent (:meth:`Metrics.observe`, timed by the daemon's driver),
a foreign agent's time from relaying a request to relaying its reply (``fa.request_relayed``
→ ``fa.reply_relayed``, per home address), a mobile node's round trip from its first
request (``mn.request``) to the reply (``mn.reply``).

:class:`MetricsServer` answers ``GET /metrics`` (HTTP/1.0, one response per connection)
with ``asyncio.start_server`` on the configured address (text format 0.0.4, or OpenMetrics
when the ``Accept`` header asks for it); anything else gets 404.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import Collector

__all__ = ["LATENCY_BUCKETS", "Metrics", "MetricsServer", "StatusCollector"]

#: Seconds: a home agent answers in well under a millisecond; a round trip through a
#: foreign agent across a WAN takes tens to hundreds of milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def _split_code(key: str) -> tuple[str, str]:
    """``"133 ha_identification_mismatch"`` -> ``("133", "ha_identification_mismatch")``."""
    code, _, reason = key.partition(" ")
    return code, reason


#: ``mip4_fast_path_total{path}``: label -> the status snapshot's counter
FAST_PATHS = (
    ("renewal", "fast_renewals"),
    ("first_registration", "fast_first_registrations"),
    ("relayed_request", "fast_relayed_requests"),
    ("relayed_reply", "fast_relayed_replies"),
    ("kernel_relayed_request", "kernel_relayed_requests"),
    ("kernel_relayed_reply", "kernel_relayed_replies"),
)


class StatusCollector(Collector):
    """Metric families built from one status snapshot per scrape."""

    def __init__(self, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot()
        c: Mapping[str, Any] = s.get("counters", {})
        info = GaugeMetricFamily(
            "mip4_info", "The daemon: role, name, version.", labels=["role", "name", "version"]
        )
        info.add_metric([str(s.get("role")), str(s.get("name")), str(s.get("version"))], 1)
        yield info
        yield GaugeMetricFamily("mip4_uptime_seconds", "Seconds since start.", s.get("uptime", 0))
        regs = CounterMetricFamily(
            "mip4_registrations",
            "Registration replies by code (sent by an agent, received by a mobile node).",
            labels=["result", "code", "reason"],
        )
        for result in ("accepted", "denied"):
            for key, n in sorted(c.get(result, {}).items()):
                regs.add_metric([result, *_split_code(key)], n)
        yield regs
        discards = CounterMetricFamily(
            "mip4_discards", "Silently discarded messages by reason.", labels=["reason"]
        )
        for reason, n in sorted(c.get("discarded", {}).items()):
            discards.add_metric([reason], n)
        yield discards
        events: Mapping[str, int] = c.get("events", {})
        yield CounterMetricFamily(
            "mip4_retransmissions",
            "Registration requests retransmitted (RFC 5944 §3.6.3).",
            events.get("retransmissions", 0),
        )
        ev = CounterMetricFamily("mip4_events", "Engine events by name.", labels=["event"])
        for name, n in sorted(events.items()):
            ev.add_metric([name], n)
        yield ev
        if "home_agent" in s:
            yield GaugeMetricFamily(
                "mip4_bindings", "Mobility bindings.", len(s["home_agent"]["bindings"])
            )
        fast = CounterMetricFamily(
            "mip4_fast_path",
            "What the engine's fast paths handled, by path (issue 13; no MIB object): a home"
            " agent's renewals and first registrations answered, a foreign agent's requests"
            " and replies relayed -- a subset of the registration counts.",
            labels=["path"],
        )
        for path, key in FAST_PATHS:
            if key in c:
                fast.add_metric([path], c[key])
        yield fast
        if "foreign_agent" in s:
            fa = s["foreign_agent"]
            yield GaugeMetricFamily("mip4_visitors", "Visitor list entries.", len(fa["visitors"]))
            yield GaugeMetricFamily(
                "mip4_pending", "Relayed requests awaiting a reply.", len(fa["pending"])
            )
        if "mobile_node" in s:
            yield GaugeMetricFamily(
                "mip4_registered",
                "1 when the mobile node holds a binding.",
                int(bool(s["mobile_node"]["registered"])),
            )
        tunnel: Mapping[str, int] = c.get("tunnel", {})
        for unit in ("packets", "bytes"):
            fam = CounterMetricFamily(
                f"mip4_tunnel_{unit}",
                f"TUN device {unit} (rx: into the tunnel, tx: decapsulated).",
                labels=["direction"],
            )
            for direction in ("rx", "tx"):
                if f"{direction}_{unit}" in tunnel:
                    fam.add_metric([direction], tunnel[f"{direction}_{unit}"])
            yield fam
        fwd = CounterMetricFamily(
            "mip4_forwarder", "User-space tunnel forwarder counters.", labels=["what"]
        )
        for what, n in sorted(c.get("forwarder", {}).items()):
            fwd.add_metric([what], n)
        yield fwd


class Metrics:
    """The daemon's registry: the status collector and the latency histogram."""

    def __init__(self, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StatusCollector(snapshot))
        self.latency = Histogram(
            "mip4_registration_latency_seconds",
            "Registration latency: agent request-to-reply, mobile node round trip.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._started: dict[str, float] = {}

    def observe(self, seconds: float) -> None:
        self.latency.observe(max(0.0, seconds))

    def on_log(self, event: str, fields: Mapping[str, object], now: float) -> None:
        """Feed one engine log action (``now``: monotonic seconds)."""
        if event == "mn.request":
            self._started.setdefault("mn", now)  # retransmissions keep the first send
        elif event == "mn.reply":
            t = self._started.pop("mn", None)
            if t is not None:
                self.observe(now - t)
        elif event == "fa.request_relayed":
            self._started[f"fa {fields.get('home_address')}"] = now
        elif event == "fa.reply_relayed":
            t = self._started.pop(f"fa {fields.get('home_address')}", None)
            if t is not None:
                self.observe(now - t)
        if len(self._started) > 10000:  # requests never answered: bounded memory
            self._started.clear()

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition for an ``Accept`` header: (body, content type); text format
        0.0.4 by default, OpenMetrics when the scraper asks for it."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def text(self) -> str:
        return generate_latest(self.registry).decode()


class MetricsServer:
    """``GET /metrics`` on ``address`` from the running event loop."""

    def __init__(self, metrics: Metrics, address: tuple[str, int]) -> None:
        self.metrics = metrics
        self.address = address
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        host, port = self.address
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, _, rest = request.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            accept = ""
            for line in request.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"accept":
                    accept = value.strip().decode("latin-1")
            if method in (b"GET", b"HEAD") and path == b"/metrics":
                body, content_type = self.metrics.render(accept)
                head = f"HTTP/1.0 200 OK\r\nContent-Type: {content_type}\r\n"
            else:
                body = b"not found\n"
                head = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + (body if method != b"HEAD" else b""))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
