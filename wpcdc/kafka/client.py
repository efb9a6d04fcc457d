"""The connection to Kafka: client options from settings, and reading broker facts.

This module owns how every wpcdc Kafka client (the sink's producer, ``tail``'s
consumer, the preflight's admin client) connects: bootstrap servers, client id,
TLS context and SASL credentials all come from :func:`client_options`. It also
reads what ``wpcdc check`` needs to know about the broker, without judging it
(the rules live in ``wpcdc.preflight``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError, for_code

from wpcdc.config.preflight import BrokerFacts, TopicFacts
from wpcdc.config.settings import KafkaSettings
from wpcdc.config.tls import client_context
from wpcdc.core.errors import WpcdcError


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


async def read_broker_facts(settings: KafkaSettings) -> BrokerFacts:
    """Fetch the cluster metadata within ``kafka.request_timeout``; judge nothing."""
    with aiokafka_warnings() as warnings:
        try:
            options = client_options(settings)
        except OSError as exc:
            return BrokerFacts(reachable=False, error=f"kafka.tls: {exc}")
        admin = AIOKafkaAdminClient(**options)
        try:
            return await asyncio.wait_for(_read(admin, settings), settings.request_timeout)
        except TimeoutError:
            reason = f"no answer within {settings.request_timeout:g} s"
            return BrokerFacts(reachable=False, error=_with_reasons(reason, warnings))
        except KafkaConnectionError as exc:
            # Its text lists the bootstrap addresses as Python tuples; say it plainly.
            reason = "no bootstrap server answered" if "bootstrap" in str(exc) else _describe(exc)
            return BrokerFacts(reachable=False, error=_with_reasons(reason, warnings))
        except (KafkaError, OSError) as exc:
            return BrokerFacts(reachable=False, error=_with_reasons(_describe(exc), warnings))
        finally:
            with contextlib.suppress(Exception):
                await admin.close()


async def _read(admin: AIOKafkaAdminClient, settings: KafkaSettings) -> BrokerFacts:
    await admin.start()
    cluster = await admin.describe_cluster()
    # All topics rather than just ours: a metadata request naming a missing topic
    # makes brokers with auto.create.topics.enable create it with their defaults.
    topics = await admin.describe_topics(None)
    topic = next((t for t in topics if t.get("topic") == settings.topic), None)
    return BrokerFacts(
        reachable=True,
        broker_count=len(cluster.get("brokers") or ()),
        cluster_id=cluster.get("cluster_id"),
        topic=_topic(topic) if topic is not None else None,
    )


def _topic(metadata: dict[str, Any]) -> TopicFacts:
    partitions = metadata.get("partitions") or []
    replicas = len(partitions[0].get("replicas") or ()) if partitions else 0
    error = ""
    if metadata.get("error_code"):
        error = _describe(for_code(int(metadata["error_code"]))())
    return TopicFacts(partitions=len(partitions), replication_factor=replicas, error=error)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _with_reasons(reason: str, warnings: list[str]) -> str:
    if not warnings:
        return reason
    # The last few distinct reasons, in order: one per bootstrap server at most.
    distinct = list(dict.fromkeys(warnings))[-3:]
    return f"{reason} ({'; '.join(distinct)})"


# A fetch must fit the largest record plus its batch overhead.
_FETCH_HEADROOM = 64 * 1024


@contextlib.asynccontextmanager
async def topic_reader(settings: KafkaSettings, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer for reading ``topic`` as a bystander: no consumer group, no
    commits (tail and verify never move anyone's offsets). Raises WpcdcError when
    the broker cannot be reached or the topic does not exist; stopped on exit."""
    where = settings.bootstrap_servers
    try:
        client = client_options(settings)
    except OSError as exc:
        raise WpcdcError(f"kafka.tls: {exc}") from None
    fetch_bytes = max(settings.max_message_bytes + _FETCH_HEADROOM, 1024 * 1024)
    consumer = AIOKafkaConsumer(
        **client,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=fetch_bytes,
        fetch_max_bytes=max(fetch_bytes, 50 * 1024 * 1024),
    )
    try:
        with aiokafka_warnings() as reasons:
            try:
                await asyncio.wait_for(consumer.start(), settings.request_timeout)
                # All topics, never ours by name: brokers with
                # auto.create.topics.enable create a topic a metadata request names.
                topics = await asyncio.wait_for(consumer.topics(), settings.request_timeout)
            except (KafkaError, OSError, TimeoutError) as exc:
                detail = f" ({'; '.join(dict.fromkeys(reasons))})" if reasons else ""
                raise WpcdcError(
                    f"cannot read from the Kafka broker at {where}: "
                    f"{type(exc).__name__}{detail}; check kafka.bootstrap_servers"
                ) from None
        if topic not in topics:
            raise WpcdcError(
                f"topic {topic!r} does not exist on {where}; check --topic (default: kafka.topic)"
            )
        yield consumer
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
