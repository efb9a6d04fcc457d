"""WordPress-shaped binlogs for the benchmarks.

A private MariaDB (the caller starts it) gets a ``bench`` database with
WordPress installed; most workloads below then call WordPress core APIs in one
``php`` process each, so the binlog holds exactly the rows WordPress writes.
``write_post_rows`` instead generates the SQL of WordPress's rows in Python:
hundreds of thousands of row changes in seconds, where PHP would take minutes,
with the transaction boundaries chosen (autocommit as WordPress, or one
transaction per post as a bulk import).
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
from pymysql.constants import CLIENT

from wpcdc.config.settings import MysqlSettings
from wpcdc.local.mariadb import MariaDBServer
from wpcdc.local.wordpress import WordPressSite

DATABASE = "bench"

# Per post: the post with a ~2 KB body (28 bytes x 73), 2-3 tags, 2 meta, and one
# option update, as plugins do (rows on a table wpcdc does not watch). With
# $args['edits'], a second round retitles every post (WordPress also saves a
# revision) and changes one meta value, so the fold sees creates and updates.
WRITE_POSTS = """
$body = str_repeat('Lorem ipsum dolor sit amet. ', 73);
$ids = [];
for ($i = 0; $i < $args['posts']; $i++) {
    $id = wp_insert_post(['post_title' => "Post $i", 'post_content' => $body,
                          'post_status' => 'publish'], true);
    if (is_wp_error($id)) { throw new Exception($id->get_error_message()); }
    $tags = ['tag' . ($i % 50), 'series' . ($i % 7)];
    if ($i % 2) { $tags[] = 'topic' . ($i % 13); }
    wp_set_post_tags($id, $tags);
    update_post_meta($id, 'views', $i);
    update_post_meta($id, 'subtitle', "Subtitle $i");
    update_option('bench_last_post', $id);
    $ids[] = $id;
}
if ($args['edits']) {
    foreach ($ids as $i => $id) {
        wp_update_post(['ID' => $id, 'post_title' => "Post $i (edited)"]);
        update_post_meta($id, 'views', $i + 1000000);
    }
}
return count($ids);
"""

# One explicit transaction of $args['rows'] add_post_meta calls (100-byte values)
# spread over a few new posts: the shape of a bulk import or a migration plugin.
WRITE_BIG_TRANSACTION = """
global $wpdb;
$posts = [];
for ($p = 0; $p < $args['posts']; $p++) {
    $posts[] = wp_insert_post(['post_title' => "Bulk $p", 'post_status' => 'publish'], true);
}
$wpdb->query('START TRANSACTION');
for ($i = 0; $i < $args['rows']; $i++) {
    add_post_meta($posts[$i % count($posts)], "bulk_$i", str_repeat(chr(97 + $i % 26), 100));
}
$wpdb->query('COMMIT');
return $args['rows'];
"""


def install_wordpress(server: MariaDBServer) -> tuple[WordPressSite, MysqlSettings]:
    """Create the ``bench`` database, install WordPress in it; returns the site and
    the settings wpcdc reads it with."""
    with server.connect() as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
    site = WordPressSite(
        host=server.host, port=server.port, user=server.user, password="", database=DATABASE
    )
    site.install()
    mysql = MysqlSettings(port=server.port, user=server.user, database=DATABASE, server_id=77)
    return site, mysql


def write_posts(site: WordPressSite, posts: int, *, edits: bool) -> None:
    site.php(WRITE_POSTS, {"posts": posts, "edits": edits})


def write_big_transaction(site: WordPressSite, rows: int, posts: int = 4) -> None:
    site.php(WRITE_BIG_TRANSACTION, {"rows": rows, "posts": posts})


def write_interleaved(site: WordPressSite, server: MariaDBServer, rows: int, posts: int) -> None:
    """``posts`` new posts, then one INSERT ... SELECT of ``rows`` meta rows (100-byte
    values) that goes round-robin across them: one transaction whose row changes
    interleave every post, the shape that made every group stay open at once."""
    ids = site.php(
        "$ids = []; for ($p = 0; $p < $args; $p++) { $ids[] = wp_insert_post("
        "['post_title' => \"Interleaved $p\", 'post_status' => 'publish'], true); } return $ids;",
        posts,
    )
    first, count = min(ids), len(ids)
    assert max(ids) - first + 1 == count, "post ids are not consecutive"
    with server.connect(DATABASE) as conn, conn.cursor() as cursor:
        # MariaDB's SEQUENCE engine: seq_0_to_N is a table of numbers.
        cursor.execute(
            "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) "
            f"SELECT {first} + seq % {count}, CONCAT('bulk_', seq), REPEAT('v', 100) "
            f"FROM seq_0_to_{rows - 1} ORDER BY seq"
        )
        conn.commit()


# --- SQL-generated posts: the binlog shape of WordPress, written fast -------------

# Row changes per post of write_post_rows: the post INSERT, the guid UPDATE that
# wp_insert_post makes right after it (before and after images of the 2 KB row),
# eight meta rows and two term relationships (a category and a tag).
ROWS_PER_POST = 12
POST_BODY = "Lorem ipsum dolor sit amet. " * 73  # ~2 KB, as in WRITE_POSTS
# Statements sent to the server in one round trip (multi-statements): each still
# commits on its own with autocommit, so only the client's round trips are saved.
STATEMENTS_PER_BATCH = 600

CREATE_TAGS = """
$ids = [];
for ($i = 0; $i < $args; $i++) {
    $term = wp_insert_term("bench-tag-$i", 'post_tag');
    if (is_wp_error($term)) { throw new Exception($term->get_error_message()); }
    $ids[] = $term['term_taxonomy_id'];
}
return $ids;
"""


def create_tags(site: WordPressSite, count: int = 40) -> list[int]:
    """``count`` tags made by WordPress (so the mirror knows them); their term_taxonomy_ids."""
    return [int(tt_id) for tt_id in site.php(CREATE_TAGS, count)]


def write_post_rows(
    server: MariaDBServer, posts: int, tags: list[int], *, transaction_per_post: bool
) -> int:
    """``posts`` new posts of ``ROWS_PER_POST`` row changes each, one statement per
    row as WordPress writes them. Autocommitted (every row its own transaction,
    how WordPress writes) or, with ``transaction_per_post``, BEGIN..COMMIT around
    each post's rows (a bulk import). Returns the row changes written."""
    conn = pymysql.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        database=DATABASE,
        charset="utf8mb4",
        autocommit=True,
        client_flag=CLIENT.MULTI_STATEMENTS,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(ID), 0) + 1 FROM wp_posts")
            row = cursor.fetchone()
            assert row is not None
            first = int(row[0])
            batch: list[str] = []
            for n in range(posts):
                statements = list(_post_statements(conn, first + n, n, tags))
                if transaction_per_post:
                    statements = ["BEGIN", *statements, "COMMIT"]
                batch.extend(statements)
                if len(batch) >= STATEMENTS_PER_BATCH or n == posts - 1:
                    cursor.execute(";\n".join(batch))
                    while cursor.nextset():  # every statement's result, errors included
                        pass
                    batch = []
    finally:
        conn.close()
    return posts * ROWS_PER_POST


