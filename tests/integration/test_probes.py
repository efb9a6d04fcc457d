"""Probes (issue 12): /readyz turns 503 with a reason when the broker stalls under
a writing site and 200 again once it is back; /healthz stays 200 throughout.
Real MariaDB, WordPress, and the broker behind a cuttable proxy."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from tests.support.proxy import broker_behind_proxy
from tests.support.stack import WordPressStack
from tests.support.wordpress import BackgroundPhp
from wpcdc.local.ports import free_port
from wpcdc.runtime.metrics import HEALTHZ_PATH, READYZ_PATH

pytestmark = pytest.mark.integration

WRITER = """
for ($i = 0; $i < $args['posts']; $i++) {
    wp_insert_post(['post_title' => "post $i", 'post_status' => 'publish'], true);
    usleep(250 * 1000);
}
return true;
"""


def probe(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(
    url: str,
    wanted: Callable[[int, dict[str, object]], bool],
    timeout: float,
    log: Callable[[], str],
) -> list[tuple[int, dict[str, object]]]:
    """Probe ``url`` until ``wanted``; returns every answer seen on the way."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        answer = probe(url)
        seen.append(answer)
        if wanted(*answer):
            return seen
        assert time.monotonic() < deadline, f"{url}: last answers {seen[-5:]}\n{log()[-3000:]}"
        time.sleep(0.25)


def test_readiness_follows_the_broker_and_liveness_stays(wp_stack: WordPressStack) -> None:
    streamer = wp_stack.streamer
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with broker_behind_proxy(wp_stack.workdir / "broker") as (proxy, bootstrap):
        streamer.env.update(
            {
                "WPCDC_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                "WPCDC_METRICS__PORT": str(port),
                "WPCDC_METRICS__READY_MAX_LAG_SECONDS": "3",
            }
        )
        streamer.start()
        wait_for(base + READYZ_PATH, lambda status, _: status == 200, 30, streamer.log_text)
        assert probe(base + HEALTHZ_PATH) == (200, {"alive": True})

        background = BackgroundPhp(wp_stack.wordpress, WRITER, {"posts": 160})
        background.start()
        time.sleep(2)
        proxy.cut()
        # Sends wait for the broker (the lag grows: catching up), then fail after
        # kafka.request_timeout (5 s here): the pipeline is rebuilt, and fails to start.
        seen = wait_for(
            base + READYZ_PATH,
            lambda _, body: body.get("reason") == "broker unreachable",
            45,
            streamer.log_text,
        )
        # Ready while the waiting changes are young, then not ready until the end.
        statuses = [status for status, _ in seen]
        first_failure = statuses.index(503)
        assert set(statuses[first_failure:]) == {503}, seen
        assert {body.get("reason") for _, body in seen[first_failure:]} <= {
            "catching up",
            "broker unreachable",
        }, seen
        print("readiness after the cut:", [body.get("reason", "ready") for _, body in seen])
        # The process itself is fine.
        assert probe(base + HEALTHZ_PATH) == (200, {"alive": True})
        assert streamer.process is not None and streamer.process.poll() is None

        proxy.restore()
        _, body = wait_for(
            base + READYZ_PATH, lambda status, _: status == 200, 90, streamer.log_text
        )[-1]
        assert body["ready"] is True
        background.finish()
        wp_stack.wait_caught_up(timeout=120)
        assert probe(base + READYZ_PATH)[0] == 200
        assert streamer.stop() == 0
