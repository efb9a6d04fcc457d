"""``wpcdc run``: settings in, the metrics endpoint served, the streamer run until stopped.

This module owns the command's wiring: one metrics registry for the whole run
(served on ``metrics.host:metrics.port`` unless the port is 0), SIGTERM/SIGINT
as the stop, and :func:`wpcdc.runtime.run.run_until_stopped`, which streams
and rebuilds the pipeline after failures.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry

from wpcdc.config.settings import Settings
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.run import DaemonThreads, run_until_stopped, stop_on_signals

log = logging.getLogger("wpcdc.run")


def run(settings: Settings) -> None:
    """Stream until SIGTERM/SIGINT; raise on failures no retry can fix."""
    asyncio.run(_run(settings))


async def _run(settings: Settings) -> None:
    stop = stop_on_signals()
    # A stop must not wait for a blocked database call (see DaemonThreads).
    asyncio.get_running_loop().set_default_executor(DaemonThreads())
    metrics = Metrics(CollectorRegistry())
    if settings.metrics.port:
        metrics.serve(settings.metrics.host, settings.metrics.port)
        log.info("metrics on http://%s:%d/metrics", settings.metrics.host, settings.metrics.port)
    await run_until_stopped(settings, metrics=metrics, stop=stop)
