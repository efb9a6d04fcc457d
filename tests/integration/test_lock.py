"""The lead of ha.enabled on a real server (mysql/lock.py): one connection holds
the lock at a time; a killed holder frees it at once; a holder cut off by a
network partition (nothing closed, no byte through) is freed by the server after
the session's wait_timeout (ha.lease_seconds), not hours later."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.infra import MysqlEndpoint
from tests.support.proxy import CuttableProxy
from wpcdc.config.settings import MysqlSettings
from wpcdc.local.ports import free_port
from wpcdc.mysql.errors import MysqlError
from wpcdc.mysql.lock import ServerLock

pytestmark = [pytest.mark.integration, pytest.mark.flavors("mariadb", "mysql")]

LEASE = 4


def lock_on(server: MysqlEndpoint, name: str, port: int | None = None) -> ServerLock:
    settings = MysqlSettings(
        host=server.host,
        port=port or server.port,
        user=server.user,
        password=server.password,  # type: ignore[arg-type]
        connect_timeout=5,
    )
    lock = ServerLock(settings, name, lease_seconds=LEASE, timeout=LEASE / 2)
    lock.open()
    return lock


def test_one_holder_at_a_time_and_a_killed_holder_frees_the_lock(
    mysql_server: MysqlEndpoint,
) -> None:
    name = f"wpcdc-test:{uuid.uuid4().hex}"
    first, second = lock_on(mysql_server, name), lock_on(mysql_server, name)
    try:
        assert first.acquire(0) and first.confirm()
        assert not second.acquire(0.2) and not second.confirm()
        holder = second.holder()
        assert holder is not None and holder.connection_id == first.connection_id
        mysql_server.execute(f"KILL {first.connection_id}")
        started = time.monotonic()
        assert second.acquire(5), "the lock of a killed connection is free at once"
        assert time.monotonic() - started < 1.0
        with pytest.raises(MysqlError):
            first.confirm()
        assert not first.is_open, "a failed confirmation closes the connection"
        second.release()
        assert second.holder() is None
    finally:
        first.close()
        second.close()


def test_a_partitioned_holder_is_freed_after_the_lease(mysql_server: MysqlEndpoint) -> None:
    name = f"wpcdc-test:{uuid.uuid4().hex}"
    proxy = CuttableProxy(free_port(), mysql_server.port)
    proxy.start()
    leader = lock_on(mysql_server, name, port=proxy.port)
    standby = lock_on(mysql_server, name)
    try:
        assert leader.acquire(0)
        leader.confirm()  # the last word the server hears from the leader
        proxy.freeze()
        silent_since = time.monotonic()
        # The leader cannot confirm any more: its query times out (LEASE / 2).
        with pytest.raises(MysqlError):
            leader.confirm()
        assert time.monotonic() - silent_since < LEASE
        # The server frees it once the connection has been silent for wait_timeout.
        assert standby.acquire(LEASE * 4), "the partitioned holder's lock was never freed"
        freed = time.monotonic() - silent_since
        print(f"lock freed {freed:.1f}s after the partition (wait_timeout {LEASE}s)")
        assert LEASE - 1 <= freed <= LEASE + 3
    finally:
        leader.close()
        standby.close()
        proxy.cut()
