"""The Snapshotter with in-memory adapters: chunks, acks, saved progress, resume,
limited snapshots, dry runs, signals, oversize events."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.unit.binlog_builder import meta, post_row
from wpcdc.commands.snapshot import describe_result
from wpcdc.core.checkpoint import Checkpoint, CoveredRange
from wpcdc.core.errors import DeliveryFailed, PreflightFailed, SnapshotInterrupted
from wpcdc.core.events import TermRef
from wpcdc.core.fold import FoldConfig
from wpcdc.core.positions import Position
from wpcdc.core.records import Headers
from wpcdc.core.snapshot_events import PostBundle
from wpcdc.core.snapshot_state import (
    MAX_POST_ID,
    IdRange,
    SnapshotOptions,
    SnapshotState,
    Start,
    covered_through,
)
from wpcdc.mysql.consistent import SnapshotPoint
from wpcdc.runtime.snapshot import SnapshotResult, SnapshotStateFile, Snapshotter

P = Position("binlog.000001", 1000)
P2 = Position("binlog.000001", 9000)


def bundle(post_id: int, blog: int = 1, **fields: object) -> PostBundle:
    return PostBundle(
        blog_id=blog,
        post=post_row(post_id, title=f"post {post_id}", **fields),
        meta=[meta(post_id * 10, post_id, "k", 'a:1:{i:0;s:1:"x";}')],
        terms=[TermRef(7, "post_tag", 3, "cdc", "CDC")],
    )


@dataclass
class FakeRead:
    """A consistent read over fixed posts, filtering as the SQL does."""

    posts: dict[int, list[PostBundle]]
    position: Position = P
    engines: dict[str, str] = field(default_factory=dict)
    closed: bool = False

    @property
    def point(self) -> SnapshotPoint:
        return SnapshotPoint(self.position, 1_800_000_000, "binlog_snapshot")

    def blogs(self) -> list[int]:
        return sorted(self.posts)

    def table_engines(self, blogs: Sequence[int]) -> dict[str, str]:
        return self.engines

    def _select(
        self, blog_id: int, after_id: int, max_id: int | None, post_types: Sequence[str] | None
    ) -> list[PostBundle]:
        return [
            b
            for b in self.posts[blog_id]
            if int(b.post["ID"]) > after_id
            and (max_id is None or int(b.post["ID"]) <= max_id)
            and (not post_types or b.post["post_type"] in post_types)
            and b.post["post_type"] != "revision"
        ]

    def count(
        self,
        blog_id: int,
        *,
        after_id: int = 0,
        max_id: int | None = None,
        post_types: Sequence[str] | None = None,
    ) -> int:
        return len(self._select(blog_id, after_id, max_id, post_types))

    def chunk(
        self,
        blog_id: int,
        *,
        after_id: int,
        limit: int,
        max_id: int | None = None,
        post_types: Sequence[str] | None = None,
    ) -> list[PostBundle]:
        return self._select(blog_id, after_id, max_id, post_types)[:limit]

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeSink:
    """Acknowledges at once; ``fail_after`` sends, every later delivery fails."""

    fail_after: int | None = None
    value_limit: int = 1_000_000
    sent: list[tuple[bytes, dict[str, Any], Headers]] = field(default_factory=list)

    async def send(
        self, key: bytes, value: bytes, headers: Headers | None = None
    ) -> asyncio.Future[None]:
        self.sent.append((key, orjson.loads(value), headers or []))
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail_after is not None and len(self.sent) > self.fail_after:
            acked.set_exception(DeliveryFailed("broker gone"))
        else:
            acked.set_result(None)
        return acked

    async def flush(self) -> None:
        return None

    def max_value_size(self, key: bytes, headers: Headers | None = None) -> int:
        return self.value_limit


@dataclass
class MemoryStore:
    saved: list[Checkpoint] = field(default_factory=list)

    def load(self) -> Checkpoint | None:
        return self.saved[-1] if self.saved else None

    def save(self, checkpoint: Checkpoint) -> None:
        self.saved.append(checkpoint)


class NoProgress:
    def __init__(self) -> None:
        self.done: list[int] = []

    def start(self, total: int, done: int) -> None:
        self.total = total
        self.done.append(done)

    def advance(self, done: int) -> None:
        self.done.append(done)

    def finish(self) -> None:
        pass


def snapshotter(
    read: FakeRead,
    sink: FakeSink,
    tmp_path: Path,
    options: SnapshotOptions,
    start: Start = Start.FRESH,
    store: MemoryStore | None = None,
    stop: asyncio.Event | None = None,
) -> tuple[Snapshotter, SnapshotStateFile, MemoryStore, NoProgress]:
    state_file = SnapshotStateFile(tmp_path / "checkpoint.json.snapshot")
    store = store or MemoryStore()
    progress = NoProgress()
    runner = Snapshotter(
        open_read=lambda: read,
        sink=sink,
        options=options,
        start=start,
        fold=FoldConfig(ignored_meta_keys=frozenset({"_edit_lock"})),
        source_name="wpcdc://test/wp",
        state_file=state_file,
        checkpoints=store,
        progress=progress,
        state=state_file.load(),
        stop=stop,
    )
    return runner, state_file, store, progress


def site() -> dict[int, list[PostBundle]]:
    posts = [bundle(i) for i in range(1, 12)]
    posts.insert(3, bundle(30, type="revision"))
    return {1: sorted(posts, key=lambda b: int(b.post["ID"])), 2: [bundle(1, blog=2)]}


def test_full_snapshot_sends_every_post_then_saves_the_checkpoint(tmp_path: Path) -> None:
    read, sink = FakeRead(site()), FakeSink()
    runner, state_file, store, progress = snapshotter(
        read, sink, tmp_path, SnapshotOptions(chunk_size=4)
    )
    result = asyncio.run(runner.run())
    keys = [key for key, _, _ in sink.sent]
    assert keys == [f"1:{i}".encode() for i in range(1, 12)] + [b"2:1"]
    _, first, headers = sink.sent[0]
    assert first["type"] == "post_snapshot" and first["id"] == "binlog.000001:1000/snapshot/1:1"
    assert first["data"]["reason"] == "initial"
    assert first["data"]["meta"][0]["value"] == ["x"]
    assert first["data"]["terms"][0]["slug"] == "cdc"
    assert ("ce_type", b"post_snapshot") in headers
    assert store.saved == [Checkpoint(position=P)]
    assert result.checkpoint == Checkpoint(position=P) and result.events == 12
    assert result.chunks == 4  # blog 1: 4 + 4 + 3 posts; blog 2: one
    state = state_file.load()
    assert state is not None and state.done and state.emitted == 12
    assert progress.total == 12 and progress.done == [0, 4, 8, 11, 12]
    assert read.closed


def test_killed_mid_way_the_rerun_reads_the_rest_at_its_own_position(tmp_path: Path) -> None:
    read = FakeRead(site())
    runner, state_file, store, _ = snapshotter(
        read, FakeSink(fail_after=6), tmp_path, SnapshotOptions(chunk_size=4)
    )
    with pytest.raises(DeliveryFailed):
        asyncio.run(runner.run())
    state = state_file.load()
    assert state is not None and not state.done and store.saved == []
    assert state.after_id(1) == 4 and [r.post_ids for r in state.in_flight] == [(5, 6, 7, 8)]
    # Post 6 is deleted before the rerun; the rerun reads at P2.
    later = site()
    later[1] = [b for b in later[1] if b.post["ID"] != 6]
    sink = FakeSink()
    runner, _, store, progress = snapshotter(
        FakeRead(later, position=P2), sink, tmp_path, SnapshotOptions(chunk_size=4), Start.RESUME
    )
    result = asyncio.run(runner.run())
    assert [key for key, _, _ in sink.sent] == [
        *(f"1:{i}".encode() for i in (5, 7, 8, 9, 10, 11)),
        b"2:1",
    ]
    assert all(value["binlogpos"] == 9000 for _, value, _ in sink.sent)
    through = covered_through(P2)
    assert result.checkpoint == Checkpoint(
        position=P,
        covered_ranges=(
            CoveredRange(1, 5, 5, through),
            CoveredRange(1, 7, MAX_POST_ID, through),
            CoveredRange(2, 1, MAX_POST_ID, through),
        ),
    )
    assert store.saved == [result.checkpoint]
    assert progress.done[0] == 4 and progress.total == 4 + 7


def test_limited_snapshot_re_emits_and_touches_no_checkpoint(tmp_path: Path) -> None:
    posts = site()
    posts[1][5] = bundle(6, type="page")
    sink = FakeSink()
    options = SnapshotOptions(chunk_size=2, blogs=(1,), post_types=("post",), ids=IdRange(3, 9))
    runner, state_file, store, _ = snapshotter(
        FakeRead(posts), sink, tmp_path, options, Start.LIMITED
    )
    result = asyncio.run(runner.run())
    assert [key for key, _, _ in sink.sent] == [f"1:{i}".encode() for i in (3, 4, 5, 7, 8, 9)]
    assert {value["data"]["reason"] for _, value, _ in sink.sent} == {"requested"}
    assert state_file.load() is None and store.saved == [] and result.checkpoint is None
    assert "checkpoint is unchanged" in describe_result(
        result, topic="t", checkpoint=tmp_path / "c.json"
    )


def test_dry_run_counts_and_sends_nothing(tmp_path: Path) -> None:
    sink = FakeSink()
    runner, state_file, store, _ = snapshotter(
        FakeRead(site()), sink, tmp_path, SnapshotOptions(dry_run=True)
    )
    result = asyncio.run(runner.run())
    assert sink.sent == [] and state_file.load() is None and store.saved == []
    assert [(p.blog_id, p.posts) for p in result.plans] == [(1, 11), (2, 1)]
    text = describe_result(result, topic="wordpress.events", checkpoint=Path("c.json"))
    assert text.startswith("dry run: would emit 12 post_snapshot events (blog 1: 11, blog 2: 1)")


def test_a_signal_stops_between_chunks_with_progress_saved(tmp_path: Path) -> None:
    async def scenario() -> SnapshotState | None:
        stop = asyncio.Event()
        stop.set()
        runner, state_file, _, _ = snapshotter(
            FakeRead(site()), FakeSink(), tmp_path, SnapshotOptions(chunk_size=4), stop=stop
        )
        with pytest.raises(SnapshotInterrupted, match="again to continue"):
            await runner.run()
        return state_file.load()

    state = asyncio.run(scenario())
    assert state is not None and state.after_id(1) == 4 and state.in_flight == ()


def test_oversize_events_are_shrunk_and_counted(tmp_path: Path) -> None:
    posts = {1: [bundle(1, content="x" * 5000), bundle(2)]}
    sink = FakeSink(value_limit=2000)
    runner, _, _, _ = snapshotter(FakeRead(posts), sink, tmp_path, SnapshotOptions())
    result = asyncio.run(runner.run())
    assert result.oversize == 1
    assert sink.sent[0][1]["data"]["omitted"] == ["post.content"]
    assert "1 events were larger" in describe_result(result, topic="t", checkpoint=Path("c"))


def test_tables_that_are_not_innodb_stop_it(tmp_path: Path) -> None:
    read = FakeRead(site(), engines={"wp_posts": "InnoDB", "wp_postmeta": "MyISAM"})
    runner, state_file, _, _ = snapshotter(read, FakeSink(), tmp_path, SnapshotOptions())
    with pytest.raises(PreflightFailed, match=r"wp_postmeta \(MyISAM\)"):
        asyncio.run(runner.run())
    assert state_file.load() is None


def test_result_names_the_covered_ranges(tmp_path: Path) -> None:
    checkpoint = Checkpoint(P, covered_ranges=(CoveredRange(1, 5, 9, covered_through(P2)),))
    result = SnapshotResult(Start.RESUME, P2, (), checkpoint=checkpoint, events=3, chunks=1)
    text = describe_result(result, topic="t", checkpoint=Path("c.json"))
    assert "checkpoint c.json saved at binlog.000001:1000 with 1 covered ranges" in text
