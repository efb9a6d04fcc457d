"""How the binlog source reads query events: boundaries and watched tables named."""

from __future__ import annotations

import pytest

from wpcdc.core.statements import named_tables, opens_transaction, statement_kind


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("BEGIN", "begin"),
        ("XA START X'01',X'',1", "begin"),
        ("COMMIT", "commit"),
        ("ROLLBACK", "commit"),
        ("ROLLBACK TO SAVEPOINT a", "inner"),
        ("SAVEPOINT a", "inner"),
        ("XA END X'01',X'',1", "inner"),
        ("/* app */ CREATE TABLE wp_2_posts LIKE wp_posts", "statement"),
        ("-- note\nALTER TABLE wp_posts ADD x int", "statement"),
        ("XA COMMIT X'01',X'',1", "statement"),
        ("   ", "inner"),
    ],
)
def test_statement_kind(query: str, kind: str) -> None:
    assert statement_kind(query) == kind


def test_create_table_select_opens_a_transaction_on_mysql() -> None:
    assert opens_transaction("CREATE TABLE `t2` (\n  `a` int\n) START TRANSACTION")
    assert not opens_transaction("CREATE TABLE t2 (a int)")


def tables(query: str, schema: str = "wp") -> tuple[str, list[str]]:
    return named_tables(query, default_schema=schema, database="wp", prefix="wp_")


def test_dml_on_watched_tables_is_found() -> None:
    assert tables("INSERT INTO `wp_posts` (`ID`) VALUES (1)") == ("INSERT", ["wp_posts"])
    assert tables("UPDATE wp_3_postmeta SET meta_value='x'") == ("UPDATE", ["wp_3_postmeta"])
    assert tables("DELETE FROM `wp`.`wp_term_relationships` WHERE 1", schema="") == (
        "DELETE",
        ["wp_term_relationships"],
    )
    assert tables("REPLACE INTO wp_terms VALUES (1)") == ("REPLACE", ["wp_terms"])


def test_column_qualified_by_a_watched_table_counts() -> None:
    assert tables("UPDATE x JOIN y SET wp_posts.post_title = 1") == ("UPDATE", ["wp_posts"])


def test_unwatched_tables_other_schemas_and_literals_do_not_count() -> None:
    assert tables("INSERT INTO wp_comments VALUES ('wp_posts')") == ("INSERT", [])
    assert tables("INSERT INTO wp_posts VALUES (1)", schema="other") == ("INSERT", [])
    assert tables("INSERT INTO other.wp_posts VALUES (1)") == ("INSERT", [])
    assert tables("INSERT INTO wp_1_posts VALUES (1)") == ("INSERT", [])
    assert tables("SELECT * FROM wp_posts") == ("SELECT", [])


def test_ddl_on_watched_tables_is_found() -> None:
    assert tables("CREATE TABLE wp_2_posts LIKE wp_posts") == (
        "CREATE",
        ["wp_2_posts", "wp_posts"],
    )
    assert tables("DROP TABLE IF EXISTS `wp_5_terms`") == ("DROP", ["wp_5_terms"])
