"""``wpcdc verify``, the run: the operator's proof that the topic matches the database.

This module owns the order of that proof (:meth:`Verification.run`): the
database is read in one consistent snapshot at position D, the topic only up to
D, after the streamer's checkpoint passed D; differing posts are read again once, and only
differences that persist are reported. It runs over the :class:`Database` and
:class:`Topic` protocols, with the clock and sleep passed in, so the unit tests
drive it with lists. The rebuilt topic state is ``wpcdc.core.verify_state``, the
comparison and the report ``wpcdc.core.verify_report``; the adapters are
``wpcdc.mysql.consistent.MysqlDatabase`` (a ``START TRANSACTION WITH CONSISTENT
SNAPSHOT`` tied to its binlog position as ``wpcdc snapshot`` ties it) and
``wpcdc.kafka.topic.KafkaTopic`` (reads every partition from the beginning
without a consumer group, as ``tail`` does, so verifying moves nobody's offsets); the
wiring is ``wpcdc.commands.verify``.

Limits (see README): an event whose fold group straddles D carries changes
after D (the recheck absorbs them unless the post keeps changing); a topic whose
old records were deleted by retention or compaction cannot be rebuilt and
reports missing posts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from wpcdc.core.fold import FoldConfig
from wpcdc.core.positions import Position
from wpcdc.core.snapshot_events import PostBundle, wanted
from wpcdc.core.verify_report import (
    Comparison,
    PostDiff,
    VerifyReport,
    compare_post,
    database_post,
    extra_post,
)
from wpcdc.core.verify_state import PostKey, TopicState, sequence_cutoff

# Posts per database read when differing posts are read again.
CHUNK: Final = 500


class DatabaseView(Protocol):
    """The database as one consistent snapshot shows it."""

    @property
    def position(self) -> Position: ...

    @property
    def warnings(self) -> Sequence[str]: ...

    def blogs(self) -> list[int]: ...

    def chunks(self, blog_id: int) -> Iterator[list[PostBundle]]:
        """Every post of the blog, in ID order, a bounded chunk at a time."""
        ...

    def posts(self, blog_id: int, ids: Sequence[int]) -> list[PostBundle]: ...


class Database(Protocol):
    def snapshot(self) -> contextlib.AbstractContextManager[DatabaseView]: ...


class Topic(Protocol):
    def read(self, state: TopicState) -> None:
        """Feed every record the topic holds now to ``state``."""
        ...


@dataclass(frozen=True)
class VerifyOptions:
    topic: str
    database: str
    config: FoldConfig
    blog_id: int | None = None
    # How long to wait for the streamer's checkpoint to reach the database read.
    wait: float = 60.0
    recheck_delay: float = 3.0
    checkpoint_poll: float = 0.2


@dataclass
class Verification:
    """One proof: compare the topic with the database (:meth:`run`). ``checkpoint``
    returns the streamer's saved position (None: no checkpoint here)."""

    database: Database
    topic: Topic
    checkpoint: Callable[[], Position | None]
    options: VerifyOptions
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    report: VerifyReport = field(init=False)

    def __post_init__(self) -> None:
        self.report = VerifyReport(topic=self.options.topic, database=self.options.database)

    def run(self) -> VerifyReport:
        """Compare the topic with the database; read differing posts once more before
        reporting them."""
        report = self.report
        diffs = self.read_everything()
        in_database = {d.key for d in diffs if d.kind != "extra"}
        if diffs:
            self.sleep(self.options.recheck_delay)
            report.rechecked = len(diffs)
            diffs = self.read_again([d.key for d in diffs])
            report.settled = report.rechecked - len(diffs)
        report.differences = sorted(diffs, key=lambda d: (d.kind, d.key))
        report.matching = report.posts_in_database - sum(1 for d in diffs if d.key in in_database)
        return report

    @property
    def ignored(self) -> frozenset[str]:
        return self.options.config.ignored_meta_keys

    def read_everything(self) -> list[PostDiff]:
        """Every post of the database against the whole topic up to the read's position."""
        report = self.report
        with self.database.snapshot() as view:
            report.position = str(view.position)
            report.warnings += view.warnings
            self._await_checkpoint(view.position)
            state = TopicState(
                ignored_meta_keys=self.ignored,
                cutoff=sequence_cutoff(view.position),
                blog_id=self.options.blog_id,
            )
            self.topic.read(state)
            _count_events(report, state)
            report.posts_on_topic = sum(1 for s in state.posts.values() if s.exists)
            seen: set[PostKey] = set()
            diffs: list[PostDiff] = []
            blogs = view.blogs()
            if self.options.blog_id is not None:
                blogs = [b for b in blogs if b == self.options.blog_id]
            for blog_id in blogs:
                for chunk in view.chunks(blog_id):
                    for bundle in chunk:
                        key = (blog_id, int(bundle.post["ID"]))
                        seen.add(key)
                        if not wanted(bundle, self.options.config):
                            continue
                        report.posts_in_database += 1
                        result = self._compare(bundle, state)
                        if result.unverifiable:
                            report.unverifiable_posts += 1
                            report.unverifiable.update(result.unverifiable)
                        if result.diff is not None:
                            diffs.append(result.diff)
            diffs += self._extra(state, (k for k in state.posts if k not in seen))
        return diffs

    def read_again(self, keys: Sequence[PostKey]) -> list[PostDiff]:
        """The differing posts read again at a new position; the differences that remain."""
        diffs: list[PostDiff] = []
        with self.database.snapshot() as view:
            self._await_checkpoint(view.position)
            state = TopicState(
                ignored_meta_keys=self.ignored,
                cutoff=sequence_cutoff(view.position),
                only=frozenset(keys),
            )
            self.topic.read(state)
            by_blog: dict[int, list[int]] = {}
            for blog_id, post_id in sorted(keys):
                by_blog.setdefault(blog_id, []).append(post_id)
            found: set[PostKey] = set()
            blogs = set(view.blogs())
            for blog_id, ids in by_blog.items():
                if blog_id not in blogs:
                    continue
                for start in range(0, len(ids), CHUNK):
                    for bundle in view.posts(blog_id, ids[start : start + CHUNK]):
                        key = (blog_id, int(bundle.post["ID"]))
                        found.add(key)
                        if not wanted(bundle, self.options.config):
                            continue
                        result = self._compare(bundle, state)
                        if result.diff is not None:
                            diffs.append(result.diff)
            diffs += self._extra(state, (k for k in keys if k not in found))
        return diffs

    def _compare(self, bundle: PostBundle, state: TopicState) -> Comparison:
        key = (bundle.blog_id, int(bundle.post["ID"]))
        return compare_post(database_post(bundle, self.ignored), state.posts.get(key))

    @staticmethod
    def _extra(state: TopicState, absent: Iterable[PostKey]) -> list[PostDiff]:
        """Differences for posts the database does not have."""
        diffs = []
        for key in absent:
            post_state = state.posts.get(key)
            extra = None if post_state is None else extra_post(key, post_state)
            if extra is not None:
                diffs.append(extra)
        return diffs

    def _await_checkpoint(self, position: Position) -> None:
        """Wait until the streamer has produced every event up to ``position``."""
        deadline = self.clock() + self.options.wait
        while True:
            saved = self.checkpoint()
            if saved is None:
                self.report.checkpoint = None
                self._warn(
                    "no streamer checkpoint here (checkpoint.path): cannot tell whether the "
                    "topic already holds every change up to the database read; run verify "
                    "where `wpcdc run` keeps its checkpoint"
                )
                return
            self.report.checkpoint = str(saved)
            if position <= saved:
                return
            if self.clock() >= deadline:
                self._warn(
                    f"the streamer checkpoint ({saved}) did not reach the database read "
                    f"({position}) within {self.options.wait:g} s: `wpcdc run` is behind or "
                    "stopped, so changes after its checkpoint are not on the topic yet"
                )
                return
            self.sleep(self.options.checkpoint_poll)

    def _warn(self, message: str) -> None:
        if message not in self.report.warnings:
            self.report.warnings.append(message)


def _count_events(report: VerifyReport, state: TopicState) -> None:
    report.events = state.events
    report.events_after_position = state.after_cutoff
    report.foreign_records = state.foreign
    report.unreadable_events = state.unreadable
    if state.unreadable:
        report.warnings.append(
            f"{state.unreadable} wpcdc events could not be read (unknown type or shape): "
            "their posts may show differences"
        )
