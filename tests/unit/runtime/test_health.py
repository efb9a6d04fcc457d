"""Probes (issue 12): /healthz follows the loop's heartbeat, /readyz the run's phase
and the age of the oldest unacknowledged change; both are served beside /metrics."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from wpcdc.runtime.health import Health, Phase
from wpcdc.runtime.metrics import HEALTHZ_PATH, READYZ_PATH, Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def health(clock: Clock, lag: list[float]) -> Health:
    return Health(max_stall=10.0, max_lag=60.0, lag=lambda: lag[0], clock=clock)


def test_alive_while_the_loop_beats_and_not_once_it_stalls() -> None:
    clock, lag = Clock(), [0.0]
    probe = health(clock, lag)
    assert probe.liveness().ok
    clock.now += 9
    probe.beat()
    clock.now += 10
    assert probe.liveness().ok
    clock.now += 1
    verdict = probe.liveness()
    assert not verdict.ok and verdict.status == 503
    assert "has not turned for 11s" in verdict.body["reason"]
    probe.beat()
    assert probe.liveness().ok


@pytest.mark.parametrize(
    "phase", [Phase.STARTING, Phase.BROKER_UNREACHABLE, Phase.DATABASE_UNREACHABLE]
)
def test_not_ready_unless_streaming_and_the_reason_is_the_phase(phase: Phase) -> None:
    probe = health(Clock(), [0.0])
    probe.enter(phase)
    assert probe.readiness().body == {"ready": False, "reason": phase.value}
    assert probe.readiness().status == 503


def test_streaming_is_ready_until_the_oldest_unacknowledged_change_is_too_old() -> None:
    lag = [0.0]
    probe = health(Clock(), lag)
    assert probe.phase is Phase.STARTING
    probe.enter(Phase.STREAMING)
    assert probe.readiness().body == {"ready": True, "lag_seconds": 0.0}
    lag[0] = 60.0
    assert probe.readiness().ok
    lag[0] = 61.04
    assert probe.readiness().body == {"ready": False, "reason": "catching up", "lag_seconds": 61.0}
    lag[0] = 0.5
    assert probe.readiness().ok


@pytest.fixture
def served() -> Iterator[tuple[Metrics, Health, str]]:
    metrics = Metrics(CollectorRegistry())
    probe = Health(max_stall=30, max_lag=5, lag=metrics.unacknowledged_age_seconds)
    server = metrics.serve("127.0.0.1", 0, probe)
    try:
        yield metrics, probe, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


def test_the_metrics_port_serves_the_probes_and_the_metrics(
    served: tuple[Metrics, Health, str],
) -> None:
    metrics, probe, base = served
    status, body, kind = get(base + READYZ_PATH)
    assert (status, json.loads(body), kind) == (
        503,
        {"ready": False, "reason": "starting"},
        "application/json",
    )
    probe.enter(Phase.STREAMING)
    assert get(base + READYZ_PATH)[0] == 200
    # The lag comes from the gauge the pipeline keeps.
    metrics.unacknowledged_age.set(7.5)
    status, body, _ = get(base + READYZ_PATH)
    assert (status, json.loads(body)["reason"]) == (503, "catching up")
    status, body, _ = get(base + HEALTHZ_PATH)
    assert (status, json.loads(body)) == (200, {"alive": True})
    status, body, _ = get(base + "/metrics")
    assert status == 200 and b"wpcdc_unacknowledged_change_age_seconds 7.5" in body
