"""Fault suite (issue 10), stopping: SIGTERM ends `wpcdc run` within 10 s with its
checkpoint intact in every state (starting with the broker unreachable, streaming a
busy site, broker down, database not answering), as an orchestrator with a grace
period needs. Real MariaDB, the broker and WordPress."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.infra import KafkaEndpoint, MysqlEndpoint, ServerFactory
from tests.support.proxy import broker_behind_proxy
from tests.support.stack import Stack, WordPressStack
from tests.support.streaming import Streamer, binlog_end, read_topic, wpcdc_env
from tests.support.wordpress import BackgroundPhp, install_wordpress
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.errors import EXIT_OK
from wpcdc.local.ports import free_port

pytestmark = pytest.mark.integration

# An orchestrator's grace period is commonly 30 s; the README promises 8 s of waiting
# for acknowledgements. Every state must end well inside the former.
STOP_WITHIN = 10.0

WRITER = """
for ($i = 0; $i < $args['posts']; $i++) {
    $id = wp_insert_post(['post_title' => "post $i", 'post_status' => 'publish',
        'meta_input' => ['n' => $i]], true);
    wp_update_post(['ID' => $id, 'post_title' => "post $i, edited"]);
    usleep($args['pause_ms'] * 1000);
}
return true;
"""


def writer(stack: WordPressStack, posts: int, pause_ms: int = 20) -> BackgroundPhp:
    background = BackgroundPhp(stack.wordpress, WRITER, {"posts": posts, "pause_ms": pause_ms})
    background.start()
    return background


def wait_for_records(bootstrap: str, topic: str, count: int, streamer: Streamer) -> None:
    deadline = time.monotonic() + 60
    while len(read_topic(bootstrap, topic)) < count:
        assert time.monotonic() < deadline, streamer.log_text()[-3000:]
        time.sleep(0.5)


def stop_in_time(streamer: Streamer) -> None:
    """SIGTERM; it must exit 0 within STOP_WITHIN seconds, without a destroyed task."""
    began = time.monotonic()
    assert streamer.stop(timeout=STOP_WITHIN) == EXIT_OK, streamer.log_text()[-3000:]
    took = time.monotonic() - began
    print(f"wpcdc run stopped {took:.1f}s after SIGTERM")  # shown with -s
    assert took < STOP_WITHIN
    assert "Task was destroyed" not in streamer.log_text()


def test_sigterm_while_starting_with_the_broker_unreachable(stack: Stack) -> None:
    streamer = stack.streamer
    streamer.env["WPCDC_KAFKA__BOOTSTRAP_SERVERS"] = f"127.0.0.1:{free_port()}"
    # No checkpoint yet: it saves the binlog's end, then tries the broker for a minute.
    streamer.start(ready="starting at the end of the binlog")
    saved = streamer.checkpoint_path.read_bytes()
    time.sleep(3)
    stop_in_time(streamer)
    assert streamer.checkpoint_path.read_bytes() == saved
    # With a checkpoint: resuming, then trying the broker.
    streamer.start(ready="resuming at")
    time.sleep(3)
    stop_in_time(streamer)
    assert streamer.checkpoint_path.read_bytes() == saved
    assert "stopped while starting; the checkpoint is unchanged" in streamer.log_text()


def test_sigterm_while_streaming_a_busy_site(wp_stack: WordPressStack) -> None:
    streamer = wp_stack.streamer
    streamer.start()
    background = writer(wp_stack, posts=150)
    wait_for_records(wp_stack.broker.bootstrap_servers, wp_stack.topic, 10, streamer)
    stop_in_time(streamer)
    stopped_at = streamer.checkpoint()
    assert stopped_at is not None and "checkpoint saved at" in streamer.log_text()
    # The checkpoint is good to resume from: the rest arrives.
    streamer.start(ready=f"resuming at {stopped_at.position}")
    background.finish()
    wp_stack.wait_caught_up(timeout=120)
    stop_in_time(streamer)


def test_sigterm_while_the_broker_is_down(wp_stack: WordPressStack) -> None:
    streamer = wp_stack.streamer
    with broker_behind_proxy(wp_stack.workdir / "broker") as (proxy, bootstrap):
        streamer.env["WPCDC_KAFKA__BOOTSTRAP_SERVERS"] = bootstrap
        # The default request timeout: a send waits 30 s before it fails.
        streamer.env["WPCDC_KAFKA__REQUEST_TIMEOUT"] = "30"
        streamer.start()
        background = writer(wp_stack, posts=150)
        wait_for_records(bootstrap, wp_stack.topic, 10, streamer)
        proxy.cut()
        cut_at = binlog_end(wp_stack.server)
        time.sleep(3)  # records wait for a broker that is gone
        stop_in_time(streamer)
        saved = streamer.checkpoint()
        assert saved is not None and saved.position.key() <= cut_at.key()
        proxy.restore()
        background.finish()
        streamer.start(ready=f"resuming at {saved.position}")
        wp_stack.wait_caught_up(timeout=120)
        stop_in_time(streamer)


@contextlib.contextmanager
def not_answering(server: MysqlEndpoint) -> Iterator[None]:
    """The server stops answering (SIGSTOP): connections hang instead of failing."""
    process = getattr(server._handle, "process", None)
    if process is None:
        pytest.fail(f"this test needs a private server it can pause, not {server.origin}")
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def test_sigterm_while_the_database_does_not_answer(
    mysql_server_factory: ServerFactory,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> None:
    server = mysql_server_factory()
    server.execute("CREATE DATABASE wp_frozen CHARACTER SET utf8mb4")
    site = install_wordpress(server, "wp_frozen")
    env = wpcdc_env(server, "wp_frozen", kafka_broker.bootstrap_servers, kafka_topic, tmp_path)
    streamer = Streamer(env=env, workdir=tmp_path)
    try:
        streamer.start()
        site.php("for ($i = 0; $i < 20; $i++) { wp_insert_post(['post_title' => \"p$i\"]); }")
        streamer.wait_caught_up(server)
        with not_answering(server):
            time.sleep(5)  # its reads time out; it reconnects into a server that hangs
            stop_in_time(streamer)
            saved = streamer.checkpoint_path.read_bytes()
            Checkpoint.from_json(saved)
            # Starting while the server does not answer: the login itself hangs.
            streamer.start(ready="")
            time.sleep(3)
            stop_in_time(streamer)
            assert streamer.checkpoint_path.read_bytes() == saved
        streamer.start()
        site.php("wp_insert_post(['post_title' => 'after the freeze']);")
        streamer.wait_caught_up(server)
        stop_in_time(streamer)
    finally:
        streamer.close()
