"""Every metric wpcdc exports, in one place, each with what it is for.

The registry is passed in (``wpcdc run`` creates one and serves it on
``metrics.port``), so tests get a fresh one and nothing is global.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # Throughput, by table kind: compare with the binlog's own rate.
        self.row_changes = Counter(
            "wpcdc_row_changes_total",
            "Row changes read from the binlog.",
            ["table"],
            registry=registry,
        )
        # Transactions read from the binlog, counted at their commit.
        self.transactions = Counter(
            "wpcdc_transactions_total", "Transactions read from the binlog.", registry=registry
        )
        # What consumers receive, by event type; counted once acknowledged.
        self.events = Counter(
            "wpcdc_events_total", "Events produced and acknowledged.", ["type"], registry=registry
        )
        # The oversize policy at work: each one lost content (see README).
        self.oversize = Counter(
            "wpcdc_oversize_events_total",
            "Events shrunk to fit kafka.max_message_bytes.",
            ["type"],
            registry=registry,
        )
        # Meta values that looked PHP-serialized but did not decode (sent raw).
        self.meta_decode_errors = Counter(
            "wpcdc_meta_decode_errors_total", "Meta values sent raw because they did not decode.",
            registry=registry,
        )  # fmt: skip
        # Freshness: now minus this is how far behind the database the stream is.
        self.last_commit = Gauge(
            "wpcdc_last_commit_timestamp_seconds",
            "Commit time of the last transaction read from the binlog.",
            registry=registry,
        )
        # Work held in memory, bounded by fold.max_open_groups.
        self.open_groups = Gauge(
            "wpcdc_open_groups", "Fold groups waiting to close.", registry=registry
        )
        # Work waiting for the broker; it holds the checkpoint back.
        self.in_flight = Gauge(
            "wpcdc_in_flight_groups",
            "Closed groups with events not yet acknowledged by the broker.",
            registry=registry,
        )
        # Progress that survives a restart: the saved checkpoint's binlog file...
        self.checkpoint_file = Gauge(
            "wpcdc_checkpoint_file_index", "Binlog file number of the saved checkpoint.",
            registry=registry,
        )  # fmt: skip
        # ...and its byte offset in that file.
        self.checkpoint_pos = Gauge(
            "wpcdc_checkpoint_position", "Byte offset of the saved checkpoint in its binlog file.",
            registry=registry,
        )  # fmt: skip
        # A checkpoint that stops moving while row changes are read means a stuck ack.
        self.checkpoint_saved = Gauge(
            "wpcdc_checkpoint_saved_timestamp_seconds", "When the checkpoint was last saved.",
            registry=registry,
        )  # fmt: skip
        # Trouble: each restart replays from the checkpoint (duplicates keep their ids).
        self.restarts = Counter(
            "wpcdc_pipeline_restarts_total",
            "Times the pipeline was rebuilt from the checkpoint after an error.",
            ["reason"],
            registry=registry,
        )

    def serve(self, host: str, port: int) -> None:
        """Serve the registry over HTTP on ``host:port`` (``/metrics``), in a thread."""
        start_http_server(port, host, registry=self.registry)
