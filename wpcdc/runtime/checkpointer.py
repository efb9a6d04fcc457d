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
from dataclasses import dataclass, field

from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint, CheckpointStore
from wpcdc.core.fold import Folder
from wpcdc.core.positions import Position, file_index
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.resnapshot import Resnapshots

log = logging.getLogger("wpcdc.stream")


@dataclass(eq=False, kw_only=True)
class Checkpointer:
    """Computes the checkpoint and saves it to ``store`` when due."""

    store: CheckpointStore
    folder: Folder
    tracker: AckTracker
    start: Position
    resnapshots: Resnapshots | None
    interval: float
    metrics: Metrics
    clock: Callable[[], float]
    _saved: Checkpoint | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._last_save = self.clock()

    def checkpoint(self) -> Checkpoint:
        """The checkpoint that may be saved now."""
        consumed = self.folder.position or self.start
        holds = [self.folder.oldest_open()]
        if self.resnapshots is not None:
            # An unfinished re-snapshot request must be met again after a restart.
            holds.append(self.resnapshots.hold())
        held = [p for p in holds if p]
        hold = min(held, key=Position.key) if held else None
        oldest_open = self.folder.oldest_open_first()
        return self.tracker.checkpoint(
            consumed,
            hold,
            open_first=None if oldest_open is None else oldest_open[0],
            fed=self.folder.fed,
        )

    def maybe_save(self) -> None:
        """Save when ``interval`` seconds have passed since the last save."""
        if self.clock() - self._last_save >= self.interval:
            self.save()

    @property
    def saved(self) -> Checkpoint | None:
        """The checkpoint saved (or committed) last by this pipeline."""
        return self._saved

    def save(self) -> None:
        """Save the checkpoint now, unless it is the one saved last."""
        checkpoint = self.checkpoint()
        self._last_save = self.clock()
        if checkpoint == self._saved:
            return
        self.store.save(checkpoint)
        self.committed(checkpoint)

    def committed(self, checkpoint: Checkpoint) -> None:
        """``checkpoint`` is saved: by :meth:`save`, or committed in a transaction
        with the events it covers (wpcdc.runtime.transactions)."""
        self._last_save = self.clock()
        self._saved = checkpoint
        if self.resnapshots is not None:
            self.resnapshots.saved(checkpoint)
        self.metrics.checkpoint_file.set(file_index(checkpoint.position.file))
        self.metrics.checkpoint_pos.set(checkpoint.position.pos)
        self.metrics.checkpoint_saved.set(time.time())
        log.debug("checkpoint %s (%d covered)", checkpoint.position, len(checkpoint.covered))
