"""Facts about the server (wpcdc.core.facts): its flavor, and the WordPress tables
per blog."""

from __future__ import annotations

from tests.support.preflight import MAIN_TABLES
from wpcdc.core.facts import WORDPRESS_TABLES, detect_flavor, wordpress_layout


def test_flavor_comes_from_the_version_even_when_the_comment_is_a_distribution() -> None:
    assert detect_flavor("10.11.6-MariaDB-0+deb12u1-log", "Debian 12") == "mariadb"
    assert detect_flavor("8.0.36", "MySQL Community Server - GPL") == "mysql"
    assert detect_flavor("5.5.5-10.6.12", "mariadb.org binary distribution") == "mariadb"


def test_layout_needs_all_five_tables_per_blog() -> None:
    tables = [*MAIN_TABLES, *(f"wp_2_{s}" for s in WORDPRESS_TABLES), "wp_3_posts", "wp_3x_posts"]
    layout = wordpress_layout("wp_", tables)
    assert layout.main_missing == ()
    assert layout.blogs == (2,)
    assert set(layout.incomplete) == {3}
    assert len(layout.tables()) == 13
