"""Fuzz: generated PHP-serialized meta values, valid, extreme and malformed, never stop
the stream. Each one goes through decode, into a stream event and a snapshot event,
through serialization and the oversize fit, and through the comparison of
`wpcdc verify`; none of them may raise, and what is sent must be what was decoded.

The generator is seeded (the seed is in each test id), so a failure reproduces.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.support.binlog_builder import POSTMETA, POSTS, Binlog, insert, meta, post_row
from tests.support.fold import fold_all
from wpcdc.core.decode import decode_meta
from wpcdc.core.events import MetaData, SnapshotData, fit, serialize
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Position
from wpcdc.core.snapshot_events import PostBundle, snapshot_event
from wpcdc.core.verify_state import database_meta

SOURCE = "wpcdc://db/wordpress"
SEEDS = range(8)
VALUES_PER_SEED = 250

EXTREME_INTS = [
    0,
    -1,
    2**31,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    2**64,
    -(2**63) - 1,
    10**20 - 1,  # the value of issue 10: i:99999999999999999999;
    -(10**30),
    10**4299,
]
EXTREME_FLOATS = [
    "INF",
    "-INF",
    "NAN",
    "1e999",
    "-1e999",
    "1.7976931348623157E+308",
    "5e-324",
    "-0",
]
TEXTS = ["", "a", "😀", "Grüße", 'quote"inside', "semi;colon}", "\x00nul", "line\nbreak", "é" * 300]


def php_string(text: str) -> str:
    return f's:{len(text.encode("utf-8"))}:"{text}";'


def generate(rng: random.Random, depth: int = 0) -> str:
    """A PHP serialize() output, sometimes with extreme scalars."""
    roll = rng.random()
    if depth > 4 or roll < 0.45:
        kind = rng.choice("isdbNx")
        if kind == "i":
            value = rng.choice(EXTREME_INTS) if rng.random() < 0.4 else rng.randint(-999, 999)
            return f"i:{value};"
        if kind == "s":
            return php_string(rng.choice(TEXTS))
        if kind == "d":
            return (
                f"d:{rng.choice(EXTREME_FLOATS) if rng.random() < 0.5 else rng.uniform(-1e6, 1e6)};"
            )
        if kind == "b":
            return f"b:{rng.randint(0, 1)};"
        if kind == "N":
            return "N;"
        return "a:0:{}"
    count = rng.randint(0, 4)
    items = []
    for index in range(count):
        key = f"i:{index};" if rng.random() < 0.6 else php_string(rng.choice(TEXTS) + str(index))
        items.append(key + generate(rng, depth + 1))
    body = "".join(items)
    if roll < 0.9:
        return f"a:{count}:{{{body}}}"
    name = rng.choice(["stdClass", "WP_Post", "Foo\\Bar"])
    return f'O:{len(name)}:"{name}":{count}:{{{body}}}'


def truncate(rng: random.Random, value: str) -> str:
    return value[: rng.randint(0, len(value))]


def wrong_length(rng: random.Random, value: str) -> str:
    # What a naive SQL search/replace does: text changes, the length prefix does not.
    return value.replace("a", "ab", 1) if "a" in value else value + ";"


def flip(rng: random.Random, value: str) -> str:
    if not value:
        return value
    at = rng.randrange(len(value))
    return value[:at] + rng.choice(':;{}"0-9aNsid') + value[at + 1 :]


def deep(rng: random.Random, value: str) -> str:
    levels = rng.choice([63, 64, 65, 300, 2000])
    return "a:1:{i:0;" * levels + value + "}" * levels


def references(rng: random.Random, value: str) -> str:
    return rng.choice(
        ["r:1;", "R:1;", 'C:11:"ArrayObject":0:{}', 'E:7:"Foo:Bar";', "O:-1:", "a:-1:{}"]
    )


def trailing(rng: random.Random, value: str) -> str:
    return value + rng.choice(["junk", ";", "}", "i:1;"])


MUTATIONS: list[Callable[[random.Random, str], str]] = [
    truncate,
    wrong_length,
    flip,
    deep,
    references,
    trailing,
]


def values(seed: int) -> list[str | bytes]:
    rng = random.Random(seed)
    out: list[str | bytes] = []
    for _ in range(VALUES_PER_SEED):
        value = generate(rng)
        if rng.random() < 0.5:
            value = rng.choice(MUTATIONS)(rng, value)
        if rng.random() < 0.05:
            # Bytes that are not UTF-8 inside a string (a latin1 blob, a cut emoji).
            encoded = value.encode() + rng.choice([b"\xff", b"\xf0\x9f", b"\xc3("])
            out.append(encoded)
        else:
            out.append(value)
    return out


def meta_event_values(meta_value: str | bytes) -> list[dict[str, Any]]:
    """The meta changes of the stream event for an INSERT of this meta row, as sent."""
    log = Binlog()
    log.txn(insert(POSTS, post_row(7)), insert(POSTMETA, meta(1, 7, "fuzzed", meta_value)))
    events = fold_all(Folder(config=FoldConfig(), mirror=Mirror()), log.log)
    sent = []
    for event in events:
        value, _ = fit(event, SOURCE, 1_000_000)
        record = orjson.loads(value)
        if isinstance(event.data, MetaData):
            sent += record["data"]["changes"]
    return sent


def snapshot_values(meta_value: str | bytes) -> list[dict[str, Any]]:
    bundle = PostBundle(
        blog_id=1,
        post=post_row(7),
        meta=[{"meta_id": 1, "post_id": 7, "meta_key": "fuzzed", "meta_value": meta_value}],
        terms=[],
    )
    event = snapshot_event(
        bundle, position=Position("binlog.000001", 400), timestamp=0, config=FoldConfig()
    )
    assert isinstance(event.data, SnapshotData)
    record = orjson.loads(serialize(event, SOURCE))
    return list(record["data"]["meta"])


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_serialized_values_decode_and_serialize_without_raising(seed: int) -> None:
    for meta_value in values(seed):
        decoded = decode_meta(meta_value)
        # What is sent is exactly what was decoded: nothing turned into null on the way.
        (change,) = meta_event_values(meta_value)
        assert change["value"] == decoded.value, meta_value
        assert change["raw"] == decoded.raw and change["error"] == decoded.error
        (entry,) = snapshot_values(meta_value)
        assert entry["value"] == decoded.value and entry["error"] == decoded.error
        # An undecodable value goes raw and flagged; a decoded one keeps its raw text.
        if decoded.error is not None:
            assert decoded.value == decoded.raw and isinstance(decoded.value, str)
        # wpcdc verify compares the stored text the event carries with the database's.
        stored = entry["raw"] if entry["raw"] is not None else entry["value"]
        assert database_meta(meta_value) == stored


@pytest.mark.parametrize(
    ("meta_value", "error"),
    [
        ("i:99999999999999999999;", "wider than 64 bits"),
        ("i:-9223372036854775809;", "wider than 64 bits"),
        ('a:1:{s:1:"n";i:18446744073709551616;}', "wider than 64 bits"),
        ("d:INF;", "inf has no JSON form"),
        ("d:NAN;", "nan has no JSON form"),
        ("a:1:{i:0;d:-1e999;}", "-inf has no JSON form"),
    ],
)
def test_values_json_cannot_carry_exactly_are_sent_raw_and_flagged(
    meta_value: str, error: str
) -> None:
    (change,) = meta_event_values(meta_value)
    assert change["value"] == meta_value and change["raw"] == meta_value
    assert change["serialized"] is True and error in change["error"]
    (entry,) = snapshot_values(meta_value)
    assert entry["value"] == meta_value and error in entry["error"]


def test_the_widest_integers_json_carries_exactly_still_decode() -> None:
    for value in (2**64 - 1, -(2**63)):
        (change,) = meta_event_values(f"i:{value};")
        assert change["value"] == value and change["error"] is None
