"""The row decoder on hand-built TABLE_MAP and ROWS event bytes: layouts, NULLs,
ROWS v1 and v2, UPDATE images, partial images, Unsupported, malformed events,
the table map's fields; the generated code against the interpreter on each.
Each type's values: test_binlog_rows_values.py."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest

from tests.support.binlog_bytes import (
    BINARY,
    DELETE,
    LATIN1,
    UPDATE,
    WRITE,
    Col,
    LibraryDecoder,
    build_decoder,
    datetime2,
    decode_both,
    image,
    int_,
    rows_event,
    string,
    table_map_event,
)
from wpcdc.core.binlog_rows import (
    DecoderCache,
    PartialRowImage,
    RowsDecoder,
)
from wpcdc.core.column_plans import Unsupported
from wpcdc.core.table_map import parse_table_map, rows_table_id

BIGINT_U = Col("ID", 8, unsigned=True)
POSTS = [
    BIGINT_U,
    Col("post_author", 8, unsigned=True),
    Col("post_date", 18, b"\x00"),
    Col("post_date_gmt", 18, b"\x00"),
    Col("post_content", 252, b"\x04"),
    Col("post_title", 252, b"\x02"),
    Col("post_status", 15, (80).to_bytes(2, "little")),
    Col("post_name", 15, (800).to_bytes(2, "little")),
    Col("menu_order", 3),
    Col("post_type", 15, (80).to_bytes(2, "little")),
    Col("comment_count", 8),
]
META = [
    Col("meta_id", 8, unsigned=True),
    Col("post_id", 8, unsigned=True),
    Col("meta_key", 15, (1020).to_bytes(2, "little"), nullable=True),
    Col("meta_value", 252, b"\x04", nullable=True),
]


def post_values(post_id: int, content: str = "Body 😀") -> list[bytes | None]:
    return [
        int_(post_id, "Q"),
        int_(1, "Q"),
        datetime2(2026, 11, 23, 10, 0, 5),
        datetime2(0, 0, 0),
        string(content, 4),
        string("Title", 2),
        string("publish"),
        string("title", 2),
        int_(-3, "i"),
        string("post"),
        int_(2**63 - 1, "q"),
    ]


POST_ROW = {
    "ID": 5,
    "post_author": 1,
    "post_date": dt.datetime(2026, 11, 23, 10, 0, 5),
    "post_date_gmt": None,
    "post_content": "Body 😀",
    "post_title": "Title",
    "post_status": "publish",
    "post_name": "title",
    "menu_order": -3,
    "post_type": "post",
    "comment_count": 2**63 - 1,
}


@pytest.mark.parametrize("version", [1, 2])
def test_wordpress_posts_write_update_delete(version: int) -> None:
    dec = build_decoder(POSTS)
    row = image(post_values(5))
    changed = image(post_values(5, "x" * 70_000))
    assert decode_both(dec, rows_event(WRITE, 7, 11, [row, row], version=version)) == [
        (None, POST_ROW),
        (None, POST_ROW),
    ]
    [(before, after)] = decode_both(dec, rows_event(UPDATE, 7, 11, [row, changed], version=version))
    assert before == POST_ROW
    assert after == {**POST_ROW, "post_content": "x" * 70_000}
    assert decode_both(dec, rows_event(DELETE, 7, 11, [row], version=version)) == [(POST_ROW, None)]


def test_v2_extra_data_is_skipped() -> None:
    dec = build_decoder(POSTS)
    event = rows_event(WRITE, 7, 11, [image(post_values(5))], extra=b"\x01\x05\x00")
    assert decode_both(dec, event) == [(None, POST_ROW)]


@pytest.mark.parametrize(
    ("key", "value"),
    [(None, None), ("k", None), (None, "v"), ("k", "v"), ("", "")],
)
def test_null_patterns(key: str | None, value: str | None) -> None:
    dec = build_decoder(META)
    values = [int_(1, "Q"), int_(2, "Q")]
    values.append(None if key is None else string(key, 2))
    values.append(None if value is None else string(value, 4))
    [(_, after)] = decode_both(dec, rows_event(WRITE, 7, 4, [image(values)]))
    assert after == {"meta_id": 1, "post_id": 2, "meta_key": key, "meta_value": value}


def test_nullable_fixed_width_columns_between_others() -> None:
    cols = [Col("a", 3), Col("b", 3, nullable=True), Col("c", 18, b"\x00", nullable=True)]
    cols.append(Col("d", 1))
    dec = build_decoder(cols)
    rows = [
        image([int_(1, "i"), None, None, int_(4, "b")]),
        image([int_(1, "i"), int_(2, "i"), datetime2(2020, 1, 2), int_(-4, "b")]),
        image([int_(1, "i"), None, datetime2(2020, 1, 2), int_(4, "b")]),
    ]
    assert [after for _, after in decode_both(dec, rows_event(WRITE, 7, 4, rows))] == [
        {"a": 1, "b": None, "c": None, "d": 4},
        {"a": 1, "b": 2, "c": dt.datetime(2020, 1, 2), "d": -4},
        {"a": 1, "b": None, "c": dt.datetime(2020, 1, 2), "d": 4},
    ]


def test_keep_decodes_only_the_chosen_columns() -> None:
    dec = build_decoder(POSTS, keep=frozenset({"ID", "post_title", "menu_order"}))
    rows = decode_both(dec, rows_event(WRITE, 7, 11, [image(post_values(5))]))
    assert rows == [(None, {"ID": 5, "post_title": "Title", "menu_order": -3})]
    dec = build_decoder(META, keep=frozenset({"meta_key"}))
    values = [int_(1, "Q"), int_(2, "Q"), None, string("v", 4)]
    assert decode_both(dec, rows_event(WRITE, 7, 4, [image(values)])) == [
        (None, {"meta_key": None})
    ]


def test_partial_image_is_refused_or_read_as_the_library_does() -> None:
    dec = build_decoder(META)
    present = [True, True, False, True]
    raw = image([int_(1, "Q"), int_(2, "Q"), string("v", 4)])
    event = rows_event(WRITE, 7, 4, [raw], present=present)
    with pytest.raises(PartialRowImage, match="meta_key") as refused:
        dec.rows(*event)
    assert refused.value.missing == ("meta_key",)
    assert decode_both(dec, event, allow_partial=True) == [
        (None, {"meta_id": 1, "post_id": 2, "meta_key": None, "meta_value": "v"})
    ]


@pytest.mark.parametrize(
    ("col", "words"),
    [
        (Col("v", 242, b"\x04"), "type 242"),
        (Col("d", 0), "DECIMAL"),
        (Col("c", 141, b"\x04"), "type 141"),
    ],
)
def test_unsupported_types_are_named_when_the_decoder_is_built(col: Col, words: str) -> None:
    with pytest.raises(Unsupported, match=f"wp.t.*{words}"):
        build_decoder([Col("id", 3), col])


def test_unknown_metadata_makes_the_layout_unsupported() -> None:
    with pytest.raises(Unsupported, match="metadata"):
        build_decoder([Col("id", 3), Col("x", 200, b"\x01"), Col("y", 3)])


def test_not_a_rows_event_is_unsupported() -> None:
    _, body, header = rows_event(WRITE, 7, 4, [])
    with pytest.raises(Unsupported, match="39"):
        build_decoder(META).rows(39, body, header)


@pytest.mark.parametrize("cut", [1, 5, 20, 2300, 2400])
def test_truncated_rows_are_a_value_error(cut: int) -> None:
    kind, body, header = rows_event(WRITE, 7, 11, [image(post_values(5))])
    dec = build_decoder(POSTS)
    with pytest.raises(ValueError, match="malformed"):
        dec.rows(kind, body, header, end=len(body) - cut)
    with pytest.raises(ValueError, match="malformed"):
        dec.rows(kind, body, header, end=len(body) - cut, interpreted=True)


def test_column_count_must_match_the_table_map() -> None:
    kind, body, header = rows_event(WRITE, 7, 3, [])
    with pytest.raises(ValueError, match="3 columns"):
        build_decoder(META).rows(kind, body, header)


def test_start_and_end_select_the_event_inside_a_packet() -> None:
    kind, body, header = rows_event(WRITE, 7, 11, [image(post_values(5))])
    packet = b"\x00" * 20 + body + b"CRC!"
    dec = build_decoder(POSTS)
    assert dec.rows(kind, packet, header, start=20, end=len(packet) - 4) == [(None, POST_ROW)]
    assert rows_table_id(packet, header, start=20) == 7


def test_table_map_fields() -> None:
    cols = [*META, Col("e", 254, b"\xf7\x01", values=["a"], real=247)]
    tm = parse_table_map(table_map_event(2**40 + 3, "db", "wp_postmeta", cols), 8, mariadb=False)
    assert (tm.table_id, tm.schema, tm.table) == (2**40 + 3, "db", "wp_postmeta")
    assert tm.column_names == ("meta_id", "post_id", "meta_key", "meta_value", "e")
    assert tm.primary_key == (0,)
    assert [c.unsigned for c in tm.columns] == [True, True, False, False, False]
    assert [c.nullable for c in tm.columns] == [False, False, True, True, False]
    assert [c.encoding for c in tm.columns] == [None, None, "utf8", "utf8", None]
    assert tm.columns[4].enum_values == ("", "a")
    assert tm.columns[2].max_length == 1020
    assert tm.unsupported is None


def test_without_names_the_columns_are_named_as_the_library_does() -> None:
    tm = parse_table_map(table_map_event(1, "db", "t", META, names=False), 8, mariadb=False)
    assert tm.column_names is None
    values = [int_(1, "Q"), int_(2, "Q"), None, None]
    rows = RowsDecoder(tm).rows(*rows_event(WRITE, 1, 4, [image(values)]))
    after = {"UNKNOWN_COL0": 1, "UNKNOWN_COL1": 2, "UNKNOWN_COL2": None, "UNKNOWN_COL3": None}
    assert rows == [(None, after)]


def test_decoder_cache_is_keyed_by_layout_and_selection() -> None:
    cache = DecoderCache(max_layouts=2)
    first = parse_table_map(table_map_event(1, "db", "t", META), 8, mariadb=False)
    renumbered = parse_table_map(table_map_event(99, "db", "t", META), 8, mariadb=False)
    assert cache.get(first) is cache.get(renumbered)
    assert cache.get(first, frozenset({"meta_id"})) is not cache.get(first)
    other = parse_table_map(table_map_event(1, "db", "t", POSTS), 8, mariadb=False)
    cache.get(other)
    assert cache.get(first) is not None


def test_datetime_cache_gives_equal_values_for_equal_bytes() -> None:
    dec = build_decoder(POSTS)
    rows = [image(post_values(i)) for i in range(3)]
    decoded = decode_both(dec, rows_event(WRITE, 7, 11, rows))
    assert {after["post_date"] for _, after in decoded if after} == {
        dt.datetime(2026, 11, 23, 10, 0, 5)
    }


def test_a_null_bit_counts_whatever_the_table_map_says() -> None:
    # The library reads every null bit; so does the decoder (no reliance on the
    # table map's nullable flags).
    cols = [Col("id", 3), Col("n", 3)]
    raw = b"\x02" + int_(1, "i")  # column "n" NULL although declared NOT NULL
    event = rows_event(WRITE, 7, 2, [raw])
    assert decode_both(build_decoder(cols), event) == [(None, {"id": 1, "n": None})]
    library = LibraryDecoder(table_map_event(7, "wp", "t", cols))
    assert library.rows(event[0], event[1]) == [(None, {"id": 1, "n": None})]


def test_three_hundred_columns() -> None:
    # A column count of 251 or more is a 3-byte length-encoded integer.
    cols = [Col(f"c{i}", 1 if i % 2 else 15, b"" if i % 2 else b"\x10\x00") for i in range(300)]
    for col in cols[::7]:
        col.nullable = True
    values = [
        None if i % 7 == 0 else int_(i % 100, "b") if i % 2 else string(str(i)) for i in range(300)
    ]
    event = rows_event(UPDATE, 7, 300, [image(values), image(values)])
    [(before, after)] = decode_both(build_decoder(cols), event)
    assert before == after
    assert after is not None and after["c1"] == 1 and after["c2"] == "2" and after["c7"] is None
    library = LibraryDecoder(table_map_event(7, "wp", "t", cols))
    assert library.rows(event[0], event[1]) == [(before, after)]


def test_four_byte_table_ids_of_old_servers() -> None:
    body = table_map_event(7, "db", "t", META)
    old = body[:4] + body[6:]  # 4-byte table id, then the flags
    tm = parse_table_map(old, 6, mariadb=False)
    assert (tm.table_id, tm.table, tm.column_names) == (
        7,
        "t",
        ("meta_id", "post_id", "meta_key", "meta_value"),
    )
    assert rows_table_id(old, 6) == 7


def test_table_map_optional_fields_in_their_other_forms() -> None:
    from tests.support.binlog_bytes import packed

    cols = [Col("id", 3), Col("s", 15, b"\x10\x00", charset=LATIN1), Col("g", 255, b"\x04")]
    cols.append(Col("b", 252, b"\x02", charset=BINARY))
    extra = (
        (7, packed(2)),  # GEOMETRY_TYPE
        (9, packed(0) + packed(0) + packed(1) + packed(10)),  # PRIMARY_KEY_WITH_PREFIX
        (12, bytes([0b10110000])),  # VISIBILITY
        (99, b"\x01\x02\x03"),  # newer than wpcdc: skipped
    )
    body = table_map_event(7, "db", "t", cols, primary_key=(), column_charsets=True, extra=extra)
    tm = parse_table_map(body, 8, mariadb=False)
    assert [c.encoding for c in tm.columns] == [None, "cp1252", None, "binary"]
    assert tm.columns[2].geometry_type == 2
    assert tm.primary_key == (0, 1)
    assert [c.visible for c in tm.columns] == [True, False, True, True]
    assert tm.column_names == ("id", "s", "g", "b")


def test_minimal_update_images_read_as_the_library_does() -> None:
    # binlog_row_image=MINIMAL: the before image has the key, the after image
    # the changed columns; each image has its own null bitmap.
    event = rows_event(
        UPDATE,
        7,
        4,
        [image([int_(9, "Q")]), image([None, string("new", 4)])],
        present=[True, False, False, False],
        present_after=[False, False, True, True],
    )
    dec = build_decoder(META)
    with pytest.raises(PartialRowImage):
        dec.rows(*event)
    rows = decode_both(dec, event, allow_partial=True)
    assert rows == [
        (
            {"meta_id": 9, "post_id": None, "meta_key": None, "meta_value": None},
            {"meta_id": None, "post_id": None, "meta_key": None, "meta_value": "new"},
        )
    ]
    assert LibraryDecoder(table_map_event(7, "wp", "t", META)).rows(event[0], event[1]) == rows


def test_column_names_never_become_code() -> None:
    name = "x'}, pos\n__import__('os').system('false')#"
    dec = build_decoder([Col(name, 3), Col("b", 15, b"\x10\x00")])
    event = rows_event(WRITE, 7, 2, [image([int_(5, "i"), string("v")])])
    assert decode_both(dec, event) == [(None, {name: 5, "b": "v"})]


def test_a_longer_post_header_is_skipped() -> None:
    # A newer server may declare longer post-headers (FORMAT_DESCRIPTION): the
    # extra data length stays right after the flags, the rows after it all.
    kind, body, _ = rows_event(WRITE, 7, 11, [image(post_values(5))], extra=b"\x01\x05\x00")
    longer = body[:10] + b"\xee\xee" + body[10:]
    assert decode_both(build_decoder(POSTS), (kind, longer, 12)) == [(None, POST_ROW)]


def test_a_truncated_or_garbled_table_map_is_a_value_error() -> None:
    # Anything but a ValueError would escape the reader's handling.
    body = table_map_event(7, "db", "wp_posts", [*POSTS, *META[2:]])
    cols = [*POSTS, *META[2:]]
    fixed_part = 8 + 2 + len("db") + 2 + len("wp_posts") + 1 + len(cols)
    fixed_part += 1 + len(b"".join(c.meta for c in cols)) + (len(cols) + 7) // 8
    for end in range(len(body)):
        if end < fixed_part:  # a cut before the optional metadata is always noticed
            with pytest.raises(ValueError, match="truncated"):
                parse_table_map(body, 8, mariadb=False, end=end)
        else:  # inside it, a cut on a field boundary is a shorter block
            with contextlib.suppress(ValueError):
                parse_table_map(body, 8, mariadb=False, end=end)
    for i in range(8, len(body)):
        garbled = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1 :]
        with contextlib.suppress(ValueError):
            parse_table_map(garbled, 8, mariadb=False)
