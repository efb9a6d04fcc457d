"""Checkpoints: the saved place to resume from (the types; stores live in the runtime
and adapters, e.g. ``wpcdc.runtime.files``).

A checkpoint is a binlog position (a transaction boundary) before which every
derived event has been acknowledged by the broker, plus ``covered`` markers:
posts whose acknowledged events already include row changes *after* that
position (folding groups can straddle it). On resume those row changes are
skipped for those posts only, so the replay re-creates exactly the events that
were not yet acknowledged, with the same ids. ``covered_ranges`` do the same for
ranges of posts that a resumed snapshot read at a later position.

``covered_rows`` keeps a huge transaction's checkpoint small: every row change
of the checkpoint's transaction up to that coordinate is in an acknowledged
event (or in none), whatever its post, so one coordinate replaces a marker per
post. Markers are an optimisation of the replay, never needed for correctness:
a row change replayed although acknowledged only makes an event that a
consumer skips as not newer (see ``wpcdc.core.fold``), so the number of markers
is capped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from wpcdc.core.positions import Coordinate, Position

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Covered:
    """Row changes of this post up to ``through`` are in acknowledged events."""

    blog_id: int
    post_id: int
    through: Coordinate


@dataclass(frozen=True, slots=True)
class CoveredRange:
    """Posts ``low``..``high`` of a blog were snapshotted at a later position than
    the checkpoint's: their row changes up to ``through`` are already in it."""

    blog_id: int
    low: int
    high: int
    through: Coordinate

    def contains(self, blog_id: int, post_id: int) -> bool:
        return blog_id == self.blog_id and self.low <= post_id <= self.high


class CoveredChanges:
    """A resumed fold's view of the markers: whether a row change is in an
    acknowledged event already (then it is skipped). A post's marker and the
    covered rows are dropped once the stream is past them; ``left`` says
    whether anything is left to skip, which after a resume soon is nothing."""

    __slots__ = ("_posts", "_ranges", "_rows", "left")

    def __init__(
        self,
        posts: Mapping[tuple[int, int], Coordinate] | None,
        ranges: Sequence[CoveredRange],
        rows: Coordinate | None,
    ) -> None:
        self._posts = dict(posts or {})
        self._ranges = list(ranges)
        self._rows = rows
        self.left = self._remaining()

    def skips(self, key: tuple[int, int], coordinate: Coordinate) -> bool:
        """Whether the row change at ``coordinate`` of group ``key`` is acknowledged."""
        if self._rows is not None:
            if coordinate <= self._rows:
                return True
            self._rows = None  # past it: nothing more to skip
            self.left = self._remaining()
        if self._ranges and any(r.contains(*key) and coordinate <= r.through for r in self._ranges):
            return True
        through = self._posts.get(key)
        if through is None:
            return False
        if coordinate <= through:
            return True
        del self._posts[key]  # past it: nothing more to skip for this post
        self.left = self._remaining()
        return False

    def _remaining(self) -> bool:
        return self._rows is not None or bool(self._ranges) or bool(self._posts)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    position: Position
    covered: tuple[Covered, ...] = field(default=())
    covered_ranges: tuple[CoveredRange, ...] = field(default=())
    covered_rows: Coordinate | None = None

    def to_json(self) -> bytes:
        rows = {} if self.covered_rows is None else {"covered_rows": self.covered_rows.to_list()}
        return dump_versioned(
            FORMAT_VERSION,
            **rows,
            position=self.position.to_dict(),
            covered=[[c.blog_id, c.post_id, c.through.to_list()] for c in self.covered],
            covered_ranges=[
                [r.blog_id, r.low, r.high, r.through.to_list()] for r in self.covered_ranges
            ],
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Checkpoint:
        data = load_versioned(raw, FORMAT_VERSION, "checkpoint format")
        covered = tuple(
            Covered(int(blog), int(post), Coordinate.from_list(through))
            for blog, post, through in data.get("covered", [])
        )
        ranges = tuple(
            CoveredRange(int(blog), int(low), int(high), Coordinate.from_list(through))
            for blog, low, high, through in data.get("covered_ranges", [])
        )
        rows = data.get("covered_rows")
        return cls(
            position=Position.from_dict(data["position"]),
            covered=covered,
            covered_ranges=ranges,
            covered_rows=None if rows is None else Coordinate.from_list(rows),
        )


class CheckpointStore(Protocol):
    def load(self) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> None: ...


def dump_versioned(version: int, **fields: Any) -> bytes:
    """A state document (checkpoint, snapshot state) as indented JSON with its format version."""
    return orjson.dumps({"version": version, **fields}, option=orjson.OPT_INDENT_2)


def load_versioned(raw: bytes, version: int, what: str) -> dict[str, Any]:
    """The fields of a state document; ValueError unless it is JSON of ``version``."""
    data: Any = orjson.loads(raw)
    if not isinstance(data, dict) or data.get("version") != version:
        raise ValueError(f"unsupported {what} (want version {version})")
    return data
