"""The committed schemas match the models, and folded events match the schemas."""

from __future__ import annotations

import orjson

from tests.support.binlog_builder import POSTS, Binlog, delete, post_row, update
from tests.support.fold import fold_all, insert_post_with_tags_and_meta, make_folder
from tests.support.schemas import validate
from wpcdc.commands import schemas
from wpcdc.core.events import EVENT_TYPES, serialize


def test_committed_schema_files_match_the_models() -> None:
    for name, content in schemas.expected_files().items():
        path = schemas.DEFAULT_DIR / name
        assert path.exists(), f"schemas/{name} is missing: run python -m wpcdc.commands.schemas"
        assert path.read_bytes() == content, (
            f"schemas/{name} is stale: run python -m wpcdc.commands.schemas"
        )


def test_every_event_type_has_a_schema() -> None:
    assert {f"{t}.v1.json" for t in EVENT_TYPES} <= {p.name for p in schemas.DEFAULT_DIR.iterdir()}


def test_folded_events_validate_against_their_files() -> None:
    log = Binlog()
    insert_post_with_tags_and_meta(log)
    row = post_row(10, status="draft")
    published = {**row, "post_status": "publish"}
    log.txn(update(POSTS, row, published), after_seconds=5)
    log.txn(delete(POSTS, published), after_seconds=5)
    events = fold_all(make_folder(), log.log)
    assert {e.type for e in events} >= {"post_created", "post_published", "post_deleted"}
    for event in events:
        validate(orjson.loads(serialize(event, "wpcdc://db/wp")))
