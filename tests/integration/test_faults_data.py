"""Fault suite (issue 10), data: no stored value stops the stream, through `wpcdc run`,
`wpcdc snapshot --force` and `wpcdc verify`, against real MariaDB, the broker and
WordPress."""

from __future__ import annotations

import contextlib

import pytest

from tests.support.stack import WordPressStack
from tests.support.streaming import events_of
from wpcdc.core.events import META_EVENT, POST_EVENT_TYPES

pytestmark = pytest.mark.integration

# The value of the issue: PHP's serialize() of an integer wider than 64 bits.
POISON = "i:99999999999999999999;"
# A day February does not have, stored under sql_mode ALLOW_INVALID_DATES.
INVALID_DATE = "2024-02-30 10:00:00"


def test_poison_meta_and_invalid_date_are_sent_flagged_by_run_snapshot_and_verify(
    wp_stack: WordPressStack,
) -> None:
    streamer = wp_stack.streamer
    streamer.start()
    post_id = wp_stack.wordpress.php(
        "return wp_insert_post(['post_title' => 'poisoned', 'post_status' => 'publish'], true);"
    )
    wp_stack.execute(
        "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) "
        f"VALUES ({post_id}, 'counter', '{POISON}')"
    )
    connection = wp_stack.server.connect(wp_stack.database)
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        cursor.execute(f"UPDATE wp_posts SET post_date = '{INVALID_DATE}' WHERE ID = {post_id}")
    # The stream goes on after both.
    wp_stack.execute(f"UPDATE wp_posts SET post_title = 'still streaming' WHERE ID = {post_id}")
    wp_stack.wait_caught_up()
    assert streamer.process is not None and streamer.process.poll() is None, streamer.log_text()

    events = events_of(wp_stack.read_topic(), f"post/{post_id}")
    (change,) = [c for e in events if e["type"] == META_EVENT for c in e["data"]["changes"]]
    assert change["key"] == "counter"
    assert change["value"] == POISON and change["raw"] == POISON
    assert change["serialized"] is True and "wider than 64 bits" in change["error"]
    # However the fold grouped the three statements, the post's last state has both.
    last = [e for e in events if e["type"] in POST_EVENT_TYPES][-1]["data"]["post"]
    assert last["date"] == INVALID_DATE and last["title"] == "still streaming"
    assert streamer.stop() == 0

    # The documented way out must work too: a full snapshot over the checkpoint.
    snapshot = wp_stack.wpcdc("snapshot", "--force", timeout=120)
    assert snapshot.returncode == 0, snapshot.stderr[-3000:]
    (snapshotted,) = [
        e
        for e in events_of(wp_stack.read_topic(), f"post/{post_id}")
        if e["type"] == "post_snapshot"
    ]
    (entry,) = [m for m in snapshotted["data"]["meta"] if m["key"] == "counter"]
    assert entry["value"] == POISON and "wider than 64 bits" in entry["error"]
    assert snapshotted["data"]["post"]["date"] == INVALID_DATE

    # And the proof: the topic matches the database, poison and invalid date included.
    streamer.start()
    verify = wp_stack.wpcdc("verify", "--wait", "60", timeout=180)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    assert streamer.stop() == 0
