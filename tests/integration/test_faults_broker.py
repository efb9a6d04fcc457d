"""Fault suite (issue 10), broker: a broker that restarts without its data must stop
`wpcdc run` loudly, never let the checkpoint move past events that are gone. The Tansu
broker keeps nothing across a restart, which makes it the test."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.support.stack import WordPressStack
from tests.support.streaming import read_topic
from tests.support.wordpress import BackgroundPhp
from wpcdc.core.errors import EXIT_PREFLIGHT
from wpcdc.local.broker import TansuBroker
from wpcdc.local.ports import free_port

pytestmark = pytest.mark.integration

WRITER = """
for ($i = 0; $i < $args['posts']; $i++) {
    wp_insert_post(['post_title' => "post $i", 'post_status' => 'publish']);
    usleep(50000);
}
return true;
"""


# 5 s: the producer reconnects by itself and the broker acknowledges new records at
# old offsets; 12 s: sends fail first (kafka.request_timeout is 5 s in the tests) and
# the rebuilt pipeline finds the topic gone.
@pytest.mark.parametrize("down_seconds", [5, 12])
def test_a_broker_restarted_empty_stops_the_streamer_loudly(
    wp_stack: WordPressStack, down_seconds: float
) -> None:
    streamer = wp_stack.streamer
    directory, port = wp_stack.workdir / "broker", free_port()
    broker = TansuBroker.start(directory, port=port)
    try:
        streamer.env["WPCDC_KAFKA__BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        streamer.start()
        writer = BackgroundPhp(wp_stack.wordpress, WRITER, {"posts": 200})
        writer.start()
        deadline = time.monotonic() + 60
        while len(read_topic(broker.bootstrap_servers, wp_stack.topic)) < 20:
            assert time.monotonic() < deadline, streamer.log_text()[-3000:]
            time.sleep(0.5)
        # A restart that loses everything, while WordPress keeps writing.
        broker.stop()
        time.sleep(down_seconds)
        broker = TansuBroker.start(directory, port=port)
        assert streamer.process is not None
        try:
            code = streamer.process.wait(90)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "wpcdc run went on after the broker lost acknowledged records:\n"
                + streamer.log_text()[-3000:]
            ) from None
        log = streamer.log_text()
        assert code == EXIT_PREFLIGHT, log[-3000:]
        (line,) = [entry for entry in log.splitlines() if entry.startswith("error: ")]
        assert "lost records the broker had acknowledged" in line, line
        assert "`wpcdc snapshot --force`" in line
        assert "Task was destroyed" not in log
        writer.finish()
    finally:
        broker.stop()
