"""The sink's producer: building it, starting it with backoff, closing it without waiting.

This module owns the life of the aiokafka producer that :class:`~wpcdc.kafka.sink.KafkaSink`
produces with: building it from the settings (plain or transactional options,
:mod:`wpcdc.kafka.options`, :mod:`wpcdc.kafka.transactions`), connecting with
backoff until a deadline, opening the first transaction, aborting the open
transaction and closing a producer whose broker no longer answers, and how an
aiokafka error reads in a message. What to send and what an acknowledgement
means stay with the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import BrokerResponseError, KafkaError

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import BrokerUnavailable, ConfigError, DeliveryFailed
from wpcdc.kafka.options import aiokafka_warnings, producer_options
from wpcdc.kafka.transactions import producer_id, refusal, transactional_options

log = logging.getLogger("wpcdc.kafka.sink")

_START_BACKOFF_FIRST: Final = 0.2
_START_BACKOFF_MAX: Final = 5.0
# After the flush: closing sends nothing more, it only ends the in-flight requests.
CLOSE_GRACE: Final = 2.0


async def start_producer(
    settings: KafkaSettings, *, transactional_id: str | None, timeout: float
) -> AIOKafkaProducer:
    """A started producer (in an open transaction when ``transactional_id`` is
    given), connecting with backoff for up to ``timeout`` seconds.

    Raises BrokerUnavailable naming the bootstrap servers when no broker
    answers in time, ConfigError when the TLS files or the compression library
    are missing, and the refusal of :mod:`wpcdc.kafka.transactions` when the
    broker answers without transactions.
    """
    deadline = time.monotonic() + timeout
    delay = _START_BACKOFF_FIRST
    attempts = 0
    with aiokafka_warnings() as reasons:
        while True:
            attempts += 1
            producer = _new_producer(settings, transactional_id)
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                await asyncio.wait_for(producer.start(), remaining)
            except asyncio.CancelledError:
                # The caller gave up (a stop while the broker is unreachable).
                await close_quietly(producer)
                raise
            except (KafkaError, OSError, TimeoutError) as exc:
                await close_quietly(producer)
                if transactional_id is not None and _refused(exc):
                    # No retry gives a broker transactions it does not have.
                    raise refusal(
                        exc, settings=settings, transactional_id=transactional_id
                    ) from None
                if time.monotonic() + delay >= deadline:
                    raise BrokerUnavailable(
                        f"no Kafka broker answered at {settings.bootstrap_servers} "
                        f"within {timeout:g} s ({attempts} attempts; "
                        f"last: {describe(exc, reasons)}); check kafka.bootstrap_servers "
                        "and that the broker is running and reachable"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, _START_BACKOFF_MAX)
                reasons.clear()
                continue
            break
    if transactional_id is not None:
        await _begin(producer, settings, transactional_id)
    return producer


async def _begin(
    producer: AIOKafkaProducer, settings: KafkaSettings, transactional_id: str
) -> None:
    """Get the producer id (refusing a broker without transactions), open the first
    transaction."""
    try:
        await producer_id(producer, settings=settings, transactional_id=transactional_id)
        await producer.begin_transaction()
    except BaseException:
        await close_quietly(producer)
        raise


def _new_producer(settings: KafkaSettings, transactional_id: str | None) -> AIOKafkaProducer:
    if transactional_id is not None:
        options = transactional_options(settings, transactional_id)
    else:
        options = producer_options(settings)
    try:
        return AIOKafkaProducer(**options)
    except OSError as exc:
        raise ConfigError(f"kafka.tls: {exc}") from None
    except RuntimeError as exc:
        # aiokafka checks for the compression library when it is built.
        raise ConfigError(
            f"kafka.compression = {settings.compression!r} cannot be used: {exc}; "
            "install the codec's library or choose gzip"
        ) from None


async def abort_transaction(producer: AIOKafkaProducer) -> None:
    """Abort what the open transaction holds, when it holds anything (a failure, a
    stop before the last commit), so that read_committed consumers are not held
    back until the next producer with the id fences this one. Best effort."""
    manager = producer._txn_manager
    if manager is None:
        return
    if manager.is_fatal_error():
        # Fenced: aiokafka failed its own transaction future, which nobody
        # awaits ("Future exception was never retrieved" at exit otherwise).
        waiter = manager._transaction_waiter
        if waiter.done() and not waiter.cancelled():
            waiter.exception()
        return
    if not manager.is_in_transaction() or manager.is_empty_transaction():
        return
    try:
        await asyncio.wait_for(producer.abort_transaction(), CLOSE_GRACE)
    except (KafkaError, TimeoutError) as exc:
        log.warning("Kafka sink: the open transaction was not aborted: %s", describe(exc))


async def abort(producer: AIOKafkaProducer) -> None:
    """Close a producer without waiting for the broker, leaving no task behind.

    Abandoned instead, its sender task (and the drain task a timed-out stop()
    started) would still be pending when the loop closes ("Task was destroyed
    but it is pending!", seen after broker outages). aiokafka has no public
    abort: its batches are failed, its connections closed (so the in-flight
    requests end at once), then its sender task is cancelled and awaited.
    """
    gone = DeliveryFailed("the sink stopped before the broker acknowledged the record")
    with contextlib.suppress(Exception):
        producer._message_accumulator.fail_all(gone)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.client.close(), CLOSE_GRACE)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer._sender.close(), CLOSE_GRACE)
    # stop() does nothing more once this is set; the connections are closed.
    producer._closed = True


def _refused(exc: BaseException) -> bool:
    """An answer of the broker (not a connection failure) to the producer id request."""
    return isinstance(exc, BrokerResponseError)


async def close_quietly(client: AIOKafkaProducer | AIOKafkaAdminClient) -> None:
    close = client.stop if isinstance(client, AIOKafkaProducer) else client.close
    with contextlib.suppress(Exception):
        await close()


def describe(exc: BaseException, reasons: list[str] | None = None) -> str:
    """An aiokafka error for a message, with the reasons aiokafka only logged."""
    name, text = type(exc).__name__, str(exc)
    # aiokafka's errors already start with their class name.
    described = text if text.startswith(name) else (f"{name}: {text}" if text else name)
    if reasons:
        # aiokafka only logs why each bootstrap server failed (refused, TLS, SASL).
        described += f" ({'; '.join(list(dict.fromkeys(reasons))[-3:])})"
    return described
