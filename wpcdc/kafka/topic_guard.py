"""The topic guard: the events topic exists, and still holds what the broker acknowledged.

This module owns the sink's checks of its topic on every connection: creating
it when it is missing and ``kafka.create_topic`` is on (refusing to when it
held acknowledged records: that would hide the loss), and comparing its
partitions and end offsets with what this run saw acknowledged
(:class:`~wpcdc.core.offsets.AcknowledgedOffsets`). A topic that lost records
is :class:`~wpcdc.core.errors.TopicLost`, whose message says how to recover;
the sink raises the same error when an acknowledgement's offset goes backwards
(promise "loud failure").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, for_code

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import (
    BrokerUnavailable,
    ConfigError,
    PreflightFailed,
    TopicLost,
    WpcdcError,
)
from wpcdc.core.offsets import AcknowledgedOffsets
from wpcdc.kafka.options import aiokafka_warnings, client_options
from wpcdc.kafka.producer import close_quietly, describe
from wpcdc.kafka.topic import TopicMissing, open_topic

# The sink's logger: creating the topic is part of starting the sink.
log = logging.getLogger("wpcdc.kafka.sink")

_TOPIC_ERROR_ALREADY_EXISTS: Final = 36


class TopicGuard:
    """Checks ``settings.topic`` against ``offsets`` (shared by the sinks of one run,
    so a rebuilt sink knows what the topic held)."""

    def __init__(self, settings: KafkaSettings, offsets: AcknowledgedOffsets) -> None:
        self._settings = settings
        self._offsets = offsets

    async def ensure_topic(self) -> bool:
        """Create the topic when it is missing and ``create_topic`` is on.

        Returns True when it was created. Raises PreflightFailed when it is
        missing and must not be created, or when the broker refuses to create it,
        and TopicLost when the topic no longer holds what it acknowledged (see
        :meth:`check_topic`).
        """
        settings = self._settings
        with aiokafka_warnings() as reasons:
            try:
                options = client_options(settings)
            except OSError as exc:
                raise ConfigError(f"kafka.tls: {exc}") from None
            admin = AIOKafkaAdminClient(**options)
            try:
                created = await asyncio.wait_for(
                    self._ensure_topic(admin), settings.request_timeout * 2
                )
            except (KafkaError, OSError, TimeoutError) as exc:
                raise BrokerUnavailable(
                    f"cannot check topic {settings.topic!r} on "
                    f"{settings.bootstrap_servers}: {describe(exc, reasons)}"
                ) from None
            finally:
                await close_quietly(admin)
        await self.check_topic()
        return created

    async def check_topic(self) -> None:
        """Raise TopicLost unless the topic still has the partitions it had and
        every record this run saw acknowledged (see wpcdc.core.offsets)."""
        topic = self._settings.topic
        try:
            async with open_topic(self._settings, topic) as reader:
                partitions: int | None = len(reader.partitions)
                ends = await reader.end_offsets()
        except TopicMissing:
            partitions, ends = None, {}
        except WpcdcError as exc:
            raise BrokerUnavailable(str(exc)) from None
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailable(
                f"cannot read the end offsets of {topic!r}: {describe(exc)}"
            ) from None
        problems = self._offsets.check(partitions, ends)
        if problems:
            raise self.lost("; ".join(problems))

    def lost(self, what: str) -> TopicLost:
        """The error for a topic that lost acknowledged records (``what`` says how)."""
        settings = self._settings
        count = self._offsets.partitions or settings.partitions
        return TopicLost(
            f"topic {settings.topic!r} on {settings.bootstrap_servers} lost records the broker "
            f"had acknowledged ({what}): the broker restarted without its data, or the "
            "topic was deleted or recreated. Events the checkpoint has passed may be gone, "
            "so wpcdc stops instead of streaming on with a gap. Restore the broker's "
            f"storage or recreate the topic ({count} partitions), then run "
            "`wpcdc snapshot --force` to send every post again, and start `wpcdc run`."
        )

    async def _ensure_topic(self, admin: AIOKafkaAdminClient) -> bool:
        settings = self._settings
        await admin.start()
        # All topics, never ours by name: a metadata request naming a missing
        # topic makes brokers with auto.create.topics.enable create it.
        if settings.topic in await admin.list_topics():
            return False
        if self._offsets.seen:
            # It held acknowledged records: creating it again would hide the loss.
            raise self.lost("the topic no longer exists")
        if not settings.create_topic:
            raise PreflightFailed(
                f"topic {settings.topic!r} does not exist on {settings.bootstrap_servers}: "
                f"create it ({settings.partitions} partitions, replication factor "
                f"{settings.replication_factor}) or set kafka.create_topic = true"
            )
        topic = NewTopic(settings.topic, settings.partitions, settings.replication_factor)
        response = await admin.create_topics([topic])
        created = True
        for result in response.topic_errors:
            code = int(result[1])
            if code == _TOPIC_ERROR_ALREADY_EXISTS:
                created = False  # another instance created it in the meantime
            elif code != 0:
                message = result[2] if len(result) > 2 and result[2] else for_code(code).__name__
                raise PreflightFailed(
                    f"the broker refused to create topic {settings.topic!r} "
                    f"({settings.partitions} partitions, replication factor "
                    f"{settings.replication_factor}): {message}"
                )
        # Creation is asynchronous on real Kafka clusters: wait until the
        # metadata lists it, so that the first send finds its partitions.
        while settings.topic not in await admin.list_topics():
            await asyncio.sleep(0.1)
        if created:
            log.info("created topic %s with %d partitions", settings.topic, settings.partitions)
        return created
