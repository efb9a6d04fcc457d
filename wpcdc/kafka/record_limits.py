"""Record limits: the largest record the broker takes, and the refusal of a larger one.

This module owns a record's size as the broker measures it against its
``message.max.bytes`` (:func:`record_size`), the largest value a key and headers
leave room for under ``kafka.max_message_bytes`` (:class:`RecordLimits`), and
:class:`RecordTooLarge`, which :meth:`~wpcdc.kafka.sink.KafkaSink.send` raises
before sending anything, so that the callers can shrink the event
(:mod:`wpcdc.core.records`).
"""

from __future__ import annotations

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from wpcdc.core.errors import WpcdcError
from wpcdc.core.records import Headers


class RecordTooLarge(WpcdcError):
    """The record is larger than ``kafka.max_message_bytes``; nothing was sent."""

    def __init__(self, *, key: bytes, size: int, limit: int, max_value_size: int) -> None:
        super().__init__(
            f"record {key!r} is {size} bytes, more than kafka.max_message_bytes ({limit}); "
            f"its value must be at most {max_value_size} bytes"
        )
        self.key = key
        self.size = size
        self.limit = limit
        self.max_value_size = max_value_size


def record_size(key: bytes, value: bytes, headers: Headers | None = None) -> int:
    """Bytes the record takes as a batch of its own, before compression.

    This is what the broker compares with its ``message.max.bytes`` when the
    record travels alone. It is measured uncompressed: the compressed size is
    only known once a batch is built, and a record that fits uncompressed fits
    compressed too, so the check is predictable for the caller's oversize policy.
    """
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers or []))


class RecordLimits:
    """The largest value per key length and headers, under ``limit`` bytes a record."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._value_limits: dict[tuple[int, tuple[tuple[str, bytes], ...]], int] = {}

    def max_value_size(self, key: bytes, headers: Headers | None = None) -> int:
        """The largest value a record with this key and headers may carry."""
        # A record's size depends on the key's length, not its bytes, and on the
        # headers: computed once per shape (the search below costs ~50 µs).
        shape = (len(key), tuple(headers or ()))
        size = self._value_limits.get(shape)
        if size is None:
            size = self._value_limits[shape] = self._max_value_size(key, headers)
        return size

    def _max_value_size(self, key: bytes, headers: Headers | None) -> int:
        limit = self._limit
        size = max(limit - record_size(key, b"", headers), 0)
        # The lengths inside a record are varints: the overhead grows by a few
        # bytes with the value, so step down to the exact boundary.
        while size > 0 and record_size(key, bytes(size), headers) > limit:
            size -= 1
        return size

    def check(self, key: bytes, value: bytes, headers: Headers | None) -> None:
        """Raise RecordTooLarge when the record exceeds the limit."""
        # The size grows with the value's length alone: one memoized limit per
        # key length and headers (record_size itself is monotonic in it).
        if len(value) > self.max_value_size(key, headers):
            raise RecordTooLarge(
                key=key,
                size=record_size(key, value, headers),
                limit=self._limit,
                max_value_size=self.max_value_size(key, headers),
            )
