"""Standby failover, the pure part: the lock's name every instance derives, and
how long a confirmation of the lock is trusted."""

from __future__ import annotations

from wpcdc.core.leadership import (
    MAX_LOCK_NAME,
    Lease,
    checkpoint_identity,
    fence_after,
    lock_name,
)


def test_a_short_identity_is_the_name_itself() -> None:
    identity = checkpoint_identity(database="wordpress", store="kafka", where="t.checkpoint/t")
    assert lock_name(identity) == "wpcdc:wordpress:kafka:t.checkpoint/t"


def test_a_long_identity_is_shortened_to_64_with_a_digest_of_the_whole() -> None:
    base = "wordpress:file:/var/lib/wpcdc/" + "x" * 80
    one, two = lock_name(base + "/a.json"), lock_name(base + "/b.json")
    assert len(one) == MAX_LOCK_NAME and len(two) == MAX_LOCK_NAME
    # Same prefix, different identities: different locks.
    assert one != two
    assert one.startswith("wpcdc:wordpress:file:/var/lib/wpcdc/")
    # Every instance derives the same name from the same identity.
    assert lock_name(base + "/a.json") == one


def test_a_name_of_exactly_64_is_kept() -> None:
    identity = "d" * (MAX_LOCK_NAME - len("wpcdc:"))
    assert lock_name(identity) == "wpcdc:" + identity


def test_the_lease_holds_for_its_bound_from_the_confirming_query() -> None:
    lease = Lease(bound=3.0)
    assert not lease.valid(0.0), "no confirmation yet: not the leader"
    lease.confirmed(10.0)
    assert lease.valid(12.9)
    assert lease.expires_in(12.0) == 1.0
    assert not lease.valid(13.0)
    assert lease.expires_in(14.0) == 0.0
    # A late answer to an older query does not move the lease back.
    lease.confirmed(12.0)
    lease.confirmed(11.0)
    assert lease.valid(14.9) and not lease.valid(15.0)


def test_a_lost_lease_stays_lost() -> None:
    lease = Lease(bound=3.0)
    lease.confirmed(10.0)
    lease.lose()
    assert lease.lost and not lease.valid(10.1)
    lease.confirmed(10.5)  # a confirmation racing the loss does not revive it
    assert not lease.valid(10.6)
    assert lease.expires_in(10.6) == 0.0


def test_the_leader_trusts_half_the_servers_silence_timeout() -> None:
    assert fence_after(6) == 3.0
