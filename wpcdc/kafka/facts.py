"""What ``wpcdc check`` needs to know about the broker, read without judging it.

This module owns reading the cluster's metadata (brokers, cluster id, our
topic's partitions and replication) into :class:`~wpcdc.core.facts.BrokerFacts`,
with any failure described for the operator. The rules that judge the facts
live in :mod:`wpcdc.config.preflight`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError, for_code

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.facts import BrokerFacts, TopicFacts
from wpcdc.kafka.options import aiokafka_warnings, client_options


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
