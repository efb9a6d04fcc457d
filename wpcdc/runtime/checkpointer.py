"""Saving the stream's checkpoint: what position, and when.

This module owns the pipeline's side of promise "checkpoint after ack"
(docs/ARCHITECTURE.md): the checkpoint is the position the fold has consumed,
held back by the oldest open fold group and by unfinished live re-snapshots,
and then by the :class:`~wpcdc.core.acks.AckTracker` to before the oldest
unacknowledged event. It is saved to the store every ``interval`` seconds
(only when it changed) and once more on shutdown, and reported in the metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint, CheckpointStore
from wpcdc.core.fold import Folder
from wpcdc.core.positions import Position, file_index
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.resnapshot import Resnapshots

log = logging.getLogger("wpcdc.stream")


class Checkpointer:
    """Computes the checkpoint and saves it to ``store`` when due."""

    def __init__(
        self,
        *,
        store: CheckpointStore,
        folder: Folder,
        tracker: AckTracker,
        start: Position,
        resnapshots: Resnapshots | None,
        interval: float,
        metrics: Metrics,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._folder = folder
        self._tracker = tracker
        self._start = start
        self._resnapshots = resnapshots
        self._interval = interval
        self._metrics = metrics
        self._clock = clock
        self._saved: Checkpoint | None = None
        self._last_save = clock()

    def checkpoint(self) -> Checkpoint:
        """The checkpoint that may be saved now."""
        consumed = self._folder.position or self._start
        holds = [self._folder.oldest_open()]
        if self._resnapshots is not None:
            # An unfinished re-snapshot request must be met again after a restart.
            holds.append(self._resnapshots.hold())
        held = [p for p in holds if p]
        hold = min(held, key=Position.key) if held else None
        return self._tracker.checkpoint(consumed, hold)

    def maybe_save(self) -> None:
        """Save when ``interval`` seconds have passed since the last save."""
        if self._clock() - self._last_save >= self._interval:
            self.save()

    def save(self) -> None:
        """Save the checkpoint now, unless it is the one saved last."""
        checkpoint = self.checkpoint()
        self._last_save = self._clock()
        if checkpoint == self._saved:
            return
        self._store.save(checkpoint)
        self._saved = checkpoint
        if self._resnapshots is not None:
            self._resnapshots.saved(checkpoint)
        self._metrics.checkpoint_file.set(file_index(checkpoint.position.file))
        self._metrics.checkpoint_pos.set(checkpoint.position.pos)
        self._metrics.checkpoint_saved.set(time.time())
        log.debug("checkpoint %s (%d covered)", checkpoint.position, len(checkpoint.covered))
