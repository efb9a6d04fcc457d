"""How every wpcdc Kafka client connects, and what aiokafka says when it cannot.

This module owns the keyword arguments of the sink's producer, the readers'
consumers and the admin clients: bootstrap servers, client id, TLS context and
SASL credentials all come from :func:`client_options`; the producer's delivery
guarantees, codec and batch limits from :func:`producer_options` (a codec
whose library is missing is a ConfigError there, before any connection:
:func:`check_compression`). It also captures aiokafka's own warnings
(:func:`aiokafka_warnings`), the only place that says why a bootstrap server
failed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any, Final

from aiokafka.codec import has_gzip, has_lz4, has_snappy, has_zstd

from wpcdc.config.settings import KafkaSettings
from wpcdc.config.tls import client_context
from wpcdc.core.errors import ConfigError
from wpcdc.kafka.codecs import use_compression_level

# aiokafka refuses a record above max_request_size on its own (a
# MessageSizeTooLargeError raised from send()). The sink's own check against
# max_message_bytes runs first and is the one callers see; the headroom only keeps
# aiokafka's identical check from ever being the one that fires.
_REQUEST_SIZE_HEADROOM: Final = 64 * 1024

# What aiokafka needs to compress with each codec (aiokafka/codec.py): gzip is in
# the standard library, the others come from cramjam (a wpcdc dependency, so only
# a stripped install lacks it).
_CODECS: Final = {
    "gzip": (has_gzip, "the standard library's gzip"),
    "lz4": (has_lz4, "cramjam"),
    "zstd": (has_zstd, "cramjam"),
    "snappy": (has_snappy, "cramjam"),
}


def check_compression(settings: KafkaSettings) -> None:
    """Raise ConfigError when ``kafka.compression`` names a codec whose library is
    not installed (aiokafka would only say so when the producer is built)."""
    codec = _CODECS.get(settings.compression)
    if codec is None:
        return  # "none"
    available, library = codec
    if not available():
        raise ConfigError(
            f"kafka.compression = {settings.compression!r} needs {library}, which is not "
            "installed: `pip install cramjam` (a dependency of wpcdc: reinstall wpcdc), "
            'or set kafka.compression = "gzip" or "none"'
        )


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments shared by AIOKafkaProducer, AIOKafkaConsumer and the admin client.

    The result holds the SASL password: never log or print it.
    Raises OSError when a TLS file cannot be loaded.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_list,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": int(settings.request_timeout * 1000),
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        tls = settings.tls
        options["ssl_context"] = client_context(
            ca=tls.ca,
            cert=tls.cert,
            key=tls.key,
            key_password=tls.key_password.get_secret_value() if tls.key_password else None,
            verify_identity=tls.verify_identity,
        )
    if settings.security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.sasl.mechanism
        options["sasl_plain_username"] = settings.sasl.username
        options["sasl_plain_password"] = settings.sasl.password.get_secret_value()
    return options


def producer_options(settings: KafkaSettings) -> dict[str, Any]:
    """AIOKafkaProducer keyword arguments (with the connection's from client_options).

    Ordering: aiokafka has no ``max.in.flight.requests.per.connection`` setting
    because it behaves as if it were 1. Its Sender (aiokafka/producer/sender.py,
    ``Sender._sender_routine``, aiokafka 0.14) drains the accumulator with
    ``drain_by_nodes(ignore_nodes=self._in_flight, muted_partitions=...)``: a node
    with a produce request in flight gets no second one, and every partition in
    that request stays muted until its response is handled
    (``_send_produce_req`` unmutes it). A batch that fails with a retriable
    error is put back at the *head* of its partition's queue
    (``MessageAccumulator.reenqueue`` uses ``appendleft``) after
    ``retry_backoff_ms``. So retries never reorder records within a partition.
    There is no retry count: a batch is retried until it expires,
    ``request_timeout_ms`` after the batch was created
    (``MessageBatch.expired``), and then fails. That is the one way order can
    break: batch A expires and fails while batch B behind it, younger, is
    retried and written. The sink stops taking records after the first failure,
    and the caller replays from its checkpoint, so A is re-sent (after B, with
    the same event id and sequence: consumers deduplicate and reorder).

    Idempotence is off (except with ``kafka.exactly_once``, whose transactional
    producer adds it: :func:`wpcdc.kafka.transactions.transactional_options`):
    the Tansu broker fails ``InitProducerId`` with
    UnknownError, and with idempotence on aiokafka's sender waits for a producer
    id before sending anything (``_maybe_wait_for_pid``), so nothing would ever
    be sent. Ordering does not need it (see above); idempotence would only
    remove the duplicates that retries and replays create, which event ids
    already make recognisable.

    Raises ConfigError when the codec's library is missing (:func:`check_compression`).
    """
    check_compression(settings)
    use_compression_level(settings.compression, settings.compression_level)
    compression = None if settings.compression == "none" else settings.compression
    return {
        **client_options(settings),
        "acks": "all",
        "enable_idempotence": False,
        "compression_type": compression,
        "linger_ms": settings.linger_ms,
        # aiokafka fills a batch up to max_batch_size bytes (uncompressed), and
        # the broker refuses a whole batch above message.max.bytes: a batch must
        # never be allowed to grow past what one record may be.
        "max_batch_size": min(settings.max_batch_bytes, settings.max_message_bytes),
        "max_request_size": settings.max_message_bytes + _REQUEST_SIZE_HEADROOM,
    }


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def aiokafka_warnings() -> Iterator[list[str]]:
    """Capture aiokafka's own warnings instead of letting them reach stderr.

    aiokafka only logs why each bootstrap server failed (refused, TLS, SASL) and
    then raises a bare "Unable to bootstrap"; the logged reason is what an
    operator needs to see.
    """
    logger = logging.getLogger("aiokafka")
    handler = _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
