"""Driving a full snapshot's state through its chunks, as the Snapshotter does."""

from __future__ import annotations

from wpcdc.core.positions import Position
from wpcdc.core.snapshot_state import MAX_POST_ID, SnapshotState


def run_blog(
    state: SnapshotState, blog: int, position: Position, chunks: list[list[int]]
) -> SnapshotState:
    """Send and acknowledge chunks; the last one is short (the end of the blog)."""
    for index, ids in enumerate(chunks):
        after = state.after_id(blog)
        assert after is not None
        high = MAX_POST_ID if index == len(chunks) - 1 else ids[-1]
        state = state.chunk_sent(blog, after, position, ids)
        state = state.chunk_acknowledged(blog, after, high, position, ids)
    return state
