"""The sink trusts an acknowledgement only while the topic still holds what it
acknowledged before (issue 10: a broker restarted empty)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import EXIT_PREFLIGHT, TopicLost
from wpcdc.core.offsets import AcknowledgedOffsets
from wpcdc.kafka.sink import KafkaSink, _Batch


def settle(sink: KafkaSink, partition: int, offset: int, records: int = 1) -> asyncio.Future[None]:
    """Settle a batch of ``records`` the broker acknowledged at base ``offset``."""
    loop = asyncio.get_running_loop()
    delivery: asyncio.Future[object] = loop.create_future()
    delivery.set_result(SimpleNamespace(partition=partition, offset=offset))
    batch = _Batch(partition, cast(Any, None), loop.create_future(), b"1:1", records)
    sink._settle(batch, delivery)
    return batch.acked


def test_an_offset_that_goes_back_fails_the_record_and_the_sink_for_good() -> None:
    async def main() -> None:
        offsets = AcknowledgedOffsets()
        sink = KafkaSink(settings=KafkaSettings(topic="events"), offsets=offsets)
        assert settle(sink, 0, 41).result() is None
        lost = settle(sink, 0, 0)  # the broker started the partition over
        with pytest.raises(TopicLost) as info:
            lost.result()
        assert info.value.exit_code == EXIT_PREFLIGHT
        assert "offset 0 after one at offset 41" in str(info.value)
        assert "`wpcdc snapshot --force`" in str(info.value)
        assert sink.failed
        # Not a DeliveryFailed that a rebuild would retry: every later send says so too.
        sink._producer = object()  # type: ignore[assignment]
        with pytest.raises(TopicLost):
            await sink.send(b"1:2", b"{}")

    asyncio.run(main())


def test_a_rebuilt_sink_shares_what_was_acknowledged() -> None:
    async def main() -> None:
        offsets = AcknowledgedOffsets()
        first = KafkaSink(settings=KafkaSettings(), offsets=offsets)
        assert settle(first, 2, 7).result() is None
        rebuilt = KafkaSink(settings=KafkaSettings(), offsets=offsets)
        with pytest.raises(TopicLost):
            settle(rebuilt, 2, 3).result()

    asyncio.run(main())


def test_a_batch_counts_up_to_its_last_record() -> None:
    async def main() -> None:
        sink = KafkaSink(settings=KafkaSettings(), offsets=AcknowledgedOffsets())
        assert settle(sink, 0, 10, records=5).result() is None  # offsets 10..14
        with pytest.raises(TopicLost, match="offset 14 after one at offset 14"):
            settle(sink, 0, 14).result()

    asyncio.run(main())
