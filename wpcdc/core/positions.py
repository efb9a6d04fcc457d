"""Binlog positions and row coordinates: where a change sits in the binlog, and their order.

A *position* is a transaction boundary: the byte offset where a transaction
starts (equivalently, where the previous one's commit ends) in a binlog file,
plus the GTID state executed up to it when the server has GTIDs. Resuming at a
position replays the transaction that starts there and everything after it.

A *coordinate* names one row change: the position of its transaction plus its
index among that transaction's row changes on watched tables. Event ids and the
monotonic sequence are pure functions of coordinates, so a replay reproduces
them exactly. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

_FILE_INDEX = re.compile(r"\.(\d+)$")

# The sequence is a fixed-width decimal string, so it compares correctly as a
# string in any language; an integer packing (file, offset, row, ordinal) would
# overflow 64 bits, and JavaScript consumers lose precision past 2**53.
_MAX_ORDINAL = 999


# Every coordinate asks; a stream reads few files.
@functools.lru_cache(maxsize=64)
def file_index(file: str) -> int:
    """The numeric suffix of a binlog file name (``binlog.000042`` -> 42)."""
    match = _FILE_INDEX.search(file)
    if match is None:
        raise ValueError(f"not a binlog file name: {file!r}")
    return int(match.group(1))


@dataclass(frozen=True, slots=True)
class Position:
    """A transaction boundary in the binlog."""

    file: str
    pos: int
    # The GTID set executed up to here (MariaDB "0-1-42,1-2-7"; MySQL "uuid:1-42"),
    # None when the server has no GTIDs. Informational for file/pos resumes.
    gtid_set: str | None = None

    def key(self) -> tuple[int, int]:
        """Sort key: binlog files compare by numeric index, not by name."""
        return (file_index(self.file), self.pos)

    def __lt__(self, other: Position) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Position) -> bool:
        return self.key() <= other.key()

    def __str__(self) -> str:
        return f"{self.file}:{self.pos}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "pos": self.pos, "gtid_set": self.gtid_set}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        file, pos = data["file"], data["pos"]
        if not isinstance(file, str) or not isinstance(pos, int) or pos < 4:
            raise ValueError(f"not a binlog position: {data!r}")
        file_index(file)
        gtid_set = data.get("gtid_set")
        return cls(file=file, pos=pos, gtid_set=gtid_set if isinstance(gtid_set, str) else None)


class Coordinate(NamedTuple):
    """One row change: its transaction's start position and its index in the transaction.

    A named tuple, not a frozen dataclass: the fold makes one per row change and
    the ack tracking compares them all the time; a tuple is built ~2x and compared
    ~4x faster (0.41 vs 0.88 µs, 0.10 vs 0.36 µs). Compare only with other
    Coordinates: a tuple compares equal to any tuple of the same values."""

    file_index: int
    pos: int
    row: int

    @classmethod
    def of(cls, position: Position, row: int) -> Coordinate:
        return cls(file_index(position.file), position.pos, row)

    def sequence(self, ordinal: int = 0) -> str:
        """A string that sorts in binlog order; ``ordinal`` orders events made at one row."""
        if not 0 <= ordinal <= _MAX_ORDINAL:
            raise ValueError(f"ordinal out of range: {ordinal}")
        # printf-style: 2.4x faster than the f-string's four format specs (one per event).
        return "%010d-%010d-%010d-%03d" % (self.file_index, self.pos, self.row, ordinal)  # noqa: UP031

    def to_list(self) -> list[int]:
        return [self.file_index, self.pos, self.row]

    @classmethod
    def from_list(cls, data: list[int]) -> Coordinate:
        file_idx, pos, row = data
        return cls(int(file_idx), int(pos), int(row))
