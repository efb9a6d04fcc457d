"""Standby failover (issue 12): two `wpcdc run` with ha.enabled share one
checkpoint in Kafka; one streams, the other answers /readyz with "standby". When
the leader is killed -9, or its lock connection is killed on the server, the
standby streams within seconds, and every WordPress change made before, during
and after is on the topic (`wpcdc verify` is clean). Real MariaDB (and MySQL),
WordPress and the broker."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest

from tests.integration.test_kafka_checkpoint import kafka_checkpoint
from tests.integration.test_recovery import writer
from tests.support.materialize import compare_with_database, deduplicate, materialize
from tests.support.proxy import CuttableProxy
from tests.support.stack import WordPressStack
from tests.support.streaming import Streamer, binlog_end, eventually
from wpcdc.local.ports import free_port

pytestmark = pytest.mark.integration

TAKEOVER_BOUND = 30.0


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def readiness(port: int) -> tuple[int, dict[str, object]]:
    status, body = probe(port, "/readyz")
    return status, json.loads(body)


def leader_gauge(port: int) -> float:
    _, text = probe(port, "/metrics")
    match = re.search(r"^wpcdc_leader (\S+)$", text, re.MULTILINE)
    assert match, text[-2000:]
    return float(match.group(1))


def pair(stack: WordPressStack, lock: str) -> tuple[Streamer, int, Streamer, int]:
    """The test's streamer and a second one with the same settings (same
    server_id, same Kafka checkpoint) but its own metrics port and directory. The
    install posts are removed first: `wpcdc verify` then needs no snapshot."""
    for table in ("wp_posts", "wp_postmeta", "wp_term_relationships"):
        stack.execute(f"DELETE FROM {table}")
    first, port_a, port_b = stack.streamer, free_port(), free_port()
    first.env.update(
        {
            "WPCDC_CHECKPOINT__STORE": "kafka",
            "WPCDC_HA__ENABLED": "true",
            "WPCDC_HA__LOCK_NAME": lock,
            "WPCDC_HA__POLL_SECONDS": "1",
            "WPCDC_METRICS__PORT": str(port_a),
        }
    )
    workdir = stack.workdir / "second"
    workdir.mkdir()
    second = Streamer(env={**first.env, "WPCDC_METRICS__PORT": str(port_b)}, workdir=workdir)
    return first, port_a, second, port_b


def create_posts(stack: WordPressStack, title: str, count: int) -> list[int]:
    return list(
        stack.wordpress.php(
            "$ids = []; for ($i = 0; $i < $args['n']; $i++) {"
            " $ids[] = wp_insert_post(['post_title' => $args['t'] . \" $i\","
            " 'post_status' => 'publish', 'meta_input' => ['phase' => $args['t']]], true); }"
            " return $ids;",
            {"n": count, "t": title},
        )
    )


def wait_for_the_topic(stack: WordPressStack, timeout: float, log: str) -> None:
    target = binlog_end(stack.server)
    deadline = time.monotonic() + timeout
    while True:
        checkpoint = kafka_checkpoint(stack)
        if checkpoint is not None and target.key() <= checkpoint.position.key():
            return
        assert time.monotonic() < deadline, f"not caught up with {target}:\n{log[-3000:]}"
        time.sleep(0.3)


def assert_everything_on_the_topic(stack: WordPressStack, ids: list[int]) -> None:
    problems = compare_with_database(
        materialize(deduplicate(stack.read_topic())), stack.server, stack.database, ids
    )
    assert problems == [], "\n".join(problems[:20])
    # Straight to the server (the first streamer's settings may go through a proxy).
    verify = stack.wpcdc(
        "verify",
        "--wait",
        "60",
        "--recheck-delay",
        "1",
        env={"NO_COLOR": "1", "WPCDC_MYSQL__PORT": str(stack.server.port)},
        timeout=240,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_the_standby_takes_over_after_kill_9(wp_stack: WordPressStack) -> None:
    lock = f"wpcdc-test:{wp_stack.topic}"
    active, port_a, standby, port_b = pair(wp_stack, lock)
    try:
        active.start()
        standby.start(ready="standing by: the lead")
        status, body = readiness(port_b)
        assert status == 503 and body["reason"] == "standby", body
        assert str(body["leader"]).startswith("connection "), body
        assert probe(port_b, "/healthz")[0] == 200
        eventually(lambda: readiness(port_a)[0] == 200, 30, "the leader to be ready")
        assert leader_gauge(port_a) == 1.0 and leader_gauge(port_b) == 0.0

        ids = create_posts(wp_stack, "before", 10)
        background = writer(wp_stack.wordpress, posts=40, rounds=4, pause_ms=5)
        background.start()
        start = kafka_checkpoint(wp_stack)
        assert start is not None
        eventually(
            lambda: kafka_checkpoint(wp_stack).position.key() > start.position.key(),  # type: ignore[union-attr]
            60,
            "the leader's checkpoint to move",
        )
        time.sleep(1)
        active.kill()
        killed = time.monotonic()
        standby.wait_for_log("reading the binlog from", TAKEOVER_BOUND)
        took = time.monotonic() - killed
        print(f"the standby streams {took:.1f}s after kill -9 of the leader")
        assert took < TAKEOVER_BOUND
        eventually(lambda: readiness(port_b)[0] == 200, 30, "the new leader to be ready")
        assert leader_gauge(port_b) == 1.0

        ids += background.finish()
        ids += create_posts(wp_stack, "after", 10)
        wait_for_the_topic(wp_stack, 120, standby.log_text())
        assert standby.stop() == 0
        assert_everything_on_the_topic(wp_stack, ids)
    finally:
        standby.close()


@pytest.mark.flavors("mariadb", "mysql")
def test_a_leader_whose_lock_connection_is_killed_stands_by(wp_stack: WordPressStack) -> None:
    lock = f"wpcdc-test:{wp_stack.topic}"
    first, port_a, second, port_b = pair(wp_stack, lock)
    try:
        first.start()
        second.start(ready="standing by: the lead")
        ids = create_posts(wp_stack, "before", 10)
        background = writer(wp_stack.wordpress, posts=40, rounds=4, pause_ms=5)
        background.start()
        time.sleep(2)

        ((holder,),) = wp_stack.server.execute(f"SELECT IS_USED_LOCK('{lock}')")
        assert holder is not None
        wp_stack.server.execute(f"KILL {int(holder)}")
        killed = time.monotonic()
        # The old leader notices within a check (1 s), stops producing, stands by.
        first.wait_for_log("lost the lead", 15)
        first.wait_for_log("standing by: the lead", 30)
        fenced = time.monotonic() - killed
        second.wait_for_log("reading the binlog from", TAKEOVER_BOUND)
        took = time.monotonic() - killed
        print(f"old leader standing by after {fenced:.1f}s, new leader streams after {took:.1f}s")
        assert first.process is not None and first.process.poll() is None, "still running"
        status, body = readiness(port_a)
        assert status == 503 and body["reason"] == "standby", body
        assert leader_gauge(port_a) == 0.0
        eventually(lambda: leader_gauge(port_b) == 1.0, 10, "the second to lead")

        ids += background.finish()
        ids += create_posts(wp_stack, "after", 10)
        wait_for_the_topic(wp_stack, 120, second.log_text())
        # After standing by, the old leader saved no checkpoint and streams nothing.
        assert "reading the binlog from" not in _after(first.log_text(), "standing by: the lead")
        assert second.stop() == 0
        assert first.stop() == 0
        assert_everything_on_the_topic(wp_stack, ids)
    finally:
        second.close()


def test_a_leader_cut_off_from_the_database_stops_and_the_standby_takes_over(
    wp_stack: WordPressStack,
) -> None:
    lock = f"wpcdc-test:{wp_stack.topic}"
    first, port_a, second, _ = pair(wp_stack, lock)
    # Every connection of the first instance goes through a proxy that can
    # partition it from the server (no byte through, nothing closed).
    proxy = CuttableProxy(free_port(), wp_stack.server.port)
    proxy.start()
    first.env.update({"WPCDC_MYSQL__PORT": str(proxy.port), "WPCDC_MYSQL__CONNECT_TIMEOUT": "3"})
    try:
        first.start()
        second.start(ready="standing by: the lead")
        ids = create_posts(wp_stack, "before", 10)
        background = writer(wp_stack.wordpress, posts=40, rounds=4, pause_ms=5)
        background.start()
        time.sleep(2)
        proxy.freeze()
        cut = time.monotonic()
        # Fenced after half the lease (3 s) without a confirmation.
        first.wait_for_log("lost the lead", 15)
        fenced = time.monotonic() - cut
        # The server frees the lock once the connection was silent for the lease (6 s).
        second.wait_for_log("reading the binlog from", TAKEOVER_BOUND)
        took = time.monotonic() - cut
        print(f"cut-off leader fenced after {fenced:.1f}s, the standby streams after {took:.1f}s")
        assert fenced < took, "the old leader stopped before the new one started"
        assert first.process is not None and first.process.poll() is None, "still running"
        eventually(lambda: readiness(port_a)[1].get("reason") == "standby", 30, "standby")

        ids += background.finish()
        ids += create_posts(wp_stack, "after", 10)
        wait_for_the_topic(wp_stack, 120, second.log_text())
        assert second.stop() == 0
        assert first.stop() == 0
        assert_everything_on_the_topic(wp_stack, ids)
    finally:
        second.close()
        proxy.cut()


def test_a_standby_stops_at_once_and_a_stopped_leader_hands_over(
    wp_stack: WordPressStack,
) -> None:
    lock = f"wpcdc-test:{wp_stack.topic}"
    first, _, second, _ = pair(wp_stack, lock)
    try:
        first.start()
        second.start(ready="standing by: the lead")
        # SIGTERM while waiting in GET_LOCK: no wait for the server.
        started = time.monotonic()
        assert second.stop() == 0
        assert time.monotonic() - started < 5
        second.start(ready="standing by: the lead")
        ids = create_posts(wp_stack, "before", 5)
        wait_for_the_topic(wp_stack, 60, first.log_text())
        # SIGTERM of the leader: it flushes, saves, releases the lock; the standby
        # takes over at once, from that checkpoint.
        assert first.stop() == 0
        stopped = time.monotonic()
        second.wait_for_log("reading the binlog from", 10)
        print(f"the standby streams {time.monotonic() - stopped:.1f}s after the leader exited")
        ids += create_posts(wp_stack, "after", 5)
        wait_for_the_topic(wp_stack, 60, second.log_text())
        assert second.stop() == 0
        assert_everything_on_the_topic(wp_stack, ids)
    finally:
        second.close()


def _after(text: str, marker: str) -> str:
    return text[text.rindex(marker) :] if marker in text else ""
