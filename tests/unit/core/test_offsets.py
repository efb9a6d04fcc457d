"""What the topic must still hold: acknowledged offsets per partition, checked on every
acknowledgement and on every connection (issue 10: a broker restarted empty)."""

from __future__ import annotations

from wpcdc.core.offsets import AcknowledgedOffsets


def acknowledge(offsets: AcknowledgedOffsets, partition: int, *batch: int) -> None:
    for offset in batch:
        assert offsets.acknowledged(partition, offset) is None


def test_offsets_that_grow_are_fine_one_that_goes_back_is_a_loss() -> None:
    offsets = AcknowledgedOffsets()
    acknowledge(offsets, 0, 0, 1, 2)
    acknowledge(offsets, 1, 0)
    assert offsets.acknowledged(0, 3) is None
    problem = offsets.acknowledged(0, 0)  # the partition started over
    assert problem is not None and "offset 0 after one at offset 3" in problem
    assert offsets.acknowledged(1, 1) is None


def test_first_check_learns_the_partition_count() -> None:
    offsets = AcknowledgedOffsets()
    assert offsets.check(3, {}) == []
    assert offsets.partitions == 3
    assert offsets.check(4, {}) == ["it has 4 partitions, not 3"]
    # A broker that creates a missing topic on first use may give it other partitions.
    assert offsets.acknowledged(3, 0) == "a record was acknowledged on partition 3 of 3"


def test_a_missing_topic_is_a_loss_only_once_something_was_acknowledged() -> None:
    offsets = AcknowledgedOffsets()
    assert offsets.check(None, {}) == []
    acknowledge(offsets, 0, 0)
    assert offsets.check(None, {}) == ["the topic no longer exists"]


def test_a_broker_reporting_the_last_batch_base_as_end_passes() -> None:
    # Tansu reports the last batch's base offset + 1: 10 records in one batch, end 1.
    offsets = AcknowledgedOffsets()
    offsets.check(3, {})
    acknowledge(offsets, 0, *range(10))
    assert offsets.check(3, {0: 1, 1: 0, 2: 0}) == []
    acknowledge(offsets, 0, *range(10, 15))
    assert offsets.check(3, {0: 11}) == []
    # Kafka reports the last offset + 1.
    assert offsets.check(3, {0: 15}) == []


def test_a_partition_emptied_or_cut_short_is_a_loss() -> None:
    offsets = AcknowledgedOffsets()
    offsets.check(2, {})
    acknowledge(offsets, 0, *range(5))
    acknowledge(offsets, 1, *range(3))
    problems = offsets.check(2, {0: 0, 1: 3})
    assert problems == [
        "partition 0 ends at offset 0, but the record at offset 0 was acknowledged (up to 4)"
    ]


def test_the_witness_moves_forward_only_after_a_passing_check() -> None:
    offsets = AcknowledgedOffsets()
    offsets.check(1, {})
    acknowledge(offsets, 0, 0, 1, 2)
    assert offsets.check(1, {0: 3}) == []
    acknowledge(offsets, 0, 3, 4)
    # After that check, the first record since (offset 3) must still be there.
    assert offsets.check(1, {0: 3}) != []
    assert offsets.check(1, {0: 4}) == []
    # No acknowledgement since: the witness stays at 3.
    assert offsets.check(1, {0: 3}) != []
