"""Transactions on the broker (``kafka.exactly_once``): getting a producer id, fencing, refusals.

This module owns what a transactional producer needs from the broker before
it may send: the producer id for its ``transactional_id`` (Kafka's
InitProducerId). Getting it also *fences*: the broker bumps the id's epoch,
aborts the transaction a previous producer with the same id left open (a
``wpcdc run`` killed -9) or finishes one it was committing, and from then on
refuses the previous producer (aiokafka's ``ProducerFenced``). The run calls
:func:`fence_previous` before it reads the checkpoint back, so that what it
reads (``read_committed``) is final: no transaction of an earlier run can
still commit after the read.

A broker without transactions is refused here, loudly (promise "loud
failure"): the Tansu broker answers InitProducerId with UnknownError; older or
restricted brokers with UnsupportedVersion or an authorization error
(:func:`refusal`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    BrokerResponseError,
    KafkaConnectionError,
    KafkaError,
    TransactionalIdAuthorizationFailed,
)
from aiokafka.errors import (
    ProducerFenced as AioProducerFenced,
)

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import (
    BrokerUnavailable,
    ConfigError,
    PreflightFailed,
    ProducerFenced,
    WpcdcError,
)
from wpcdc.kafka.options import aiokafka_warnings, producer_options

# Kafka's own default transaction.timeout.ms is 60 s; a run killed -9 leaves its
# transaction open until the next run fences it, or until this passes.
TRANSACTION_TIMEOUT_MS: Final = 60_000

_WHAT_TO_DO: Final = (
    "kafka.exactly_once needs a broker with transactions (Apache Kafka, Redpanda, "
    "noida-db...); point kafka.bootstrap_servers at one, or set kafka.exactly_once = false "
    "(at-least-once: event ids make replays recognisable)"
)


def transactional_options(settings: KafkaSettings, transactional_id: str) -> dict[str, Any]:
    """AIOKafkaProducer keyword arguments of the transactional producer: the sink's
    (:func:`~wpcdc.kafka.options.producer_options`) with idempotence and the id."""
    return {
        **producer_options(settings),
        "enable_idempotence": True,
        "transactional_id": transactional_id,
        "transaction_timeout_ms": TRANSACTION_TIMEOUT_MS,
    }


def refusal(exc: BaseException, *, settings: KafkaSettings, transactional_id: str) -> WpcdcError:
    """What a failed InitProducerId means for the operator."""
    where = settings.bootstrap_servers
    if isinstance(exc, AioProducerFenced):
        return fenced(transactional_id, exc)
    if isinstance(exc, KafkaConnectionError | TimeoutError | OSError):
        return BrokerUnavailable(
            f"no producer id for transactional id {transactional_id!r} from {where} "
            f"within {settings.request_timeout:g} s ({_describe(exc)}); check that the "
            "broker is running and that its transaction coordinator is available"
        )
    if isinstance(exc, TransactionalIdAuthorizationFailed):
        return PreflightFailed(
            f"the broker at {where} does not allow transactional id {transactional_id!r}: "
            "grant the principal Write and Describe on it (ACL resource TransactionalId), "
            "or set kafka.transactional_id to an id it may use"
        )
    return PreflightFailed(
        f"the broker at {where} cannot do transactions: it answered InitProducerId for "
        f"transactional id {transactional_id!r} with {_describe(exc)}. {_WHAT_TO_DO}"
    )


def fenced(transactional_id: str, exc: BaseException | None = None) -> ProducerFenced:
    detail = f" ({_describe(exc)})" if exc is not None else ""
    return ProducerFenced(
        f"another producer with transactional id {transactional_id!r} started{detail}: "
        "another `wpcdc run` streams from the same checkpoint. This one stops without "
        "retrying; run one instance per checkpoint (or set kafka.transactional_id)"
    )


async def producer_id(
    producer: AIOKafkaProducer, *, settings: KafkaSettings, transactional_id: str
) -> None:
    """Wait until the started ``producer`` has its producer id; raises what
    :func:`refusal` says when the broker does not give one."""
    manager = producer._txn_manager
    if manager is None:
        raise RuntimeError("producer_id() of a producer that is not transactional")
    try:
        await asyncio.wait_for(manager.wait_for_pid(), settings.request_timeout)
    except (KafkaError, TimeoutError, OSError) as exc:
        raise refusal(exc, settings=settings, transactional_id=transactional_id) from None


async def fence_previous(settings: KafkaSettings, transactional_id: str) -> None:
    """Get the id's producer id once and let go: any producer of an earlier run
    with this id is fenced, and its open transaction ended (aborted, or committed
    when it was being committed), before the checkpoint is read back. Raises
    PreflightFailed when the broker has no transactions, BrokerUnavailable when
    it does not answer."""
    with aiokafka_warnings() as reasons:
        try:
            producer = AIOKafkaProducer(**transactional_options(settings, transactional_id))
        except OSError as exc:
            raise ConfigError(f"kafka.tls: {exc}") from None
        try:
            try:
                # aiokafka asks for the producer id while it starts: a broker without
                # transactions already fails here.
                await asyncio.wait_for(producer.start(), settings.request_timeout)
            except BrokerResponseError as exc:
                raise refusal(exc, settings=settings, transactional_id=transactional_id) from None
            except (KafkaError, TimeoutError, OSError) as exc:
                detail = "; ".join(dict.fromkeys(reasons)) or _describe(exc)
                raise BrokerUnavailable(
                    f"no Kafka broker answered at {settings.bootstrap_servers}: {detail}; "
                    "check kafka.bootstrap_servers"
                ) from None
            await producer_id(producer, settings=settings, transactional_id=transactional_id)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5.0)


def _describe(exc: BaseException) -> str:
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else (f"{name}: {text}" if text else name)
