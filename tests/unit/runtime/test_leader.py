"""Standby failover, the runtime's pure-enough parts: the lock name from the
settings, the fence that drops checkpoint saves once the lead is lost, and the
readiness of a standby."""

from __future__ import annotations

from pathlib import Path

import pytest

from wpcdc.config.settings import HaSettings, Settings
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.positions import Position
from wpcdc.runtime.health import Health, Phase
from wpcdc.runtime.leader import Fence, FencedStore, ha_lock_name


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Saved:
    def __init__(self) -> None:
        self.saved: list[Checkpoint] = []

    def load(self) -> Checkpoint | None:
        return self.saved[-1] if self.saved else None

    def save(self, checkpoint: Checkpoint) -> None:
        self.saved.append(checkpoint)


def checkpoint(pos: int) -> Checkpoint:
    return Checkpoint(position=Position("binlog.000001", pos))


def test_saves_pass_while_the_lease_holds_and_are_dropped_after() -> None:
    clock, store = Clock(), Saved()
    fence = Fence(3.0, clock)
    fenced = FencedStore(store, fence)
    fenced.save(checkpoint(4))
    assert store.saved == [], "never confirmed: not the leader"
    fence.confirmed(clock.now)
    fenced.save(checkpoint(100))
    clock.now += 2.9
    fenced.save(checkpoint(200))
    clock.now += 0.2  # the lease ran out without a confirmation
    fenced.save(checkpoint(300))
    assert [c.position.pos for c in store.saved] == [100, 200]
    assert fenced.load() == checkpoint(200)


def test_a_lost_lock_drops_saves_at_once_and_keeps_its_first_reason() -> None:
    clock, store = Clock(), Saved()
    fence = Fence(3.0, clock)
    fence.confirmed(clock.now)
    fence.lose("the lock connection failed: (2013) Lost connection")
    fence.lose("no confirmation of the lock within 3s")
    FencedStore(store, fence).save(checkpoint(100))
    assert store.saved == []
    assert fence.reason == "the lock connection failed: (2013) Lost connection"
    assert not fence.valid() and fence.expires_in() == 0.0


def test_each_save_is_preceded_by_a_confirmation_from_the_server() -> None:
    clock, store = Clock(), Saved()
    answers = [True, True, False]
    lost: list[str] = []
    fence = Fence(
        3.0,
        clock,
        confirm=lambda: answers.pop(0),
        on_lost=lambda: lost.append("stop the term"),
    )
    fence.confirmed(clock.now)
    fenced = FencedStore(store, fence)
    fenced.save(checkpoint(100))
    clock.now += 2.5
    fenced.save(checkpoint(200))  # the confirmation renews the lease
    clock.now += 2.5
    assert fence.valid()
    # The server gives the lock to another connection: lost at once, never saved.
    fenced.save(checkpoint(300))
    assert [c.position.pos for c in store.saved] == [100, 200]
    assert lost == ["stop the term"]
    assert fence.reason == "the server gives the lock to another connection"
    fenced.save(checkpoint(400))
    assert answers == [] and len(store.saved) == 2, "no query once lost"


def test_a_failed_confirmation_loses_the_lead() -> None:
    def broken() -> bool:
        raise OSError("connection reset")

    clock, store = Clock(), Saved()
    lost: list[bool] = []
    fence = Fence(3.0, clock, confirm=broken, on_lost=lambda: lost.append(True))
    fence.confirmed(clock.now)
    FencedStore(store, fence).save(checkpoint(100))
    assert store.saved == [] and lost == [True]
    assert fence.reason.startswith("the lock connection failed")


def test_instances_sharing_a_kafka_checkpoint_derive_one_lock_name() -> None:
    settings = Settings.model_validate(
        {"checkpoint": {"store": "kafka"}, "kafka": {"topic": "site.events"}}
    )
    assert ha_lock_name(settings) == "wpcdc:wordpress:kafka:site.events.checkpoint/site.events"
    other_topic = Settings.model_validate(
        {"checkpoint": {"store": "kafka"}, "kafka": {"topic": "other.events"}}
    )
    assert ha_lock_name(other_topic) != ha_lock_name(settings)


def test_a_file_checkpoint_is_named_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = Settings.model_validate({"checkpoint": {"path": "state/checkpoint.json"}})
    absolute = Settings.model_validate(
        {"checkpoint": {"path": str(tmp_path / "state/checkpoint.json")}}
    )
    assert ha_lock_name(relative) == ha_lock_name(absolute)
    assert len(ha_lock_name(relative)) <= 64


def test_an_explicit_lock_name_wins() -> None:
    settings = Settings.model_validate({"ha": {"enabled": True, "lock_name": "site-a"}})
    assert ha_lock_name(settings) == "site-a"


def test_the_leader_must_confirm_at_least_twice_within_its_lease() -> None:
    assert HaSettings(check_seconds=1.0, lease_seconds=6).lease_seconds == 6
    with pytest.raises(ValueError, match="at most a quarter of lease_seconds"):
        HaSettings(check_seconds=2.0, lease_seconds=6)
    with pytest.raises(ValueError):
        HaSettings(lock_name="x" * 65)


def test_a_standby_is_alive_but_not_ready_and_names_the_leader() -> None:
    probe = Health(max_stall=10.0, max_lag=60.0, lag=lambda: 0.0)
    probe.enter(Phase.STANDBY, {"leader": "connection 42 from 10.0.0.5:51234"})
    assert probe.liveness().ok
    verdict = probe.readiness()
    assert verdict.status == 503
    assert verdict.body == {
        "ready": False,
        "reason": "standby",
        "leader": "connection 42 from 10.0.0.5:51234",
    }
    probe.enter(Phase.STREAMING)
    assert probe.readiness().body == {"ready": True, "lag_seconds": 0.0}
