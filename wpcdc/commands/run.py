"""``wpcdc run``: settings in, the metrics endpoint served, the streamer run until stopped.

This module owns the command's wiring: one metrics registry for the whole run
(served with the probes on ``metrics.host:metrics.port`` unless the port is
0), the heartbeat that keeps ``/healthz`` answering 200 while the event loop
turns, SIGTERM/SIGINT as the stop, and
:func:`wpcdc.runtime.run.run_until_stopped`, which streams and rebuilds the
pipeline after failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry

from wpcdc.config.settings import Settings
from wpcdc.runtime.health import Health
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.run import DaemonThreads, run_until_stopped, stop_on_signals

log = logging.getLogger("wpcdc.run")

# Seconds between heartbeats of the event loop (metrics.live_max_stall_seconds >= 2).
HEARTBEAT_INTERVAL = 1.0


def run(settings: Settings) -> None:
    """Stream until SIGTERM/SIGINT; raise on failures no retry can fix."""
    asyncio.run(_run(settings))


async def _run(settings: Settings) -> None:
    stop = stop_on_signals()
    # A stop must not wait for a blocked database call (see DaemonThreads).
    asyncio.get_running_loop().set_default_executor(DaemonThreads())
    metrics = Metrics(CollectorRegistry())
    health = Health(
        max_stall=settings.metrics.live_max_stall_seconds,
        max_lag=settings.metrics.ready_max_lag_seconds,
        lag=metrics.unacknowledged_age_seconds,
    )
    if settings.metrics.port:
        server = metrics.serve(settings.metrics.host, settings.metrics.port, health)
        log.info(
            "metrics on http://%s:%d/metrics, probes on /healthz and /readyz",
            settings.metrics.host,
            server.server_port,
        )
    beating = asyncio.ensure_future(_heartbeat(health))
    try:
        await run_until_stopped(settings, metrics=metrics, stop=stop, health=health)
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


async def _heartbeat(health: Health) -> None:
    """Beat while the loop turns: a stuck loop stops beating and /healthz fails."""
    while True:
        health.beat()
        await asyncio.sleep(HEARTBEAT_INTERVAL)
