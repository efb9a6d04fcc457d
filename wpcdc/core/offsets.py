"""What the topic must still hold: the offsets the broker acknowledged, per partition.

A broker that loses acknowledged records (restarted without its storage, a
topic deleted or recreated) otherwise goes unnoticed: it acknowledges the next
records as usual, and the checkpoint moves past events that are on the topic no
more (measured with the Tansu broker, which keeps nothing across a restart).
Promise "checkpoint after ack" (docs/ARCHITECTURE.md) is only worth what the
acknowledgements are, so the sink checks them against this record of offsets:

- every acknowledgement: a partition's offsets only grow, so an offset at or
  below one already acknowledged there means the partition started over (and
  a partition the topic did not have means it was created again);
- every connection (each start of the sink, so after every pipeline rebuild):
  the topic still exists, with the partitions it had, and each partition's end
  offset is past a witness, the first offset acknowledged there since the
  previous check. The witness is the first record of a batch, and brokers
  report at least the last batch's base offset + 1 as the end (Tansu reports
  exactly that; Kafka the last record's offset + 1), so a healthy partition
  always passes.

The record lives as long as the process (``wpcdc run`` keeps it across
pipeline rebuilds); a loss while wpcdc is stopped is not seen. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping


class AcknowledgedOffsets:
    """The offsets acknowledged per partition, and the checks they allow."""

    def __init__(self) -> None:
        # The partition count the topic had at the first check.
        self.partitions: int | None = None
        self._highest: dict[int, int] = {}
        self._witness: dict[int, int] = {}
        self._unchecked: dict[int, int] = {}

    @property
    def seen(self) -> bool:
        """True once the broker acknowledged a record (the topic held something)."""
        return bool(self._highest)

    def acknowledged(self, partition: int, offset: int) -> str | None:
        """Record one acknowledgement; say what is wrong when the offset is not
        past every offset acknowledged on that partition before, or when the
        partition is one the topic did not have (it was created again)."""
        if self.partitions is not None and partition >= self.partitions:
            return f"a record was acknowledged on partition {partition} of {self.partitions}"
        highest = self._highest.get(partition)
        if highest is not None and offset <= highest:
            return (
                f"partition {partition} acknowledged a record at offset {offset} after one "
                f"at offset {highest}"
            )
        self._highest[partition] = offset
        self._unchecked.setdefault(partition, offset)
        return None

    def check(self, partitions: int | None, ends: Mapping[int, int]) -> list[str]:
        """What is wrong with the topic as the broker describes it now: its
        partition count (None: the topic is gone) and each partition's end
        offset. Empty when nothing is; then the witnesses move forward."""
        if partitions is None:
            return ["the topic no longer exists"] if self.seen else []
        if self.partitions is None:
            self.partitions = partitions
        problems = []
        if partitions != self.partitions:
            problems.append(f"it has {partitions} partitions, not {self.partitions}")
        for partition in sorted(self._witness.keys() | self._unchecked.keys()):
            witness = self._unchecked.get(partition, self._witness.get(partition))
            assert witness is not None
            end = ends.get(partition, 0)
            if end <= witness:
                problems.append(
                    f"partition {partition} ends at offset {end}, but the record at offset "
                    f"{witness} was acknowledged (up to {self._highest[partition]})"
                )
        if not problems:
            self._witness.update(self._unchecked)
            self._unchecked.clear()
        return problems
