"""Events as CloudEvents envelopes, and the oversize policy."""

from __future__ import annotations

import orjson

from tests.support.binlog_builder import POSTMETA, POSTS, Binlog, insert, meta, post_row, update
from tests.support.fold import fold_all
from wpcdc.core import envelope
from wpcdc.core.events import Event, fit, serialize, to_envelope
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror

SOURCE = "wpcdc://db/wordpress"


def one_event(*changes: tuple, blog_id: int = 1) -> Event:  # type: ignore[type-arg]
    log = Binlog()
    log.txn(*changes, blog_id=blog_id)
    (event,) = fold_all(Folder(config=FoldConfig(), mirror=Mirror()), log.log)
    return event


def test_envelope_is_cloudevents_with_binlog_coordinates() -> None:
    event = one_event(insert(POSTS, post_row(123, title="Hello 😀")))
    record = orjson.loads(serialize(event, SOURCE))
    assert record["specversion"] == "1.0"
    assert record["id"] == "0-1-1/0/post_created"
    assert record["type"] == "post_created"
    assert record["source"] == SOURCE
    assert record["subject"] == "post/123"
    assert record["time"] == "2027-01-15T08:00:00Z"
    assert record["dataschema"] == "urn:wpcdc:schema:post_created:1"
    assert record["schemaversion"] == 1
    assert (record["binlogfile"], record["binlogpos"], record["binloggtid"]) == (
        "binlog.000001",
        4,
        "0-1-1",
    )
    assert record["sequence"] == "0000000001-0000000004-0000000000-000"
    assert record["data"]["post"]["title"] == "Hello 😀"
    assert record["data"]["blog_id"] == 1 and record["data"]["post_id"] == 123
    assert envelope.decode(serialize(event, SOURCE))["id"] == record["id"]
    assert event.key == b"1:123"


def test_subject_names_the_blog_on_multisite() -> None:
    event = one_event(insert(POSTS, post_row(5)), blog_id=3)
    assert to_envelope(event, SOURCE)["subject"] == "blog/3/post/5"
    assert event.key == b"3:5"


def test_small_event_is_not_shrunk() -> None:
    event = one_event(insert(POSTS, post_row(1)))
    value, omitted = fit(event, SOURCE, 100_000)
    assert omitted == [] and value == serialize(event, SOURCE)


def test_oversize_post_body_is_omitted_and_flagged() -> None:
    body = "x" * 5_000_000
    row = post_row(7, content="short")
    event = one_event(update(POSTS, row, {**row, "post_content": body}))
    value, omitted = fit(event, SOURCE, 1_000_000)
    assert len(value) <= 1_000_000
    assert omitted == ["post.content", "before.content"]
    data = orjson.loads(value)["data"]
    assert data["post"]["content"] is None
    assert data["changed"] == ["content"]
    assert data["omitted"] == omitted


def test_oversize_meta_values_are_omitted() -> None:
    event = one_event(*(insert(POSTMETA, meta(i, 1, f"k{i}", "v" * 10_000)) for i in range(200)))
    value, omitted = fit(event, SOURCE, 1_000_000)
    assert len(value) <= 1_000_000
    assert omitted == ["changes.values"]
    changes = orjson.loads(value)["data"]["changes"]
    assert len(changes) == 200 and changes[0]["key"] == "k0" and changes[0]["value"] is None


def test_last_resort_keeps_identifiers() -> None:
    event = one_event(*(insert(POSTMETA, meta(i, 1, "k" * 5000 + str(i), "v")) for i in range(300)))
    value, omitted = fit(event, SOURCE, 100_000)
    assert len(value) <= 100_000
    assert omitted == ["changes.values", "changes"]
    assert orjson.loads(value)["data"]["post_id"] == 1
