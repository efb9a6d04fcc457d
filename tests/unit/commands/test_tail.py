"""How `wpcdc tail` renders envelopes and which ones its filters let through."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest

from wpcdc.commands.tail import RAW_MARKER, TailFilter, color_wanted, render, render_raw, summary

PARIS = dt.timezone(dt.timedelta(hours=1))


def envelope(kind: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"0-1-42/0/{kind}",
        "type": kind,
        "subject": "post/7",
        "time": "2026-11-23T10:00:05Z",
        **extra,
        "data": data,
    }


def post(**fields: Any) -> dict[str, Any]:
    return {"id": 7, "type": "post", "title": "Hello", "status": "draft", **fields}


def ids(**data: Any) -> dict[str, Any]:
    return {"blog_id": 1, "post_id": 7, "post_type": "post", **data}


def test_line_has_local_time_type_subject_and_summary() -> None:
    line = render(envelope("post_created", ids(post=post())), tz=PARIS)
    assert line == '11:00:05.000  post_created       post/7          "Hello" (draft)'


def test_time_is_shown_in_the_local_zone_by_default() -> None:
    line = render(envelope("post_created", ids(post=post())))
    local = dt.datetime(2026, 11, 23, 10, 0, 5, tzinfo=dt.UTC).astimezone()
    assert line.startswith(f"{local:%H:%M:%S}.000  ")


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("post_created", ids(post=post(title="")), "(no title) (draft)"),
        ("post_snapshot", ids(post=post(status="publish")), '"Hello" (publish)'),
        ("post_deleted", ids(post=post(status="trash")), '"Hello"'),
        (
            "post_updated",
            ids(post=post(), changed=["title", "content"], before={"title": "Old"}),
            "title, content",
        ),
        (
            "post_published",
            ids(
                post=post(status="publish"),
                changed=["status", "date_gmt"],
                before={"status": "draft", "date_gmt": None},
            ),
            "date_gmt; status draft→publish",
        ),
        (
            "post_trashed",
            ids(post=post(status="trash"), changed=["status"], before={"status": "publish"}),
            "status publish→trash",
        ),
        ("post_updated", ids(post=post(), changed=[], before={}), "(no field changed)"),
        ("post_meta_changed", ids(changes=[]), "(no meta changed)"),
        ("taxonomy_changed", ids(added=[], removed=[]), "(no term changed)"),
        (
            "post_meta_changed",
            ids(
                changes=[
                    {"key": "colour", "op": "added", "meta_id": 1},
                    {"key": "size", "op": "updated", "meta_id": 2},
                    {"key": "old", "op": "deleted", "meta_id": 3},
                ]
            ),
            "+colour ~size -old",
        ),
        (
            "taxonomy_changed",
            ids(
                added=[{"taxonomy": "post_tag", "slug": "foo", "term_taxonomy_id": 5}],
                removed=[
                    {"taxonomy": "category", "slug": "bar", "term_taxonomy_id": 1},
                    {"taxonomy": None, "slug": None, "term_taxonomy_id": 9, "resolved": False},
                ],
            ),
            "+post_tag:foo -category:bar -?:#9",
        ),
    ],
)
def test_summary_per_event_type(kind: str, data: dict[str, Any], expected: str) -> None:
    assert summary(envelope(kind, data)) == expected


def test_the_permalink_and_the_one_it_moved_from_are_shown() -> None:
    post = {"id": 4, "title": "Hi", "status": "publish"}
    links = {"permalink": "http://a.test/new/", "previous_permalink": "http://a.test/old/"}
    data = {"post": post, "changed": ["name"], "before": {"name": "old"}, "links": links}
    assert summary(envelope("post_updated", data)).endswith(
        "  http://a.test/new/ (was http://a.test/old/)"
    )
    links = {"permalink": "http://a.test/\x1b[2Jx/", "previous_permalink": None}
    assert summary(envelope("post_created", {"post": post, "links": links})) == (
        '"Hi" (publish)  http://a.test/ [2Jx/'
    )


def term(**data: Any) -> dict[str, Any]:
    return {"blog_id": 1, "term_id": 3, "taxonomy": "category", "slug": "news", **data}


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (
            "term_created",
            term(name="News", links={"term": "http://a.test/category/news/"}),
            'category:news "News"  http://a.test/category/news/',
        ),
        (
            "term_updated",
            term(
                changed=["slug", "parent"],
                before={"slug": "old", "parent": 2},
                after={"slug": "news", "parent": 0},
                posts_moved=12,
                links={"term": "http://a.test/c/news/", "previous": "http://a.test/c/x/old/"},
            ),
            "slug old→news, parent 2→0; 12 posts moved"
            "  http://a.test/c/news/ (was http://a.test/c/x/old/)",
        ),
        (
            "term_deleted",
            term(name="News", links={"term": None, "previous": "http://a.test/category/news/"}),
            'category:news "News" (was http://a.test/category/news/)',
        ),
        (
            "author_updated",
            {
                "user_id": 3,
                "changed": ["nicename"],
                "before": {"nicename": "jane"},
                "after": {"nicename": "jd"},
                "links": {"author": "http://a.test/author/jd/", "previous": None},
            },
            "#3 nicename jane→jd  http://a.test/author/jd/",
        ),
    ],
)
def test_term_and_author_lines(kind: str, data: dict[str, Any], expected: str) -> None:
    assert summary(envelope(kind, data, subject="term/3")) == expected


def test_a_menu_line_names_the_menu_its_change_and_its_items() -> None:
    items = [
        {"id": 12, "op": "updated", "changed": ["title", "order"]},
        {"id": 14, "op": "added", "changed": []},
        {"id": 13, "op": "removed"},
    ]
    data = {"blog_id": 1, "term_id": 7, "name": "Top", "slug": "top", "items": items}
    renamed = {**data, "menu_change": "renamed", "before": {"name": "Main"}}
    line = render(envelope("menu_changed", renamed, subject="menu/7"), tz=PARIS)
    assert line.endswith(
        'menu/7          "Top" renamed (was "Main"); items ~12(title,order) +14 -13'
    )
    assert summary(envelope("menu_changed", {**data, "items": []})) == '"Top"'


def test_omitted_fields_are_flagged() -> None:
    data = ids(post=post(content=None), changed=["content"], before={}, omitted=["post.content"])
    assert summary(envelope("post_updated", data)) == "content  [omitted: post.content]"


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("post_meta_changed", ids(changes="oops"), '{"changes":"oops"}'),
        ("post_meta_changed", ids(changes=[{"op": "added"}]), '{"changes":[{"op":"added"}]}'),
        ("post_updated", ids(changed=5), '{"changed":5}'),
        ("taxonomy_changed", ids(added=["post_tag:foo"]), '{"added":["post_tag:foo"]}'),
        ("post_created", ids(), "{}"),
        ("comment_added", ids(comment_id=3), '{"comment_id":3}'),
        ("post_created", [1, 2], "[1,2]"),
        ("post_created", None, "null"),
    ],
)
def test_unknown_shapes_fall_back_to_a_json_excerpt(kind: str, data: Any, expected: str) -> None:
    assert summary(envelope(kind, data)) == expected


def test_long_values_are_shortened() -> None:
    data = ids(post=post(title="T" * 200))
    assert summary(envelope("post_created", data)) == '"' + "T" * 59 + '…" (draft)'
    assert len(summary(envelope("comment_added", ids(text="x" * 500)))) == 100


def test_control_characters_from_content_cannot_break_the_line_or_the_terminal() -> None:
    data = ids(post=post(title="evil\n\x1b[2Jtitle"))
    line = render(envelope("post_created", data, subject="post/7\r"), tz=dt.UTC)
    assert "\n" not in line and "\x1b" not in line and "\r" not in line
    assert '"evil  [2Jtitle"' in line


def test_missing_or_bad_time_shows_a_placeholder() -> None:
    assert render(envelope("post_created", ids(post=post()), time="yesterday")).startswith(
        "--:--:--.---  "
    )
    event = envelope("post_created", ids(post=post()))
    del event["time"]
    assert render(event).startswith("--:--:--.---  ")


def test_colour_marks_the_type_only_when_asked() -> None:
    event = envelope("post_deleted", ids(post=post()))
    assert "\x1b[" not in render(event, tz=dt.UTC)
    coloured = render(event, color=True, tz=dt.UTC)
    assert "\x1b[31m" in coloured and coloured.endswith('"Hello"')
    # Unknown types stay plain.
    assert "\x1b[" not in render(envelope("comment_added", {}), color=True, tz=dt.UTC)


def test_colour_needs_a_terminal_and_no_NO_COLOR(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert color_wanted(Terminal())
    assert not color_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not color_wanted(Terminal())


def test_raw_record_line_shows_where_it_is_and_its_first_bytes() -> None:
    line = render_raw(
        partition=2,
        offset=17,
        key=b"x:y",
        value=b"\x00garbage" + b"z" * 300,
        timestamp_ms=1_795_000_000_123,
        reason="not JSON: unexpected character",
        tz=dt.UTC,
    )
    assert line.startswith("11:06:40.123  " + RAW_MARKER + " (not JSON: unexpected character)")
    assert "partition 2 offset 17 key=b'x:y' value=b'\\x00garbage" in line
    assert line.endswith("zz' (+108 bytes)")
    assert "value=None" in render_raw(
        partition=0, offset=0, key=None, value=None, timestamp_ms=None, reason="r"
    )


@pytest.mark.parametrize(
    ("flt", "event", "key", "shown"),
    [
        (TailFilter(), envelope("post_updated", ids()), b"1:7", True),
        (TailFilter(types=frozenset({"post_updated"})), envelope("post_updated", {}), None, True),
        (TailFilter(types=frozenset({"post_created"})), envelope("post_updated", {}), None, False),
        (TailFilter(post_id=7), envelope("post_updated", ids()), None, True),
        (TailFilter(post_id=8), envelope("post_updated", ids()), b"1:8", False),
        (TailFilter(blog_id=2), envelope("post_updated", ids()), None, False),
        (TailFilter(blog_id=1, post_id=7), envelope("post_updated", ids()), None, True),
        # No ids in data: the key "blog:post" says.
        (TailFilter(blog_id=3, post_id=9), envelope("post_updated", {}), b"3:9", True),
        (TailFilter(post_id=9), envelope("post_updated", {"post_id": "9"}), b"3:9", True),
        (TailFilter(post_id=9), envelope("post_updated", {}), b"garbage", False),
        (TailFilter(post_id=9), envelope("post_updated", {}), None, False),
    ],
)
def test_filter(flt: TailFilter, event: dict[str, Any], key: bytes | None, shown: bool) -> None:
    assert flt.matches(event, key) is shown
