"""Which WordPress table (and blog) a binlog table name is."""

from __future__ import annotations

import pytest

from wpcdc.core.rows import TableKind, TableRef, classify_table, table_name


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("wp_posts", TableRef(1, TableKind.POSTS)),
        ("wp_postmeta", TableRef(1, TableKind.POSTMETA)),
        ("wp_term_relationships", TableRef(1, TableKind.TERM_RELATIONSHIPS)),
        ("wp_2_posts", TableRef(2, TableKind.POSTS)),
        ("wp_17_terms", TableRef(17, TableKind.TERMS)),
        ("wp_options", TableRef(1, TableKind.OPTIONS)),
        ("wp_2_options", TableRef(2, TableKind.OPTIONS)),
        ("wp_users", TableRef(1, TableKind.USERS)),
        ("wp_2_users", None),
        ("wp_comments", None),
        ("wp_1_posts", None),
        ("wp_02_posts", None),
        ("other_posts", None),
        ("wp_postsx", None),
    ],
)
def test_classify_table(table: str, expected: TableRef | None) -> None:
    assert classify_table("wp_", table) == expected
    if expected is not None:
        assert table_name("wp_", expected) == table


def test_prefix_with_regex_characters_is_literal() -> None:
    assert classify_table("w.p_", "w.p_posts") == TableRef(1, TableKind.POSTS)
    assert classify_table("w.p_", "wXp_posts") is None
