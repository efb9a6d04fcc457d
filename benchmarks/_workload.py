"""WordPress-shaped binlogs for the benchmarks, written by real WordPress PHP.

A private MariaDB (the caller starts it) gets a ``bench`` database with
WordPress installed; the workloads below then call WordPress core APIs in one
``php`` process each, so the binlog holds exactly the rows WordPress writes.
"""

from __future__ import annotations

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
