"""Standby failover (``ha.enabled``): taking turns at streaming one checkpoint.

This module owns the life of a ``wpcdc run`` that shares its checkpoint with
others: stand by until the lock of the checkpoint is ours (a MySQL
``GET_LOCK`` on a dedicated connection, :mod:`wpcdc.mysql.lock`), stream while
it stays ours, and go back to standing by when it is lost.

* **Standby.** The lock is asked for every ``ha.poll_seconds`` (each ask waits
  on the server, and a stop is honoured while it waits). Readiness answers 503
  ``{"reason": "standby", "leader": ...}``, liveness 200, ``wpcdc_leader`` is 0,
  and a log line names the connection holding the lead (and its host, when
  the server shows it) whenever that changes.
* **Leader.** Once the lock is taken the stream runs as without
  ``ha.enabled`` (:func:`wpcdc.runtime.run.run_until_stopped` passes it in as
  ``lead``), from the shared checkpoint. A thread confirms every
  ``ha.check_seconds`` that the server still gives the lock to this
  connection (``IS_USED_LOCK(name) = CONNECTION_ID()``); each confirmation is
  trusted for ``ha.lease_seconds / 2`` (:class:`~wpcdc.core.leadership.Lease`).
* **Fencing.** When a confirmation fails (the connection was killed or lost,
  another connection holds the lock) or none came within the lease, the leader
  stops producing: the pipeline is stopped through the run's stop (no new
  group is sent; what the producer already holds may still be delivered,
  bounded by the pipeline's shutdown timeout, then it is cancelled), every
  checkpoint save after that is dropped (:class:`FencedStore`, checked before
  each save), the lock connection is closed, and the process stands by again.

What a split-brain window costs. The server frees the lock of a cut-off
leader after ``ha.lease_seconds`` of silence; the leader stops trusting its
lease after half of that, so normally it has stopped sending before a standby
gets the lock. When it has not (a process frozen longer than the lease, a
producer still delivering records it held), both write to the topic for a
while: the records of the old leader are events a new leader replays from
the checkpoint with the same ids (promise "recognisable replays",
docs/ARCHITECTURE.md), or older states of a post that a consumer applying
only newer ``sequence`` values skips. Nothing is lost: the new leader starts
from the last checkpoint saved, and a checkpoint is saved only after the
acknowledgements it covers (promise "checkpoint after ack"), whoever saved it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from wpcdc.config.settings import Settings
from wpcdc.core.backoff import Backoff
from wpcdc.core.checkpoint import Checkpoint, CheckpointStore
from wpcdc.core.leadership import Lease, checkpoint_identity, fence_after, lock_name
from wpcdc.mysql.errors import MysqlError, error_text, is_access_denied, refused
from wpcdc.mysql.lock import Holder, LockError, ServerLock
from wpcdc.runtime.health import Health, Phase
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.stores import checkpoint_topic

log = logging.getLogger("wpcdc.leader")

T = TypeVar("T")

# After the stop of a fenced term: how long the pipeline may take to stop on
# its own (its shutdown timeout is 8 s) before it is cancelled.
FENCED_STOP_GRACE: Final = 10.0
# How long cancelling a term may take before the process stands by regardless.
CANCEL_GRACE: Final = 5.0
# Between attempts to reach the database while standing by.
RETRY_FIRST: Final = 1.0
RETRY_MAX: Final = 15.0


class Fence:
    """The lease of one term as leader: confirmed by the lock's watcher thread
    and before each checkpoint save, read on the loop (each is one attribute,
    replaced whole). ``confirm`` asks the server whether the lock is still
    ours; ``on_lost`` is called (from any thread) once, when the lead is lost."""

    def __init__(
        self,
        bound: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        confirm: Callable[[], bool] | None = None,
        on_lost: Callable[[], object] | None = None,
    ) -> None:
        self._lease = Lease(bound)
        self._clock = clock
        self._confirm = confirm
        self._on_lost = on_lost
        self.reason = ""

    def confirmed(self, sent_at: float) -> None:
        self._lease.confirmed(sent_at)

    def lose(self, reason: str) -> None:
        if self._lease.lost:
            return
        self.reason = reason
        self._lease.lose()
        if self._on_lost is not None:
            # From a daemon thread, possibly after the loop closed at exit.
            with contextlib.suppress(RuntimeError):
                self._on_lost()

    def valid(self) -> bool:
        """True while this process may produce and save as the leader."""
        return self._lease.valid(self._clock())

    def expires_in(self) -> float:
        return self._lease.expires_in(self._clock())

    def check(self) -> bool:
        """Valid, and the server confirms now that the lock is ours (one query,
        blocking: made before a checkpoint is saved)."""
        if not self.valid():
            return False
        if self._confirm is None:
            return True
        sent = self._clock()
        try:
            held = self._confirm()
        except (MysqlError, OSError) as exc:
            self.lose(f"the lock connection failed: {error_text(exc)}")
            return False
        if not held:
            self.lose("the server gives the lock to another connection")
            return False
        self.confirmed(sent)
        return self.valid()


class FencedStore:
    """``store`` whose saves are dropped once the fence is down: a leader that
    lost the lock must not move the shared checkpoint (a new leader may have
    started from it)."""

    def __init__(self, store: CheckpointStore, fence: Fence) -> None:
        self._store = store
        self._fence = fence
        self._dropped = 0

    def load(self) -> Checkpoint | None:
        return self._store.load()

    def save(self, checkpoint: Checkpoint) -> None:
        if not self._fence.check():
            self._dropped += 1
            if self._dropped == 1:
                log.warning(
                    "not the leader any more: checkpoint %s not saved",
                    checkpoint.position,
                    extra={"position": str(checkpoint.position)},
                )
            return
        self._store.save(checkpoint)


def ha_lock_name(settings: Settings) -> str:
    """``ha.lock_name``, or the name every instance sharing this checkpoint derives."""
    if settings.ha.lock_name:
        return settings.ha.lock_name
    if settings.checkpoint.store == "kafka":
        where = f"{checkpoint_topic(settings)}/{settings.kafka.topic}"
    else:
        where = str(settings.checkpoint.path.absolute())
    return lock_name(
        checkpoint_identity(
            database=settings.mysql.database, store=settings.checkpoint.store, where=where
        )
    )


class _Watcher:
    """The leader's thread: confirms the lock every ``interval`` seconds until
    stopped or the lock is lost (the fence then calls its ``on_lost``)."""

    def __init__(self, fence: Fence, interval: float) -> None:
        self._fence = fence
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="wpcdc-leader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _watch(self) -> None:
        while not self._stopping.wait(self._interval):
            if not self._fence.check():
                return


class Leadership:
    """Stand by, lead while the lock is ours, stand by again; until ``stop``."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics,
        stop: asyncio.Event,
        health: Health | None,
        lead: Callable[[asyncio.Event, Fence], Awaitable[None]],
    ) -> None:
        self._settings = settings
        self._ha = settings.ha
        self._metrics = metrics
        self._stop = stop
        self._health = health
        self._lead = lead
        self._name = ha_lock_name(settings)
        self._bound = fence_after(self._ha.lease_seconds)

    async def run(self) -> None:
        self._metrics.leader.set(0)
        while not self._stop.is_set():
            taken = await self._stand_by()
            if taken is None:
                return
            lock, confirmed_at = taken
            try:
                await self._term(lock, confirmed_at)
            finally:
                self._metrics.leader.set(0)
                if self._stop.is_set():
                    # Given up at once: a standby need not wait for the server to notice.
                    await self._bounded(asyncio.to_thread(_release, lock), 3.0)
                else:
                    await asyncio.to_thread(lock.close)

    # --- standing by -----------------------------------------------------------------

    async def _stand_by(self) -> tuple[ServerLock, float] | None:
        """Wait for the lock; the lock and when it was confirmed, or None when stopped."""
        lock = ServerLock(
            self._settings.mysql,
            self._name,
            lease_seconds=self._ha.lease_seconds,
            timeout=self._bound,
        )
        self._enter(Phase.STANDBY, {"lock": self._name})
        log.info("standing by for lock %r", self._name, extra={"lock": self._name})
        backoff = Backoff(RETRY_FIRST, RETRY_MAX)
        announced: Holder | None = None
        while not self._stop.is_set():
            try:
                outcome = await self._unless_stopped(asyncio.to_thread(self._poll, lock))
            except _Stopped:
                await asyncio.to_thread(lock.close)
                return None
            except (MysqlError, OSError, LockError) as exc:
                if is_access_denied(exc):
                    raise refused(exc) from None
                delay = backoff.next_delay()
                self._enter(
                    Phase.STANDBY, {"lock": self._name, "leader": "unknown", "error": str(exc)}
                )
                log.warning(
                    "standing by, but the lock %r cannot be asked for (%s); again in %.0fs",
                    self._name,
                    error_text(exc),
                    delay,
                    extra={"lock": self._name},
                )
                announced = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                continue
            backoff.reset()
            if isinstance(outcome, float):
                log.info(
                    "leading: lock %r taken on connection %s",
                    self._name,
                    lock.connection_id,
                    extra={"lock": self._name},
                )
                return lock, outcome
            if outcome is not None and outcome != announced:
                announced = outcome
                self._enter(Phase.STANDBY, {"lock": self._name, "leader": str(outcome)})
                log.info(
                    "standing by: the lead (lock %r) is held by %s",
                    self._name,
                    outcome,
                    extra={"lock": self._name, "leader": str(outcome)},
                )
        await asyncio.to_thread(lock.close)
        return None

    def _poll(self, lock: ServerLock) -> float | Holder | None:
        """In a thread: one wait for the lock. When taken, the time of the
        confirmation that starts the lease; else who holds it (None: nobody now)."""
        if not lock.is_open:
            lock.open()
        if lock.acquire(self._ha.poll_seconds):
            sent = time.monotonic()
            if lock.confirm():
                return sent
            lock.close()  # cannot happen on a sane server; never lead unconfirmed
            return None
        return lock.holder()

    # --- leading -----------------------------------------------------------------------

    async def _term(self, lock: ServerLock, confirmed_at: float) -> None:
        """Stream while the lock is ours; return when stopped or fenced."""
        loop = asyncio.get_running_loop()
        term_stop = asyncio.Event()
        fence = Fence(
            self._bound,
            confirm=lock.confirm,
            on_lost=lambda: loop.call_soon_threadsafe(term_stop.set),
        )
        fence.confirmed(confirmed_at)
        watcher = _Watcher(fence, self._ha.check_seconds)
        watcher.start()
        guards = [
            asyncio.ensure_future(self._follow_stop(term_stop)),
            asyncio.ensure_future(self._expire(fence, term_stop)),
        ]
        self._metrics.leader.set(1)
        self._enter(Phase.STARTING, {})
        term = asyncio.ensure_future(self._lead(term_stop, fence))
        try:
            failure = await self._until_ended(term, term_stop, fence)
        finally:
            watcher.stop()
            for guard in guards:
                guard.cancel()
        if self._stop.is_set() and failure is None:
            return
        await asyncio.to_thread(watcher.join, self._bound + 1)
        if failure is not None and fence.valid():
            # A failure while the lock seemed ours: ask the server once more (a
            # replica registering with our server_id ends the old leader's read,
            # which may come before the watcher's next check).
            if await self._bounded(asyncio.to_thread(_confirms, lock), self._bound + 1):
                raise failure
            fence.lose("the lock is not confirmed")
        if fence.valid():
            log.warning("the stream ended on its own; standing by again")
            return
        if failure is not None:
            log.info("the stream ended after the lead was lost: %s", failure)
        log.warning(
            "lost the lead (%s): stopped producing, standing by",
            fence.reason or "the lock was not confirmed in time",
            extra={"lock": self._name},
        )

    async def _until_ended(
        self, term: asyncio.Future[None], term_stop: asyncio.Event, fence: Fence
    ) -> BaseException | None:
        """Wait for the term; once stopped by the fence, bound how long it takes.
        The term's failure, if any."""
        stopping = asyncio.ensure_future(term_stop.wait())
        waits: set[asyncio.Future[Any]] = {term, stopping}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not term.done() and not self._stop.is_set():
            await asyncio.wait({term}, timeout=FENCED_STOP_GRACE)
            deadline = time.monotonic() + CANCEL_GRACE
            while not term.done() and time.monotonic() < deadline:
                term.cancel()
                await asyncio.wait({term}, timeout=0.2)
            if not term.done():
                log.error("the stream did not stop within %.0fs of losing the lead", CANCEL_GRACE)
                return None
        elif not term.done():
            await asyncio.wait({term})  # a stop: the run flushes and saves, bounded on its own
        if term.cancelled():
            return None
        return term.exception()

    async def _follow_stop(self, term_stop: asyncio.Event) -> None:
        await self._stop.wait()
        term_stop.set()

    async def _expire(self, fence: Fence, term_stop: asyncio.Event) -> None:
        """Stop the term when the lease runs out without a confirmation (the
        watcher may be stuck waiting for a server that does not answer)."""
        while fence.valid():
            await asyncio.sleep(max(fence.expires_in(), 0.05))
        fence.lose(fence.reason or f"no confirmation of the lock within {self._bound:g}s")
        term_stop.set()

    # --- helpers -------------------------------------------------------------------------

    def _enter(self, phase: Phase, detail: dict[str, str]) -> None:
        if self._health is not None:
            self._health.enter(phase, detail)

    async def _unless_stopped(self, work: Awaitable[T]) -> T:
        """The result of ``work`` (a call in a daemon thread), unless ``stop`` comes
        first: then it is abandoned and _Stopped raised."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.add_done_callback(_retrieve)
            raise _Stopped
        return task.result()

    @staticmethod
    async def _bounded(work: Awaitable[T], timeout: float) -> T | None:
        try:
            return await asyncio.wait_for(work, timeout)
        except (TimeoutError, MysqlError, OSError):
            return None


class _Stopped(Exception):
    pass


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _confirms(lock: ServerLock) -> bool:
    try:
        return lock.is_open and lock.confirm()
    except (MysqlError, OSError):
        return False


def _release(lock: ServerLock) -> None:
    try:
        if lock.is_open:
            lock.release()
    except (MysqlError, OSError):
        pass
    finally:
        lock.close()
