"""Fakes for ``wpcdc.runtime.verify.Verification``: database reads over lists of PostBundles,
a topic that grows between reads, and a clock that sleeps instantly."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from wpcdc.core.positions import Position
from wpcdc.core.snapshot_events import PostBundle
from wpcdc.core.verify_state import TopicState
from wpcdc.runtime.verify import DatabaseView


@dataclass
class FakeView:
    position: Position
    bundles: dict[int, list[PostBundle]]
    warnings: list[str] = field(default_factory=list)

    def blogs(self) -> list[int]:
        return sorted(self.bundles)

    def chunks(self, blog_id: int) -> Iterator[list[PostBundle]]:
        posts = self.bundles[blog_id]
        for start in range(0, len(posts), 2):
            yield posts[start : start + 2]

    def posts(self, blog_id: int, ids: Sequence[int]) -> list[PostBundle]:
        return [b for b in self.bundles[blog_id] if int(b.post["ID"]) in ids]


class FakeDatabase:
    def __init__(self, *views: FakeView) -> None:
        self.views = list(views)
        self.opened = 0

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[DatabaseView]:
        self.opened += 1
        yield self.views.pop(0)


class FakeTopic:
    """Each read sees the records of the next list (the topic grows)."""

    def __init__(self, *reads: list[dict[str, Any]]) -> None:
        self.reads = list(reads)

    def read(self, state: TopicState) -> None:
        records = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        for e in records:
            state.add_record(
                f"{e['data']['blog_id']}:{e['data']['post_id']}".encode(), orjson.dumps(e)
            )


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
