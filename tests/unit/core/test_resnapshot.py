"""Re-snapshot requests, chunks and watermark windows (pure)."""

from __future__ import annotations

import orjson
import pytest

from wpcdc.core.resnapshot import (
    HIGH,
    LOW,
    Request,
    Windows,
    first_chunk,
    next_chunk,
    requests_in,
    watermark_data,
)
from wpcdc.core.rows import Op, RowChange, TableKind, TableRef
from wpcdc.core.snapshot_events import PostBundle

SIGNAL = TableRef(1, TableKind.SIGNAL)


def bundle(post_id: int, blog: int = 1) -> PostBundle:
    return PostBundle(blog, {"ID": post_id}, [], [])


def signal_insert(row_id: int, kind: str, data: str) -> RowChange:
    return RowChange(SIGNAL, Op.INSERT, None, {"id": row_id, "kind": kind, "data": data}, 0)


def test_requests_parse_ids_or_ranges() -> None:
    assert Request.parse(1, '{"posts": [3, 4]}') == Request(1, 1, ids=(3, 4))
    assert Request.parse(2, '{"blog": 2, "from": 10, "to": 20}') == Request(2, 2, low=10, high=20)
    for bad in ("nope", "[]", '{"blog": 1}', '{"from": 1}'):
        with pytest.raises(ValueError, match="signal 9"):
            Request.parse(9, bad)
    assert Request.parse(3, Request(3, 1, ids=(5,)).to_json()) == Request(3, 1, ids=(5,))


def test_id_requests_are_chunked() -> None:
    request = Request(1, 1, ids=(5, 1, 3, 2, 4))
    chunk = first_chunk(request, 2)
    seen = []
    while chunk is not None:
        seen.append(chunk.ids)
        chunk = next_chunk(chunk, [], 2)
    assert seen == [(1, 2), (3, 4), (5,)]


def test_range_requests_walk_the_primary_key() -> None:
    request = Request(1, 1, low=10, high=100)
    chunk = first_chunk(request, 2)
    assert (chunk.after_id, chunk.limit) == (9, 2)
    following = next_chunk(chunk, [bundle(10), bundle(15)], 2)
    assert following is not None and following.after_id == 15
    assert next_chunk(following, [bundle(20)], 2) is None  # fewer than asked: the end
    assert next_chunk(following, [bundle(50), bundle(100)], 2) is None  # reached `to`


def test_window_drops_posts_changed_between_the_watermarks() -> None:
    windows = Windows()
    chunk = first_chunk(Request(7, 1, ids=(1, 2, 3)), 10)
    token = windows.start(chunk)
    low = signal_insert(100, LOW, watermark_data(token, chunk))
    assert windows.watermark(low) == (LOW, token)
    windows.changed((1, 2))  # before the low watermark: not in the window
    windows.opened(token)
    windows.changed((1, 3))
    high = signal_insert(101, HIGH, watermark_data(token, chunk))
    assert windows.watermark(high) == (HIGH, token)
    closed, keep = windows.close(token, [bundle(1), bundle(2), bundle(3)])
    assert closed == chunk
    assert [int(b.post["ID"]) for b in keep] == [1, 2]
    assert not windows


def test_watermarks_of_other_runs_are_ignored() -> None:
    windows = Windows()
    stranger = orjson.dumps({"window": "not-ours", "request": 1, "chunk": 0}).decode()
    assert windows.watermark(signal_insert(5, LOW, stranger)) is None


def test_requests_are_found_among_row_changes() -> None:
    changes = [
        signal_insert(1, "snapshot", '{"posts": [1]}'),
        signal_insert(2, LOW, "{}"),
        RowChange(TableRef(1, TableKind.POSTS), Op.INSERT, None, {"ID": 1}, 1),
    ]
    assert [row_id for row_id, _ in requests_in(changes)] == [1]
