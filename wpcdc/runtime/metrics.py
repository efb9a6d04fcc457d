"""Every metric wpcdc exports, in one place, each with what it is for.

The registry is passed in (``wpcdc run`` creates one and serves it on
``metrics.port``), so tests get a fresh one and nothing is global.
"""

from __future__ import annotations

import errno
import functools
import socket

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from wpcdc.core.errors import ConfigError


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
            "wpcdc_unacknowledged_change_age_seconds",
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
        # Trouble: each restart replays from the checkpoint (duplicates keep their ids).
        self.restarts = counter(
            "wpcdc_pipeline_restarts_total",
            "Times the pipeline was rebuilt from the checkpoint after an error.",
            ["reason"],
        )

    def serve(self, host: str, port: int) -> None:
        """Serve the registry over HTTP on ``host:port`` (``/metrics``), in a thread.

        Raises ConfigError (one line, exit 2) when the address cannot be used."""
        try:
            start_http_server(port, host, registry=self.registry)
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
