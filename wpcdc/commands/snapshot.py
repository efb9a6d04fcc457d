"""``wpcdc snapshot``: settings and options in, the snapshot wired and run, a summary out.

This module owns the command's wiring: the options as the command line gives
them (:func:`options_from`), the progress reporter for where stderr goes, the
decision to start, resume or refuse (with the state file beside the
checkpoint, and the binlog still holding a resumed snapshot's position), the
adapters (``wpcdc.mysql.consistent.ConsistentSnapshot``,
``wpcdc.kafka.sink.KafkaSink``), what a failure tells the operator, and the
summary printed at the end (:func:`describe_result`). The run itself is
``wpcdc.runtime.snapshot``.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from wpcdc.config.settings import Settings
from wpcdc.core.derive import AUTO_DRAFT
from wpcdc.core.errors import (
    BrokerUnavailable,
    ConfigError,
    DeliveryFailed,
    PositionLost,
    SnapshotRefused,
    WpcdcError,
)
from wpcdc.core.snapshot_state import SnapshotOptions, Start, decide_start, parse_id_range
from wpcdc.kafka.sink import KafkaSink
from wpcdc.mysql.consistent import ConsistentSnapshot
from wpcdc.mysql.errors import MysqlError, is_access_denied, refused
from wpcdc.mysql.posts import load_mirror
from wpcdc.mysql.status import check_position_available
from wpcdc.runtime.build import source_name
from wpcdc.runtime.progress import LogProgress, ProgressReporter, TerminalProgress
from wpcdc.runtime.run import stop_on_signals
from wpcdc.runtime.signing import signed
from wpcdc.runtime.snapshot import SnapshotResult, SnapshotStateFile, Snapshotter, state_path
from wpcdc.runtime.stores import DurableSaves, Store, checkpoint_store, close, where
from wpcdc.runtime.stores import existing as existing_checkpoint


def run(
    settings: Settings,
    options: SnapshotOptions,
    *,
    echo: Callable[[str], None] = print,
) -> None:
    """Snapshot with progress on stderr, then print what was done."""
    progress: ProgressReporter = (
        TerminalProgress(sys.stderr, time.monotonic)
        if sys.stderr.isatty()
        else LogProgress(time.monotonic, settings.snapshot.progress_interval_seconds)
    )
    result, refusal = snapshot(settings, options, progress)
    echo(
        describe_result(
            result, topic=settings.kafka.topic, checkpoint=Path(where(settings)), refusal=refusal
        )
    )


def options_from(
    settings: Settings,
    *,
    blogs: Sequence[int] = (),
    post_types: Sequence[str] = (),
    ids: str | None = None,
    chunk_size: int | None = None,
    dry_run: bool = False,
    force: bool = False,
) -> SnapshotOptions:
    """The options as the command line gives them; ConfigError for a bad ``--ids``."""
    try:
        id_range = parse_id_range(ids) if ids is not None else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return SnapshotOptions(
        chunk_size=chunk_size or settings.snapshot.chunk_size,
        blogs=tuple(blogs),
        post_types=tuple(post_types),
        ids=id_range,
        dry_run=dry_run,
        force=force,
    )


def snapshot(
    settings: Settings, options: SnapshotOptions, progress: ProgressReporter
) -> tuple[SnapshotResult, str]:
    """The initial load (full) or a re-emit (limited); see wpcdc.runtime.snapshot. Returns the
    result and, for a dry run, why the real run would be refused (else empty)."""
    store = checkpoint_store(settings)
    try:
        return asyncio.run(_snapshot(settings, options, progress, store))
    finally:
        close(store)


async def _snapshot(
    settings: Settings, options: SnapshotOptions, progress: ProgressReporter, store: Store
) -> tuple[SnapshotResult, str]:
    state_file = SnapshotStateFile(state_path(settings.checkpoint.path))
    state = None if options.limited else state_file.load()
    existing = await asyncio.to_thread(existing_checkpoint, settings, store)
    refusal = ""
    try:
        start = decide_start(options, checkpoint=existing, state=state)
    except SnapshotRefused as exc:
        if not options.dry_run:
            raise
        start, refusal = Start.FRESH, str(exc)
    if start is Start.RESUME and state is not None:
        # P becomes the streaming checkpoint: the stream must still find it.
        try:
            await asyncio.to_thread(check_position_available, settings.mysql, state.position)
        except PositionLost as exc:
            raise PositionLost(
                f"the unfinished snapshot cannot be resumed: its position {state.position} is "
                f"no longer in the binlog ({str(exc).split('. ')[0]}). Start over with "
                "`wpcdc snapshot --force`, and keep binlogs longer than a snapshot takes."
            ) from None
    fold = settings.fold.to_config()
    # The options, users and slugs the events' links come from (wpcdc.core.site).
    mirror = await asyncio.to_thread(load_mirror, settings.mysql)
    mirror.site.rules = settings.links.to_rules()
    open_read = functools.partial(
        ConsistentSnapshot.open,
        settings.mysql,
        exclude_post_types=sorted(fold.ignored_post_types),
        exclude_statuses=() if fold.emit_auto_drafts else (AUTO_DRAFT,),
    )
    stop = stop_on_signals()
    sink = None if options.dry_run else KafkaSink(settings=settings.kafka)
    snapshotter = Snapshotter(
        open_read=open_read,
        sink=None if sink is None else signed(sink, settings.signing),
        options=options,
        start=start,
        fold=fold,
        source_name=source_name(settings),
        state_file=state_file,
        checkpoints=DurableSaves(store),
        progress=progress,
        state=state,
        stop=stop,
        mirror=mirror,
    )
    again = (
        ""
        if start is Start.LIMITED or options.dry_run
        else " The progress of every acknowledged chunk is saved: run `wpcdc snapshot` again "
        "to continue."
    )
    try:
        if sink is None:
            return await snapshotter.run(), refusal
        await sink.start()
        try:
            await sink.ensure_topic()
            return await snapshotter.run(), refusal
        finally:
            await sink.stop()
    except (DeliveryFailed, BrokerUnavailable) as exc:
        raise type(exc)(f"{exc}.{again}") from None
    except (MysqlError, OSError) as exc:
        if is_access_denied(exc):
            raise refused(exc) from None
        raise WpcdcError(f"the database read failed: {type(exc).__name__}: {exc}.{again}") from None


def describe_result(
    result: SnapshotResult, *, topic: str, checkpoint: Path, refusal: str = ""
) -> str:
    """What the snapshot did (or, for a dry run, would do), for the operator."""
    posts = sum(p.posts for p in result.plans)
    per_blog = ", ".join(f"blog {p.blog_id}: {p.posts:,}" for p in result.plans) or "none left"
    lines = []
    if result.dry_run:
        lines.append(
            f"dry run: would emit {posts:,} post_snapshot events ({per_blog}), read at "
            f"{result.read_at}, to topic {topic}"
        )
        if result.start is Start.RESUME:
            lines.append("it would continue the unfinished snapshot: these are the posts left")
        elif result.start is Start.FRESH:
            lines.append(f"then save the checkpoint {checkpoint} at {result.read_at}")
        else:
            lines.append("a limited snapshot: the checkpoint would stay as it is")
        if refusal:
            lines.append(f"but the real run would be refused: {refusal}")
        return "\n".join(lines)
    lines.append(
        f"emitted {result.events:,} post_snapshot events ({per_blog}), read at "
        f"{result.read_at}, to topic {topic} in {result.chunks:,} chunks"
    )
    if result.oversize:
        lines.append(
            f"{result.oversize:,} events were larger than kafka.max_message_bytes: sent "
            "without bodies or values (data.omitted says what)"
        )
    if result.meta_errors:
        lines.append(f"{result.meta_errors:,} meta values did not decode: sent raw, flagged")
    if result.checkpoint is None:
        lines.append("a limited snapshot: the checkpoint is unchanged")
    else:
        covered = len(result.checkpoint.covered_ranges)
        lines.append(
            f"checkpoint {checkpoint} saved at {result.checkpoint.position}"
            + (f" with {covered} covered ranges (posts read on resume)" if covered else "")
            + ": `wpcdc run` streams every change from there"
        )
    return "\n".join(lines)