def _post_statements(
    conn: pymysql.connections.Connection, post_id: int, n: int, tags: list[int]
) -> Iterator[str]:
    """One post's rows as WordPress's wp_insert_post, update_post_meta and
    wp_set_post_terms write them, one statement per row."""
    q = conn.escape
    date = f"2026-11-{1 + n % 28:02d} {n % 24:02d}:{n % 60:02d}:{(7 * n) % 60:02d}"
    title = f"Imported post {n}"
    yield (
        "INSERT INTO wp_posts (ID, post_author, post_date, post_date_gmt, post_content, "
        "post_title, post_excerpt, post_status, comment_status, ping_status, post_password, "
        "post_name, to_ping, pinged, post_modified, post_modified_gmt, "
        "post_content_filtered, post_parent, guid, menu_order, post_type, post_mime_type, "
        f"comment_count) VALUES ({post_id}, 1, {q(date)}, {q(date)}, {q(POST_BODY)}, "
        f"{q(title)}, '', 'publish', 'open', 'open', '', {q(f'imported-post-{n}')}, '', '', "
        f"{q(date)}, {q(date)}, '', 0, '', 0, 'post', '', 0)"
    )
    yield f"UPDATE wp_posts SET guid = {q(f'http://bench.test/?p={post_id}')} WHERE ID = {post_id}"
    meta = {
        "_edit_last": "1",
        "_edit_lock": f"{1764547200 + n}:1",
        "_thumbnail_id": str(100000 + n),
        "_wp_page_template": "default",
        "views": str(n * 7),
        "subtitle": f"Subtitle of imported post {n}",
        "_yoast_wpseo_metadesc": f"Post {n}: " + "a summary for search engines. " * 4,
        "gallery": 'a:2:{s:3:"ids";a:3:{i:0;i:11;i:1;i:12;i:2;i:13;}s:7:"columns";i:3;}',
    }
    for key, value in meta.items():
        yield (
            "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) "
            f"VALUES ({post_id}, {q(key)}, {q(value)})"
        )
    # Category 1 (Uncategorized, term_taxonomy_id 1) and one of the tags.
    for tt_id in (1, tags[n % len(tags)]):
        yield (
            "INSERT INTO wp_term_relationships (object_id, term_taxonomy_id, term_order) "
            f"VALUES ({post_id}, {tt_id}, 0)"
        )
