"""Liveness and readiness of ``wpcdc run``: what ``/healthz`` and ``/readyz`` answer.

This module owns the two verdicts an orchestrator asks for, served next to
``/metrics`` (:meth:`wpcdc.runtime.metrics.Metrics.serve`):

* **alive** (``/healthz``): the asyncio loop still turns. A task on the loop
  calls :meth:`Health.beat` every second; a beat older than
  ``metrics.live_max_stall_seconds`` means the loop is stuck (a blocking call on
  it, a deadlock), which only a restart of the process cures.
* **ready** (``/readyz``): the run is connected to the database and the broker
  (a pipeline is built and streaming) and the oldest change not yet
  acknowledged by the broker was committed less than
  ``metrics.ready_max_lag_seconds`` ago. Otherwise 503 with the reason:
  ``starting``, ``broker unreachable``, ``database unreachable`` (the last
  pipeline failed for that reason and is being rebuilt), ``catching up``, or
  ``standby`` (``ha.enabled``: another instance holds the lead; the body names
  it when the server shows it, :mod:`wpcdc.runtime.leader`).
  A broker that goes away while nothing is being sent is noticed at the next
  send that is not acknowledged within ``kafka.request_timeout`` (the age of
  the waiting change shows first as ``catching up``).

The run loop (:mod:`wpcdc.runtime.run`) reports the phase; the lag is read
from the ``wpcdc_unacknowledged_change_age_seconds`` gauge the pipeline keeps.
The verdicts are read from the HTTP server's threads and written from the
loop: each is one attribute, replaced whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    """Where the run loop is; every value but STREAMING is a reason not to be ready."""

    STARTING = "starting"
    STREAMING = "streaming"
    BROKER_UNREACHABLE = "broker unreachable"
    DATABASE_UNREACHABLE = "database unreachable"
    STANDBY = "standby"


CATCHING_UP = "catching up"


@dataclass(frozen=True, slots=True)
class Verdict:
    """An answer to a probe: the HTTP status follows ``ok``; ``body`` is sent as JSON."""

    ok: bool
    body: dict[str, Any]

    @property
    def status(self) -> int:
        return 200 if self.ok else 503


class Health:
    """The state behind the probes. ``lag`` returns the seconds since the commit
    of the oldest change not yet acknowledged (0 when none is waiting)."""

    def __init__(
        self,
        *,
        max_stall: float,
        max_lag: float,
        lag: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_stall = max_stall
        self._max_lag = max_lag
        self._lag = lag
        self._clock = clock
        self._last_beat = clock()
        self._phase = Phase.STARTING
        self._detail: dict[str, Any] = {}

    @property
    def phase(self) -> Phase:
        return self._phase

    def beat(self) -> None:
        """The loop is alive now."""
        self._last_beat = self._clock()

    def enter(self, phase: Phase, detail: dict[str, Any] | None = None) -> None:
        """Now in ``phase``; ``detail`` joins the readiness body while not streaming
        (e.g. who holds the lead of a standby)."""
        self._detail = dict(detail or {})
        self._phase = phase

    def liveness(self) -> Verdict:
        stalled = self._clock() - self._last_beat
        if stalled > self._max_stall:
            return Verdict(
                False,
                {"alive": False, "reason": f"the event loop has not turned for {stalled:.0f}s"},
            )
        return Verdict(True, {"alive": True})

    def readiness(self) -> Verdict:
        phase = self._phase
        if phase is not Phase.STREAMING:
            return Verdict(False, {"ready": False, "reason": phase.value, **self._detail})
        lag = self._lag()
        if lag > self._max_lag:
            return Verdict(
                False, {"ready": False, "reason": CATCHING_UP, "lag_seconds": round(lag, 1)}
            )
        return Verdict(True, {"ready": True, "lag_seconds": round(lag, 1)})
