"""One event as one Kafka record: the encoding both the stream and the snapshot send.

This module owns what a record of the events topic holds: its key (the post,
so that one post's events share a partition: promise "per-post order",
docs/ARCHITECTURE.md), its headers (the CloudEvents content type and the event
type, so consumers can route without parsing the value), and its value: the
envelope, shrunk per the oversize policy (:func:`wpcdc.core.events.fit`) to the
largest value the sink accepts with that key and those headers. Pure: the
sink's size limit comes in as a function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from wpcdc.core.events import Event, fit

Headers = list[tuple[str, bytes]]
CONTENT_TYPE_HEADER: Final = ("content-type", b"application/cloudevents+json; charset=utf-8")

# The largest value a record may have with this key and these headers (the
# sink's ``max_value_size``).
ValueLimit = Callable[[bytes, Headers], int]


@dataclass(frozen=True, slots=True)
class Record:
    """A record ready for the sink; ``omitted`` names what the oversize policy
    left out of the value (empty when the event fit as it was)."""

    key: bytes
    value: bytes
    headers: Headers
    omitted: tuple[str, ...]


def headers(event: Event) -> Headers:
    return [CONTENT_TYPE_HEADER, ("ce_type", event.type.encode())]


def encode(event: Event, source: str, limit: ValueLimit) -> Record:
    """The record of ``event`` (``source`` is the envelope's CloudEvents source)."""
    key = event.key
    record_headers = headers(event)
    value, omitted = fit(event, source, limit(key, record_headers))
    return Record(key, value, record_headers, tuple(omitted))
