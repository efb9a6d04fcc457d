"""Folding a whole binlog excerpt at once, and row images, for tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wpcdc.core.events import Event
from wpcdc.core.fold import Folder
from wpcdc.core.rows import TransactionPart


def fold_all(folder: Folder, parts: Iterable[TransactionPart]) -> list[Event]:
    """Fold ``parts`` and close what stays open: events in emission order."""
    events: list[Event] = []
    for part in parts:
        for closed in folder.feed(part):
            events.extend(closed.events)
    for closed in folder.close_all():
        events.extend(closed.events)
    return events


def meta_row(meta_id: int, post_id: int, key: str, value: Any) -> dict[str, Any]:
    """A wp_postmeta row image."""
    return {"meta_id": meta_id, "post_id": post_id, "meta_key": key, "meta_value": value}
