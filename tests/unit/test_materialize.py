"""The test support's deduplication: an id names one content, links aside."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.support.materialize import deduplicate
from tests.support.streaming import Record


def record(event: dict[str, Any], offset: int) -> Record:
    return Record(b"1:7", orjson.dumps(event), 0, offset, event)


def event(**data: Any) -> dict[str, Any]:
    return {"id": "0-1-9/0/post_updated", "sequence": "1", "type": "post_updated", "data": data}


def test_a_replay_may_carry_newer_links_under_the_same_id() -> None:
    first = event(title="a", links={"terms": {"3": "http://x/tag/a/"}})
    again = event(title="a", links={"terms": {"4": "http://x/tag/b/"}})
    assert deduplicate([record(first, 0), record(again, 1)]) == [first]


def test_any_other_difference_under_one_id_fails_naming_it() -> None:
    first = event(title="a", cache_tags=["post:1:7"])
    again = event(title="b", cache_tags=["post:1:7"])
    with pytest.raises(AssertionError, match=r"\.data\.title: 'a' != 'b'"):
        deduplicate([record(first, 0), record(again, 1)])
