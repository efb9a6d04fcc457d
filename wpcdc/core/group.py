"""An open fold group: what the fold holds of one post between its first and its
last row change, and how much memory that is. Pure: no I/O.

:class:`~wpcdc.core.fold.Folder` opens, grows and closes groups; derive and links
read a closed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wpcdc.core.events import TermRef
from wpcdc.core.mirror import PostInfo
from wpcdc.core.positions import Coordinate, Position
from wpcdc.core.rows import Row

PostKey = tuple[int, int]  # (blog_id, post_id)


@dataclass(slots=True)
class Group:
    blog_id: int
    post_id: int
    owner: int | None
    origin: Position
    origin_gtid: str | None
    first: Coordinate
    last: Coordinate
    first_timestamp: int
    last_timestamp: int
    # What the mirror knew of the post when the group opened.
    info: PostInfo | None
    # Arrival times (monotonic seconds; None when the caller gives no time).
    opened_at: float | None = None
    touched_at: float | None = None
    # The start of the last transaction that touched it: while that transaction
    # is still being read, time alone never closes the group (its rows commit
    # together; a slow read of a huge transaction is not a quiet writer).
    txn: Position | None = None
    # Estimated memory of the row images held (see _row_bytes).
    size: int = 0
    changes: int = 0
    post_seen: bool = False
    post_before: Row | None = None
    post_after: Row | None = None
    # The last image of the post row seen (for a post created and deleted here).
    post_last: Row | None = None
    # Some of its row changes come before where the previous run stopped reading,
    # so events of it may already be on the topic: derive reports the state of
    # everything the group touched, not only net changes (see derive).
    replayed: bool = False
    # meta_id -> [row before the group's first change of it, row after its last]
    meta: dict[int, list[Row | None]] = field(default_factory=dict)
    # term_taxonomy_id -> (net +1 added / -1 removed, the term as resolved then,
    # whether the post has it after the group's last change)
    terms: dict[int, tuple[int, TermRef, bool]] = field(default_factory=dict)
    deleted: bool = False
    # The blog's own group (post id 0): option name -> [row before, row after].
    options: dict[str, list[Row | None]] = field(default_factory=dict)

    def term_changes(self) -> tuple[list[TermRef], list[TermRef]]:
        """The terms the post gained and lost in this group. A replayed group
        states every term it touched (present or not), as derive explains."""
        if self.replayed:
            added = [term for _, term, present in self.terms.values() if present]
            removed = [term for _, term, present in self.terms.values() if not present]
        else:
            added = [term for net, term, _ in self.terms.values() if net > 0]
            removed = [term for net, term, _ in self.terms.values() if net < 0]
        return added, removed


# What a row image costs in memory, roughly: a dict with its keys (shared
# strings), a boxed value per column, and the text itself. An estimate is
# enough: it only has to grow with what the groups really hold.
_ROW_OVERHEAD = 240
_COLUMN_OVERHEAD = 72


def row_bytes(row: Row | None) -> int:
    if row is None:
        return 0
    size = _ROW_OVERHEAD + _COLUMN_OVERHEAD * len(row)
    for value in row.values():
        # Exact classes (the source's values): faster than isinstance on every column.
        if value.__class__ is str or value.__class__ is bytes:
            size += len(value)
    return size
