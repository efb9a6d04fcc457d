"""Every metric wpcdc exports, in one place, each with what it is for, and the
HTTP endpoint that serves them with the probes.

The registry is passed in (``wpcdc run`` creates one and serves it on
``metrics.port``), so tests get a fresh one and nothing is global. The same
port answers ``/healthz`` and ``/readyz`` (:mod:`wpcdc.runtime.health`):
prometheus_client's own server serves nothing but metrics, so its WSGI app
runs inside a small threaded WSGI server with the probes beside it.
"""

from __future__ import annotations

import errno
import functools
import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app

from wpcdc.core.errors import ConfigError
from wpcdc.runtime.health import Health, Verdict

# The paths the probes answer on; deploy/ and tests check them against these.
HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
UNACKNOWLEDGED_AGE = "wpcdc_unacknowledged_change_age_seconds"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        counter = functools.partial(Counter, registry=registry)
        gauge = functools.partial(Gauge, registry=registry)
        # Throughput, by table kind: compare with the binlog's own rate.
        self.row_changes = counter(
            "wpcdc_row_changes_total", "Row changes read from the binlog.", ["table"]
        )
        # Transactions read from the binlog, counted at their commit.
        self.transactions = counter(
            "wpcdc_transactions_total", "Transactions read from the binlog."
        )
        # What consumers receive, by event type; counted once acknowledged.
        self.events = counter("wpcdc_events_total", "Events produced and acknowledged.", ["type"])
        # The oversize policy at work: each one lost content (see README).
        self.oversize = counter(
            "wpcdc_oversize_events_total", "Events shrunk to fit kafka.max_message_bytes.", ["type"]
        )
        # Meta values that looked PHP-serialized but did not decode (sent raw).
        self.meta_decode_errors = counter(
            "wpcdc_meta_decode_errors_total", "Meta values sent raw because they did not decode."
        )
        # Freshness: now minus this is how far behind the database the stream is.
        self.last_commit = gauge(
            "wpcdc_last_commit_timestamp_seconds",
            "Commit time of the last transaction read from the binlog.",
        )
        # Freshness as a consumer feels it: the age of the oldest change read but
        # not yet acknowledged by the broker (0 when the topic is up to date).
        self.unacknowledged_age = gauge(
            UNACKNOWLEDGED_AGE,
            "Seconds since the commit of the oldest change not yet acknowledged on the topic.",
        )
        # Work held in memory, bounded by fold.max_open_groups...
        self.open_groups = gauge("wpcdc_open_groups", "Fold groups waiting to close.")
        # ...and by fold.max_open_bytes (an estimate of the row images held).
        self.open_bytes = gauge(
            "wpcdc_open_group_bytes", "Estimated bytes of row images held by open fold groups."
        )
        # Work waiting for the broker; it holds the checkpoint back.
        self.in_flight = gauge(
            "wpcdc_in_flight_groups",
            "Closed groups with events not yet acknowledged by the broker.",
        )
        # Progress that survives a restart: the saved checkpoint's binlog file...
        self.checkpoint_file = gauge(
            "wpcdc_checkpoint_file_index", "Binlog file number of the saved checkpoint."
        )
        # ...and its byte offset in that file.
        self.checkpoint_pos = gauge(
            "wpcdc_checkpoint_position", "Byte offset of the saved checkpoint in its binlog file."
        )
        # A checkpoint that stops moving while row changes are read means a stuck ack.
        self.checkpoint_saved = gauge(
            "wpcdc_checkpoint_saved_timestamp_seconds", "When the checkpoint was last saved."
        )
        # Standby failover (ha.enabled): 1 while this process holds the lead and
        # streams, 0 while it stands by; without ha.enabled, 1 while it runs.
        self.leader = gauge("wpcdc_leader", "1 while this process holds the lead.")
        # Trouble: each restart replays from the checkpoint (duplicates keep their ids).
        self.restarts = counter(
            "wpcdc_pipeline_restarts_total",
            "Times the pipeline was rebuilt from the checkpoint after an error.",
            ["reason"],
        )

    def unacknowledged_age_seconds(self) -> float:
        """The gauge's current value, for readiness."""
        return self.registry.get_sample_value(UNACKNOWLEDGED_AGE) or 0.0

    def serve(self, host: str, port: int, health: Health | None = None) -> WSGIServer:
        """Serve the registry over HTTP on ``host:port`` (``/metrics``, and the probes
        when ``health`` is given), in a daemon thread; returns the server (its
        ``server_port`` is the port, useful with port 0 in tests).

        Raises ConfigError (one line, exit 2) when the address cannot be used."""
        try:
            family, address = _best_family(host, port)

            class Server(_ThreadingServer):
                address_family = family

            server = make_server(
                address, port, endpoint(self.registry, health), Server, handler_class=_Quiet
            )
        except socket.gaierror as exc:
            raise ConfigError(
                f"metrics.host {host!r} cannot be resolved ({exc.strerror}): set it to an "
                "address of this machine, e.g. 127.0.0.1, or 0.0.0.0 in a container"
            ) from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                reason = f"port {port} is already in use on {host}"
            else:
                reason = f"cannot listen on {host}:{port} ({exc.strerror or exc})"
            raise ConfigError(
                f"metrics: {reason}. Set metrics.port to a free port (0 turns the "
                "endpoint off) or metrics.host to an address of this machine"
            ) from None
        threading.Thread(target=server.serve_forever, name="wpcdc-metrics", daemon=True).start()
        return server


def endpoint(registry: CollectorRegistry, health: Health | None) -> WsgiApp:
    """The WSGI app of the metrics port: the probes, everything else to prometheus."""
    metrics_app: WsgiApp = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if health is not None and path in (HEALTHZ_PATH, READYZ_PATH):
            verdict = health.liveness() if path == HEALTHZ_PATH else health.readiness()
            return _answer(verdict, start_response)
        return metrics_app(environ, start_response)

    return app


def _answer(verdict: Verdict, start_response: StartResponse) -> list[bytes]:
    body = json.dumps(verdict.body).encode() + b"\n"
    status = "200 OK" if verdict.ok else "503 Service Unavailable"
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    # A slow scraper must not hold a probe up; daemon threads are not joined at exit.
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would drown the log: log nothing."""


def _best_family(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    """IPv4 or IPv6, whichever ``host`` is (WSGIServer assumes IPv4)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0])
