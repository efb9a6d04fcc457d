"""Structured logs (issue 12): `wpcdc run` with log.format = "json" against the real
stack writes nothing but JSON objects, one per line, its own and the libraries'."""

from __future__ import annotations

import json

import pytest

from tests.support.stack import WordPressStack

pytestmark = pytest.mark.integration


def test_every_line_of_a_run_is_a_json_object(wp_stack: WordPressStack) -> None:
    streamer = wp_stack.streamer
    streamer.env["WPCDC_LOG__FORMAT"] = "json"
    streamer.start()  # with --log-level DEBUG: the libraries speak too
    post_id = wp_stack.wordpress.php(
        "return wp_insert_post(['post_title' => 'logged', 'post_status' => 'publish'], true);"
    )
    wp_stack.wait_caught_up(timeout=60)
    assert streamer.stop() == 0

    text = streamer.log_text()
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} is not JSON: {line!r}")
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= record.keys(), line
        records.append(record)
    loggers = {r["logger"] for r in records}
    assert any(name.startswith("wpcdc.") for name in loggers), loggers
    assert any(name.startswith("aiokafka") for name in loggers), loggers
    streaming = next(r for r in records if str(r["message"]).startswith("streaming "))
    assert streaming["topic"] == wp_stack.topic and ":" in str(streaming["position"])
    saved = [r for r in records if str(r["message"]).startswith("checkpoint saved at")]
    assert saved and "position" in saved[-1]
    assert post_id and wp_stack.read_topic()
