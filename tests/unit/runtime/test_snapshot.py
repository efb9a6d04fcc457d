"""The Snapshotter with in-memory adapters: chunks, acks, saved progress, resume,
limited snapshots, dry runs, signals, oversize events; its state file, and the
refusal to stream while a full snapshot is unfinished."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.binlog_builder import meta, post_row
from tests.support.fakes import SNAPSHOT_POSITION, FakeRead, MemorySink, MemoryStore, NoProgress
from tests.support.snapshots import run_blog
from wpcdc.commands.snapshot import describe_result
from wpcdc.core.checkpoint import Checkpoint, CoveredRange
from wpcdc.core.errors import (
    CheckpointError,
    DeliveryFailed,
    PreflightFailed,
    SnapshotInterrupted,
    SnapshotUnfinished,
)
from wpcdc.core.events import TermRef
from wpcdc.core.fold import FoldConfig
from wpcdc.core.positions import Position
from wpcdc.core.snapshot_events import PostBundle
from wpcdc.core.snapshot_state import (
    MAX_POST_ID,
    IdRange,
    SnapshotOptions,
    SnapshotState,
    Start,
    covered_through,
)
from wpcdc.runtime.snapshot import SnapshotStateFile, Snapshotter, refuse_unfinished, state_path

P = SNAPSHOT_POSITION  # where a FakeRead reads by default
P2 = Position("binlog.000001", 9000)
# The state file keeps a position's GTID too.
P_GTID = Position("binlog.000001", 1000, "0-1-5")
P2_GTID = Position("binlog.000001", 5000, "0-1-9")


def bundle(post_id: int, blog: int = 1, **fields: object) -> PostBundle:
    return PostBundle(
        blog_id=blog,
        post=post_row(post_id, title=f"post {post_id}", **fields),
        meta=[meta(post_id * 10, post_id, "k", 'a:1:{i:0;s:1:"x";}')],
        terms=[TermRef(7, "post_tag", 3, "cdc", "CDC")],
    )


def snapshotter(
    read: FakeRead,
    sink: MemorySink,
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
    read, sink = FakeRead(site()), MemorySink()
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
        read, MemorySink(fail_after=6), tmp_path, SnapshotOptions(chunk_size=4)
    )
    with pytest.raises(DeliveryFailed):
        asyncio.run(runner.run())
    state = state_file.load()
    assert state is not None and not state.done and store.saved == []
    assert state.after_id(1) == 4 and [r.post_ids for r in state.in_flight] == [(5, 6, 7, 8)]
    # Post 6 is deleted before the rerun; the rerun reads at P2.
    later = site()
    later[1] = [b for b in later[1] if b.post["ID"] != 6]
    sink = MemorySink()
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
    sink = MemorySink()
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
    sink = MemorySink()
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
            FakeRead(site()), MemorySink(), tmp_path, SnapshotOptions(chunk_size=4), stop=stop
        )
        with pytest.raises(SnapshotInterrupted, match="again to continue"):
            await runner.run()
        return state_file.load()

    state = asyncio.run(scenario())
    assert state is not None and state.after_id(1) == 4 and state.in_flight == ()


def test_oversize_events_are_shrunk_and_counted(tmp_path: Path) -> None:
    posts = {1: [bundle(1, content="x" * 5000), bundle(2)]}
    sink = MemorySink(value_limit=2000)
    runner, _, _, _ = snapshotter(FakeRead(posts), sink, tmp_path, SnapshotOptions())
    result = asyncio.run(runner.run())
    assert result.oversize == 1
    assert sink.sent[0][1]["data"]["omitted"] == ["post.content"]
    assert "1 events were larger" in describe_result(result, topic="t", checkpoint=Path("c"))


def test_tables_that_are_not_innodb_stop_it(tmp_path: Path) -> None:
    read = FakeRead(site(), engines={"wp_posts": "InnoDB", "wp_postmeta": "MyISAM"})
    runner, state_file, _, _ = snapshotter(read, MemorySink(), tmp_path, SnapshotOptions())
    with pytest.raises(PreflightFailed, match=r"wp_postmeta \(MyISAM\)"):
        asyncio.run(runner.run())
    assert state_file.load() is None


# --- the state file, and the refusal to stream while it is unfinished ---


def test_state_round_trips_through_its_file(tmp_path: Path) -> None:
    state = SnapshotState(position=P_GTID, blogs=(1, 2))
    state = state.chunk_acknowledged(1, 0, 100, P_GTID, [1, 100])
    state = state.chunk_sent(1, 100, P_GTID, [101, 102])
    state = state.chunk_acknowledged(1, 100, MAX_POST_ID, P2_GTID, [101])
    state = state.chunk_sent(2, 0, P2_GTID, [5])
    store = SnapshotStateFile(state_path(tmp_path / "checkpoint.json"))
    assert store.path == tmp_path / "checkpoint.json.snapshot"
    assert store.load() is None
    store.save(state)
    assert store.load() == state
    store.path.write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged"):
        store.load()


def test_run_refuses_while_a_snapshot_is_unfinished(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    refuse_unfinished(checkpoint)  # no state file
    store = SnapshotStateFile(state_path(checkpoint))
    store.save(SnapshotState(position=P_GTID, blogs=(1,)))
    with pytest.raises(SnapshotUnfinished, match="wpcdc snapshot") as refused:
        refuse_unfinished(checkpoint)
    assert refused.value.exit_code == 1
    store.save(run_blog(SnapshotState(position=P_GTID, blogs=(1,)), 1, P_GTID, [[1]]).finished())
    refuse_unfinished(checkpoint)
